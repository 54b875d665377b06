from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests

from langchain_tasb import TasbEmbeddings, TasbVectorStore
from langchain_tasb.chroma.store import PROBE_TEXT, ModelIdentity, probe_vector
from langchain_tasb.encoding import hardware, onnx_backend, onnx_cache, onnx_export, torch_backend
from langchain_tasb.encoding.onnx_backend import REMEMBERED_FILE, OnnxEncoder
from langchain_tasb.encoding.onnx_cache import cache_key, ensure_exported
from langchain_tasb.encoding.onnx_export import OnnxSettings, check_exportable
from langchain_tasb.encoding.onnx_outliers import gelu_matmuls
from langchain_tasb.encoding.pool import EncoderPool
from langchain_tasb.encoding.selection import resolve_backend
from langchain_tasb.encoding.torch_backend import TorchEncoder
from langchain_tasb.encoding.types import EncoderSettings

TEXTS = [
    "Around 9 Million people live in London",
    "London is known for its financial district",
    "the protein binds the cell surface",
    "how many people live in london city",
]

_STANDARD: list[str] = ["", ""]  # model path, cache dir: filled in by an autouse fixture


@pytest.fixture(autouse=True)
def _cache_env(onnx_cache: Path, tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASB_CACHE_DIR", str(onnx_cache))
    _STANDARD[:] = [str(tiny_model_path), str(onnx_cache)]


@pytest.fixture(scope="session")
def tiny_onnx(tiny_model_path: Path, onnx_cache: Path) -> OnnxEncoder:
    return OnnxEncoder(EncoderSettings(str(tiny_model_path)), cache_dir=onnx_cache / "onnx")


@pytest.fixture(scope="session")
def two_graph_onnx(tiny_model_path: Path, onnx_cache: Path) -> OnnxEncoder:
    """The export format 4 recipe: documents keep GELU-fed matrices fp32, queries all int8."""
    settings = OnnxSettings(fp32_after_gelu=True)
    return OnnxEncoder(
        EncoderSettings(str(tiny_model_path)), export=settings, cache_dir=onnx_cache / "onnx"
    )


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def torch_vectors(path: Path, texts: list[str], max_tokens: int = 256) -> np.ndarray:
    encoder = TorchEncoder(EncoderSettings(str(path), device="cpu"))
    return encoder.encode(texts, role="document", max_tokens=max_tokens, batch_size=8).vectors


def test_int8_vectors_are_close_to_torch(tiny_onnx: OnnxEncoder, tiny_model_path: Path) -> None:
    ours = tiny_onnx.encode(TEXTS, role="document", max_tokens=256, batch_size=2).vectors
    expected = torch_vectors(tiny_model_path, TEXTS)
    assert ours.dtype == np.float32 and ours.shape == expected.shape
    assert cosines(ours, expected).min() > 0.99
    ratio = np.linalg.norm(ours, axis=1) / np.linalg.norm(expected, axis=1)
    np.testing.assert_allclose(ratio, 1.0, atol=0.05)


def test_fp32_export_reproduces_torch(tiny_model_path: Path, onnx_cache: Path) -> None:
    fp32 = OnnxEncoder(
        EncoderSettings(str(tiny_model_path)),
        export=OnnxSettings(quantization="none"),
        cache_dir=onnx_cache / "onnx",
    )
    ours = fp32.encode(TEXTS, role="document", max_tokens=256, batch_size=3).vectors
    np.testing.assert_allclose(ours, torch_vectors(tiny_model_path, TEXTS), atol=1e-4)


def test_single_query_path_matches_batched_fp32(tiny_model_path: Path, onnx_cache: Path) -> None:
    fp32 = OnnxEncoder(
        EncoderSettings(str(tiny_model_path)),
        export=OnnxSettings(quantization="none"),
        cache_dir=onnx_cache / "onnx",
    )
    batched = fp32.encode(TEXTS, role="query", max_tokens=64, batch_size=4).vectors
    for i, text in enumerate(TEXTS):  # padding to the batch's longest changes nothing
        alone = fp32.encode([text], role="query", max_tokens=64, batch_size=4).vectors[0]
        np.testing.assert_allclose(alone, batched[i], atol=1e-5)


def test_fp32_graph_masks_padding_like_torch(tiny_model_path: Path, onnx_cache: Path) -> None:
    # The encoder feeds one unpadded text per run; the graph must still mask a padded batch.
    fp32 = OnnxEncoder(
        EncoderSettings(str(tiny_model_path)),
        export=OnnxSettings(quantization="none"),
        cache_dir=onnx_cache / "onnx",
    )
    tokenizer = fp32._truncating_tokenizer(64)
    rows = [tokenizer.encode(text).ids for text in TEXTS]
    width = max(map(len, rows)) + 3
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, : len(row)], mask[i, : len(row)] = row, 1
    padded = fp32.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    np.testing.assert_allclose(padded, torch_vectors(tiny_model_path, TEXTS), atol=1e-4)


