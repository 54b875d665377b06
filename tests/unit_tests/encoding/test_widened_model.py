"""benchmarks/models.py's build_widened_model: a DistilBERT twice as wide, same vectors.

The speed benchmarks stand this model in for TAS-B, so its equivalence to the source model is
tested here although the builder lives with the benchmarks, outside the package.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from langchain_tasb.testing import tiny_vocabulary


def _load_benchmark_models() -> object:
    path = Path(__file__).resolve().parents[3] / "benchmarks" / "models.py"
    spec = importlib.util.spec_from_file_location("benchmark_models", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_widened_model = _load_benchmark_models().build_widened_model  # type: ignore[attr-defined]

TEXTS = [
    "the patient study results",
    "a longer text about heat flow over a wing at high pressure, and what it means for the data",
    "x",
]


def _tiny_bert(path: Path, *, pooling: str, normalize: bool) -> Path:
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast  # type: ignore[attr-defined]

    vocab = {token: i for i, token in enumerate(tiny_vocabulary())}
    torch.manual_seed(0)
    bert = BertModel(
        BertConfig(
            vocab_size=len(vocab),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=64,
            initializer_range=0.3,
        ),
        add_pooling_layer=False,
    )
    with torch.no_grad():  # every parameter matters, LayerNorms and token types included
        for param in bert.parameters():
            param.normal_(0.0, 0.3)
    hf = path / "hf"
    BertTokenizerFast(vocab=vocab, do_lower_case=True, model_max_length=64).save_pretrained(hf)
    bert.save_pretrained(hf)
    modules = [Transformer(str(hf), max_seq_length=64), Pooling(32, pooling_mode=pooling)]
    if normalize:
        modules.append(Normalize())
    SentenceTransformer(modules=modules, device="cpu").save(str(path / "st"))
    return path / "st"


@pytest.mark.parametrize(
    ("pooling", "normalize", "scale"),
    [("cls", False, 1.0), ("mean", True, 2**-0.5)],
)
def test_the_widened_model_gives_the_source_vector_twice(
    tmp_path: Path, pooling: str, normalize: bool, scale: float
) -> None:
    from sentence_transformers import SentenceTransformer

    source = _tiny_bert(tmp_path / "bert", pooling=pooling, normalize=normalize)
    wide_dir = build_widened_model(source, tmp_path / "wide")
    narrow = SentenceTransformer(str(source), device="cpu").encode(TEXTS)
    wide_model = SentenceTransformer(str(wide_dir), device="cpu")
    wide = wide_model.encode(TEXTS)

    assert type(wide_model[0].auto_model).__name__ == "DistilBertModel"
    assert wide_model.get_embedding_dimension() == 64
    assert wide.shape == (3, 64)
    np.testing.assert_allclose(wide, np.concatenate([narrow, narrow], 1) * scale, atol=2e-5)


def test_widening_refuses_a_model_that_is_not_bert(tmp_path: Path, tiny_model_path: Path) -> None:
    with pytest.raises(TypeError, match="needs a BertModel, got DistilBertModel"):
        build_widened_model(tiny_model_path, tmp_path / "wide")
