"""Build tiny TAS-B-shaped models on the fly, for tests, examples and speed benchmarks.

Nothing here downloads anything: the WordPiece vocabulary is written from a word list and the
DistilBERT weights are random. The result is a real sentence-transformers model directory
(Transformer + CLS Pooling, no Normalize), so it runs through exactly the same loading and
encoding code as the real ``msmarco-distilbert-base-tas-b``.
"""

from __future__ import annotations

import string
import tempfile
from pathlib import Path

_SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

# Common English words: enough for whole-word tokens on ordinary text; anything else falls
# back to single-character WordPiece pieces, so no input ever maps to [UNK] wholesale.
_WORDS = """
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


def _vocabulary() -> list[str]:
    letters = string.ascii_lowercase + string.digits
    pieces = [f"##{c}" for c in letters]
    punctuation = list(string.punctuation)
    seen: dict[str, None] = dict.fromkeys(
        _SPECIAL_TOKENS + list(letters) + punctuation + pieces + _WORDS
    )
    return list(seen)


def build_tiny_model(
    path: str | Path,
    *,
    dim: int = 32,
    layers: int = 2,
    heads: int = 2,
    max_positions: int = 128,
    seed: int = 0,
    init_range: float = 0.3,
) -> Path:
    """Write a randomly initialised DistilBERT sentence-transformers model with CLS pooling.

    Args:
        path: Directory to write the model to (created if missing).
        dim: Hidden size, which is also the embedding dimension (TAS-B: 768).
        layers: Number of transformer layers (TAS-B: 6).
        heads: Attention heads; must divide ``dim`` (TAS-B: 12).
        max_positions: Longest input in tokens, also the model's ``max_seq_length``.
        seed: Seed for the random weights, so two builds with one seed are the same model.
        init_range: Standard deviation of the random weights.

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

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    vocab = {token: i for i, token in enumerate(_vocabulary())}
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
        # Fresh LayerNorms (gain 1, bias 0) give every output vector the norm sqrt(dim);
        # random ones make norms vary from text to text, as TAS-B's unnormalised vectors do.
        for module in bert.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.5)

    with tempfile.TemporaryDirectory() as hf_dir:
        tokenizer.save_pretrained(hf_dir)
        bert.save_pretrained(hf_dir)
        transformer = Transformer(hf_dir, max_seq_length=max_positions)
        pooling = Pooling(dim, pooling_mode="cls")
        model = SentenceTransformer(modules=[transformer, pooling], device="cpu")
        model.similarity_fn_name = "dot"
        model.save(str(out))
    return out


def build_tasb_shaped_model(path: str | Path, *, seed: int = 0) -> Path:
    """A model with TAS-B's exact shape and cost (768 dims, 6 layers, 12 heads, 512 tokens).

    Its weights are random, so its vectors are meaningless, but it encodes exactly as fast as
    TAS-B: the speed benchmarks use it where the real weights cannot be downloaded.
    """
    return build_tiny_model(path, dim=768, layers=6, heads=12, max_positions=512, seed=seed)