def _fp32_weight_matmuls(graph_file: Path) -> list[str]:
    """Names of the plain (not quantised) MatMul nodes of a graph that multiply by weights."""
    import onnx

    graph = onnx.load(str(graph_file)).graph
    weights = {initializer.name for initializer in graph.initializer}
    return [n.name for n in graph.node if n.op_type == "MatMul" and n.input[1] in weights]


def test_queries_have_an_all_int8_graph_documents_keep_gelu_fed_matrices(
    two_graph_onnx: OnnxEncoder,
) -> None:
    import onnx

    exported = two_graph_onnx.exported
    assert exported.query_graph
    document_graph, query_graph = exported.graph_for("document"), exported.graph_for("query")
    assert document_graph != query_graph
    fp32_nodes = _fp32_weight_matmuls(document_graph)
    gelu_fed = gelu_matmuls(onnx.load(str(document_graph), load_external_data=False))
    assert sorted(fp32_nodes) == sorted(t.matmul for t in gelu_fed)
    assert len(fp32_nodes) == 2  # one feed-forward output projection per layer (2 layers)
    assert _fp32_weight_matmuls(query_graph) == []


def test_query_vectors_come_from_the_query_graph_alone_or_batched(
    two_graph_onnx: OnnxEncoder,
) -> None:
    tiny_onnx = two_graph_onnx
    batched = tiny_onnx.encode(TEXTS, role="query", max_tokens=64, batch_size=4).vectors
    as_documents = tiny_onnx.encode(TEXTS, role="document", max_tokens=64, batch_size=4).vectors
    query_session = onnx_backend.load_session(tiny_onnx.exported.graph_for("query"), 1)
    tokenizer = tiny_onnx._truncating_tokenizer(64)
    for i, text in enumerate(TEXTS):
        alone = tiny_onnx.encode([text], role="query", max_tokens=64, batch_size=1).vectors[0]
        np.testing.assert_array_equal(alone, batched[i])
        ids = np.asarray([tokenizer.encode(text).ids], dtype=np.int64)
        direct = query_session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})
        np.testing.assert_array_equal(alone, direct[0][0])
    assert not np.array_equal(batched, as_documents)  # two graphs, two slightly different vectors
    assert cosines(batched, as_documents).min() > 0.99


def _optimized_ops(model_file: Path, out: Path, open_session: Callable[..., Any]) -> set[str]:
    """Op types of ``model_file`` once ``open_session(file, options)`` has optimised it."""
    import onnx

    options = onnx_backend.session_options(1)
    options.optimized_model_filepath = str(out)
    open_session(model_file, options)
    return {node.op_type for node in onnx.load(str(out)).graph.node}


def test_sessions_leave_residual_add_and_layer_norm_unfused(
    tiny_onnx: OnnxEncoder, tmp_path: Path
) -> None:
    import onnxruntime as ort

    def ort_default(model_file: Path, options: Any) -> Any:
        return ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])

    # ONNX Runtime's SkipLayerNormalization kernel is five times slower on CPU than the
    # Add + LayerNormalization it replaces (see onnx_backend.DISABLED_OPTIMIZERS).
    for role in ("query", "document"):
        graph = tiny_onnx.exported.graph_for(role)
        fused = _optimized_ops(graph, tmp_path / f"{role}-default.onnx", ort_default)
        assert "SkipLayerNormalization" in fused  # the rewrite applies to our exports...
        ours = _optimized_ops(graph, tmp_path / f"{role}-ours.onnx", onnx_backend.new_session)
        assert "SkipLayerNormalization" not in ours  # ...and our sessions leave it out
        assert "LayerNormalization" in ours


