"""A tiny offline model for unit tests of your own RAG code: no download, no GPU, seconds."""

from __future__ import annotations

import string
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["TINY_MODEL_WORDS", "build_tiny_model", "tiny_vocabulary"]

# Anything outside these words falls back to single characters, so no input maps to [UNK].
TINY_MODEL_WORDS: tuple[str, ...] = tuple(
    """
the of and to in is was for on that with as by at from it an be this are or which have has
had not but were their they his her its one all can more also there been when who will
about would into other some than what only new how many people live london city known
financial district most first over after years time such these used may between where
population million around world country state government number part during system water
energy data model search query document text index vector dot product score retrieval
language chroma log logs rotate file files disk memory speed fast slow cell cells protein
gene patient study results effect treatment disease risk blood high low increase decrease
air flow wing pressure heat library information science theory method paper we our use
using based
""".split()  # noqa: SIM905  (a word list reads better as text)
)
"""The whole words of :func:`build_tiny_model`'s vocabulary, one token each."""


def tiny_vocabulary() -> list[str]:
    """The tokens of :func:`build_tiny_model`'s WordPiece vocabulary, in id order."""
    letters = string.ascii_lowercase + string.digits
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters, *string.punctuation]
    return list(dict.fromkeys([*tokens, *(f"##{c}" for c in letters), *TINY_MODEL_WORDS]))


def build_tiny_model(
    path: str | Path,
    *,
    dim: int = 32,
    layers: int = 2,
    heads: int = 2,
    max_positions: int = 128,
    seed: int = 0,
    init_range: float = 0.3,
    vocabulary: Sequence[str] | None = None,
) -> Path:
    """Write a randomly initialised DistilBERT sentence-transformers model with CLS pooling.

    It has TAS-B's layout (no Normalize) and loads through the same code as the real model, but
    its vectors carry no meaning: assert on ids, counts, filters and errors, not on rankings.

    Args:
        path: Directory to write the model to (created if missing).
        dim: Hidden size, which is also the embedding dimension (TAS-B: 768).
        layers: Number of transformer layers (TAS-B: 6).
        heads: Attention heads; must divide ``dim`` (TAS-B: 12).
        max_positions: Longest input in tokens, also the model's ``max_seq_length``.
        seed: Seed for the random weights.
        init_range: Standard deviation of the random weights.
        vocabulary: WordPiece tokens in id order, special tokens included (default:
            :func:`tiny_vocabulary`).

    Returns:
        The model directory, loadable by ``SentenceTransformer(path)`` and ``TasbEmbeddings``.
    """
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import (  # type: ignore[attr-defined]
        BertTokenizerFast,
        DistilBertConfig,
        DistilBertModel,
    )

    vocab = {token: i for i, token in enumerate(vocabulary or tiny_vocabulary())}
    tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=True, model_max_length=max_positions)

    torch.manual_seed(seed)
    config = DistilBertConfig(
        vocab_size=len(vocab),
        dim=dim,
        hidden_dim=4 * dim,
        n_layers=layers,
        n_heads=heads,
        max_position_embeddings=max_positions,
        # Wider than BERT's 0.02, so that the CLS vector depends visibly on the text.
        initializer_range=init_range,
    )
    bert = DistilBertModel(config)
    with torch.no_grad():
        # Random LayerNorms make norms vary from text to text, as TAS-B's do.
        for module in bert.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.5)

    with tempfile.TemporaryDirectory() as hf_dir:
        tokenizer.save_pretrained(hf_dir)
        bert.save_pretrained(hf_dir)
        modules = [Transformer(hf_dir, max_seq_length=max_positions), Pooling(dim, "cls")]
        model = SentenceTransformer(modules=modules, device="cpu")
        model.similarity_fn_name = "dot"
        model.save(str(path))  # creates the folder
    return Path(path)