def test_without_a_query_graph_queries_share_the_document_graph(
    tiny_model_path: Path, onnx_cache: Path
) -> None:
    settings = OnnxSettings(int8_queries=False)
    one_graph = OnnxEncoder(
        EncoderSettings(str(tiny_model_path)), export=settings, cache_dir=onnx_cache / "onnx"
    )
    assert not one_graph.exported.query_graph
    assert one_graph.exported.graph_for("query") == one_graph.exported.model_file
    queries = one_graph.encode(TEXTS, role="query", max_tokens=64, batch_size=4).vectors
    documents = one_graph.encode(TEXTS, role="document", max_tokens=64, batch_size=4).vectors
    np.testing.assert_array_equal(queries, documents)  # the tiny model has no prompts
    assert not OnnxSettings(fp32_after_gelu=False).query_graph  # all int8 already
    assert not OnnxSettings(quantization="none").query_graph


def test_cls_pooling_and_dot_similarity_read_from_model(tiny_onnx: OnnxEncoder) -> None:
    info = tiny_onnx.info
    assert (info.pooling, info.normalized, info.similarity, info.dimension) == (
        "cls",
        False,
        "dot",
        32,
    )
    norms = np.linalg.norm(
        tiny_onnx.encode(TEXTS, role="document", max_tokens=64, batch_size=4).vectors, axis=1
    )
    assert not np.allclose(norms, 1.0, atol=1e-2)


@pytest.mark.slow
def test_mean_pooling_and_normalize_with_minilm(minilm_path: Path, onnx_cache: Path) -> None:
    onnx = OnnxEncoder(EncoderSettings(str(minilm_path)), cache_dir=onnx_cache / "onnx")
    assert (onnx.info.pooling, onnx.info.normalized, onnx.info.similarity) == (
        "mean",
        True,
        "cosine",
    )
    texts = [*TEXTS, "Vaccines train the immune system to recognise a pathogen. " * 3]
    ours = onnx.encode(texts, role="document", max_tokens=256, batch_size=2).vectors
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert cosines(ours, torch_vectors(minilm_path, texts)).min() > 0.98


def test_truncation_is_counted_from_the_one_tokenisation(
    tiny_onnx: OnnxEncoder, tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at_limit = "people live in london city"  # 5 tokens + [CLS] + [SEP] = 7
    over = "people live in london city too"
    expected = TorchEncoder(EncoderSettings(str(tiny_model_path), device="cpu")).encode(
        [over], role="document", max_tokens=7, batch_size=1
    )

    def no_second_pass(*args: Any, **kwargs: Any) -> int:
        msg = "the ONNX path must not re-tokenise to count truncation"
        raise AssertionError(msg)

    monkeypatch.setattr(torch_backend, "count_truncated", no_second_pass)
    result = tiny_onnx.encode(
        [at_limit, over, over, "x"], role="document", max_tokens=7, batch_size=8
    )
    assert result.truncated == 2
    assert tiny_onnx.encode([at_limit], role="query", max_tokens=7, batch_size=1).truncated == 0
    assert tiny_onnx.encode([over], role="query", max_tokens=7, batch_size=1).truncated == 1
    # The truncated text was cut to exactly the limit: its vector is the 7-token one's.
    assert cosines(result.vectors[1:2], expected.vectors)[0] > 0.99
    assert tiny_onnx._hf_tokenizer is None  # the slow Python tokenizer was never loaded


def test_hf_tokenizer_is_available_for_chunking(tiny_onnx: OnnxEncoder) -> None:
    ids = tiny_onnx.tokenizer("people live in london", add_special_tokens=False)["input_ids"]
    assert len(ids) == 4


def test_export_runs_once_then_the_cache_is_reused(
    tiny_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    real_export = onnx_export.export_onnx

    def counting(model: Any, destination: Path, settings: OnnxSettings) -> None:
        calls.append(destination)
        real_export(model, destination, settings)

    monkeypatch.setattr(onnx_export, "export_onnx", counting)
    first = OnnxEncoder(EncoderSettings(str(tiny_model_path)), cache_dir=tmp_path)
    second = OnnxEncoder(EncoderSettings(str(tiny_model_path)), cache_dir=tmp_path)
    assert len(calls) == 1
    assert first.exported.directory == second.exported.directory
    assert second.session is first.session  # one ONNX Runtime session per process
    assert not list(tmp_path.glob(".tmp-*"))  # the temporary folder was moved into place


def test_cache_key_follows_weights_and_settings(tiny_model_path: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(tiny_model_path, tmp_path / "model"))
    key = cache_key(str(copy), copy, OnnxSettings())
    assert key == cache_key(str(copy), copy, OnnxSettings())
    assert key != cache_key(str(copy), copy, OnnxSettings(per_channel=False))
    assert key != cache_key(str(copy), copy, OnnxSettings(int8_queries=False))
    weights = copy / "model.safetensors"
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert key == cache_key(str(copy), copy, OnnxSettings())  # touched, not changed
    data = weights.read_bytes()
    weights.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    assert key != cache_key(str(copy), copy, OnnxSettings())  # (test_onnx_cache.py: more)


def test_crashed_export_leaves_no_cache_entry(
    tiny_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(model: Any, destination: Path, settings: OnnxSettings) -> None:
        (destination / "model.onnx").write_bytes(b"half a model")
        msg = "killed mid-export"
        raise RuntimeError(msg)

    monkeypatch.setattr(onnx_export, "export_onnx", crash)
    with pytest.raises(RuntimeError, match="killed mid-export"):
        ensure_exported(str(tiny_model_path), cache_dir=tmp_path)
    # Neither a final folder nor a temporary one; the model files' digests may be kept.
    assert [p.name for p in tmp_path.iterdir() if p.name != "hashes.json"] == []
    monkeypatch.undo()
    exported = ensure_exported(str(tiny_model_path), cache_dir=tmp_path)
    assert (exported.directory / "meta.json").is_file()


def test_broken_cache_folder_is_exported_again(tiny_model_path: Path, tmp_path: Path) -> None:
    key = cache_key(str(tiny_model_path), tiny_model_path.resolve(), OnnxSettings())
    broken = tmp_path / key
    broken.mkdir()
    (broken / "model.onnx").write_bytes(b"truncated")  # no meta.json: never finished
    exported = ensure_exported(str(tiny_model_path), cache_dir=tmp_path)
    assert exported.directory == broken
    encoder = OnnxEncoder(EncoderSettings(str(tiny_model_path)), cache_dir=tmp_path)
    assert encoder.encode(TEXTS, role="document", max_tokens=64, batch_size=4).vectors.shape == (
        4,
        32,
    )


def test_export_missing_its_query_graph_is_exported_again(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    settings = OnnxSettings(fp32_after_gelu=True)
    first = ensure_exported(str(tiny_model_path), settings=settings, cache_dir=tmp_path)
    assert first.graph_for("query") != first.model_file
    first.graph_for("query").unlink()  # deleted by hand: the export is no longer complete
    again = ensure_exported(str(tiny_model_path), settings=settings, cache_dir=tmp_path)
    assert again.directory == first.directory
    assert again.graph_for("query").is_file()


def test_export_finished_first_by_another_process_is_kept(
    tiny_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    key = cache_key(str(tiny_model_path), tiny_model_path.resolve(), OnnxSettings())
    rival = ensure_exported(str(tiny_model_path), cache_dir=tmp_path / "elsewhere").directory
    (rival / "winner").write_text("the other process")
    real_export = onnx_export.export_onnx

    def racing(model: Any, destination: Path, settings: OnnxSettings) -> None:
        real_export(model, destination, settings)
        # Meanwhile another process finishes the same export and renames it into place.
        os.replace(rival, cache / key)

    monkeypatch.setattr(onnx_export, "export_onnx", racing)
    exported = ensure_exported(str(tiny_model_path), cache_dir=cache)
    assert (exported.directory / "winner").is_file()  # ours lost the race and was dropped
    assert sorted(p.name for p in cache.iterdir()) in ([key], [key, "hashes.json"])
    vectors = OnnxEncoder(EncoderSettings(str(tiny_model_path)), cache_dir=cache).encode(
        TEXTS, role="document", max_tokens=64, batch_size=4
    )
    assert vectors.vectors.shape == (4, 32)


def test_unsupported_module_is_refused_with_the_fix() -> None:
    class Transformer:
        pass

    class Router:
        pass

    class Model(list[Any]):
        prompts: dict[str, str] = {}  # noqa: RUF012  (a stand-in's class attribute)

    with pytest.raises(ValueError, match=r"Router module.*backend='torch'"):
        check_exportable(Model([Transformer(), Router()]), "m")
    with pytest.raises(ValueError, match=r"backend='torch'"):
        check_exportable(Model([Router()]), "m")


def test_auto_backend_is_int8_on_cpu_and_half_torch_on_cuda(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hardware, "cpu_flags", frozenset)  # a CPU without AMX
    assert resolve_backend("auto", "cpu") == ("onnx-int8", "cpu", "float32")
    assert resolve_backend("auto", "cuda") == ("torch", "cuda", "float16")
    assert resolve_backend("auto", "cuda", "bfloat16") == ("torch", "cuda", "bfloat16")
    assert resolve_backend("auto", "cpu", "bfloat16") == ("torch", "cpu", "bfloat16")
    assert resolve_backend("torch", "cpu") == ("torch", "cpu", "float32")
    with pytest.raises(ValueError, match="runs on CPU"):
        resolve_backend("onnx-int8", "cuda")
    with pytest.raises(ValueError, match="applies to the torch backend"):
        resolve_backend("onnx-int8", None, "float16")
    with pytest.raises(ValueError, match="backend must be one of"):
        resolve_backend("tensorrt", "cpu")  # type: ignore[arg-type]
    monkeypatch.setenv("TASB_BACKEND", "onnx")
    with pytest.raises(ValueError, match="TASB_BACKEND='onnx' is not a backend"):
        TasbEmbeddings(model_name="x")
    monkeypatch.setenv("TASB_BACKEND", "onnx-int8")
    assert TasbEmbeddings(model_name="x").backend == "onnx-int8"


def test_embeddings_with_onnx_backend_cache_queries(
    tiny_model_path: Path, encode_calls: Callable[[TasbEmbeddings], list[Any]]
) -> None:
    emb = TasbEmbeddings(model_name=str(tiny_model_path), backend="onnx-int8", device="cpu")
    assert isinstance(emb.encoder, OnnxEncoder)
    first = emb.embed_query("london")
    calls = encode_calls(emb)
    assert emb.embed_query("london") == first
    assert calls == []
    assert len(emb.embed_documents(TEXTS)) == len(TEXTS)


def test_int8_model_passes_the_collection_identity_check(
    tiny_model_path: Path, tiny_fp32_identity: ModelIdentity
) -> None:
    onnx_emb = TasbEmbeddings(model_name=str(tiny_model_path), backend="onnx-int8")
    probe = probe_vector(onnx_emb)
    assert tiny_fp32_identity.mismatch(onnx_emb.dimension, onnx_emb.similarity, probe) is None


def test_opening_a_collection_to_query_it_loads_only_the_query_graph(
    tiny_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = TasbEmbeddings(model_name=str(tiny_model_path), backend="onnx-int8")
    remembered = writer.encoder.exported.directory / REMEMBERED_FILE  # type: ignore[attr-defined]
    remembered.unlink(missing_ok=True)
    store = TasbVectorStore(
        embedding=writer, collection_name="docs", persist_directory=str(tmp_path)
    )
    store.add_texts(TEXTS, ids=["a", "b", "c", "d"])
    assert remembered.exists()  # the identity probe, computed once

    loaded: list[str] = []
    load = onnx_backend.load_session

    def spy(model_file: Path, threads: int) -> Any:
        loaded.append(Path(model_file).name)
        return load(model_file, threads)

    monkeypatch.setattr(onnx_backend, "load_session", spy)
    reader = TasbEmbeddings(model_name=str(tiny_model_path), backend="onnx-int8")
    opened = TasbVectorStore(
        embedding=reader, collection_name="docs", persist_directory=str(tmp_path)
    )
    found = opened.similarity_search(TEXTS[2], k=2)
    # The probe came from the file: only the query graph (one session on every core) loaded.
    assert loaded == [reader.encoder.exported.graph_for("query").name]  # type: ignore[attr-defined]
    assert probe_vector(reader) == writer.embed_documents([PROBE_TEXT])[0]
    dots = np.asarray(writer.embed_documents(TEXTS)) @ np.asarray(reader.embed_query(TEXTS[2]))
    assert [d.id for d in found] == [["a", "b", "c", "d"][i] for i in np.argsort(-dots)[:2]]


def test_remembered_vectors_are_keyed_by_role_and_survive_a_bad_or_read_only_file(
    two_graph_onnx: OnnxEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny_onnx = two_graph_onnx  # two graphs: a query's vector differs from a document's
    text = "a fixed sentence that is remembered"
    remembered = tiny_onnx.exported.directory / REMEMBERED_FILE
    remembered.write_text("{not json")
    by_role = {
        role: tiny_onnx.encode([text], role=role, max_tokens=64, batch_size=1).vectors[0]
        for role in ("document", "query")
    }
    assert not np.array_equal(by_role["document"], by_role["query"])  # int8 query graph
    for role, expected in by_role.items():
        np.testing.assert_array_equal(
            tiny_onnx.encode_fixed(text, role=role, max_tokens=64), expected
        )
    assert len(json.loads(remembered.read_text())["entries"]) >= 2  # the broken file was replaced

    def refuse(*args: Any) -> None:
        msg = "read-only cache"
        raise PermissionError(msg)

    monkeypatch.setattr(onnx_cache.os, "replace", refuse)  # write_json
    other = "another fixed sentence"
    expected = tiny_onnx.encode([other], role="document", max_tokens=64, batch_size=1).vectors[0]
    for _ in range(2):  # computed each time, since it cannot be written down
        np.testing.assert_array_equal(
            tiny_onnx.encode_fixed(other, role="document", max_tokens=64), expected
        )
    assert not list(remembered.parent.glob(f".{REMEMBERED_FILE}*"))  # no temporaries left


def test_pool_is_started_once_and_reused(tiny_model_path: Path, tiny_onnx: OnnxEncoder) -> None:
    expected = torch_vectors(tiny_model_path, TEXTS * 3, max_tokens=64)
    with EncoderPool(EncoderSettings(str(tiny_model_path), backend="onnx-int8"), workers=2) as pool:
        first = pool.encode(TEXTS * 3, role="document", max_tokens=64, batch_size=2)
        pids = set(pool.worker_pids)
        second = pool.encode(TEXTS * 3, role="document", max_tokens=64, batch_size=2)
        assert pool.worker_pids == pids and 1 <= len(pids) <= 2
        assert os.getpid() not in pids
        assert pool.info.dimension == 32
    for result in (first, second):
        assert cosines(result.vectors, expected).min() > 0.99  # rows back in input order
    with pytest.raises(RuntimeError, match="closed"):
        pool.encode(TEXTS, role="document", max_tokens=64, batch_size=2)


def test_embeddings_processes_keep_one_pool_until_close(tiny_model_path: Path) -> None:
    emb = TasbEmbeddings(model_name=str(tiny_model_path), backend="onnx-int8", processes=1)
    try:
        emb.embed_documents(TEXTS)
        pool = emb._pool
        emb.embed_documents(TEXTS[:2])
        assert emb._pool is pool is not None
        assert len(pool.worker_pids) == 1
    finally:
        emb.close()
    assert emb._pool is None


class TestOnnxEmbeddingsStandardIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[TasbEmbeddings]:
        return TasbEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model_name": _STANDARD[0], "backend": "onnx-int8"}


def test_int8_vectors_do_not_depend_on_the_rest_of_the_batch(minilm_path: Path) -> None:
    # Batched together, these differed by up to 0.016 (0.995 cosine) with real weights.
    from langchain_tasb import TasbEmbeddings

    emb = TasbEmbeddings(model_name=str(minilm_path), backend="onnx-int8")
    text = "people live in london and the city has a financial district"
    others = [f"the protein {i} binds the cell surface " * (1 + i) for i in range(15)]
    alone = np.asarray(emb.embed_documents([text])[0])
    batched = np.asarray(emb.embed_documents([*others, text])[-1])
    np.testing.assert_array_equal(alone, batched)


def test_encoding_leaves_the_callers_floating_point_state_alone(tiny_onnx: OnnxEncoder) -> None:
    tiny_onnx.encode(TEXTS, role="document", max_tokens=64, batch_size=2)
    tiny_onnx.encode(TEXTS[:1], role="query", max_tokens=64, batch_size=1)
    subnormal = np.array([1e-42], dtype=np.float32)
    assert (subnormal * 2)[0] > 0  # no flush-to-zero left behind on this thread
