"""Tests for langchain_tasb.evaluation.experiment and ``tasb eval``: exact search vs the index."""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from langchain_tasb import TasbEmbeddings
from langchain_tasb.chroma.store import HnswSettings
from langchain_tasb.cli import main
from langchain_tasb.evaluation import BeirDataset, evaluate, find_data_dir, load_beir
from langchain_tasb.evaluation.cache import (
    cached_corpus_vectors,
    default_cache_dir,
    embedding_cache_key,
    encode_corpus,
)
from langchain_tasb.evaluation.experiment import run_evaluation
from langchain_tasb.evaluation.report import EvalReport, require_matplotlib

if TYPE_CHECKING:
    from collections.abc import Mapping

# Index settings that make HNSW exhaustive on up to 128 documents. hnswlib keeps 2 x M links per
# node at layer 0, so below 2 x 64 documents no link is ever pruned: every node keeps the links
# back from the nodes it chose, the graph stays connected, and a search with ef_search above
# the number of documents visits them all. With max_neighbors 16, pruning left a node
# unreachable in 2 of 20 builds of ADI's 82 documents (recall@10 against exact 0.997).
EXHAUSTIVE = HnswSettings(ef_search=500, ef_construction=500, max_neighbors=64)

_WORD_TEXT = (
    "city population london water energy search query document index vector protein gene "
    "patient study disease risk blood air flow wing pressure heat library information science "
    "theory method model data speed memory disk file retrieval language system country world"
)
_WORDS = _WORD_TEXT.split()


def _write_beir(folder: Path, n_docs: int = 60, n_queries: int = 8) -> Path:
    """A small BEIR folder: distinct documents, graded qrels, one empty document."""
    rng = np.random.default_rng(7)
    folder.mkdir(parents=True, exist_ok=True)
    corpus = []
    for i in range(n_docs):
        words = rng.choice(_WORDS, size=12)
        title = "" if i % 5 == 0 else f"{_WORDS[i % len(_WORDS)]} {i}"
        text = "" if i == 3 else f"{' '.join(words)} number {i}"
        corpus.append({"_id": f"d{i}", "title": title, "text": text, "metadata": {}})
    queries = [
        {"_id": f"q{j}", "text": " ".join(rng.choice(_WORDS, size=4))} for j in range(n_queries)
    ]
    with (folder / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(doc) + "\n" for doc in corpus)
    with (folder / "queries.jsonl").open("w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(q) + "\n" for q in queries)
    (folder / "qrels").mkdir(exist_ok=True)
    rows = ["query-id\tcorpus-id\tscore"]
    for j in range(n_queries):
        for doc in rng.choice(n_docs, size=4, replace=False):
            rows.append(f"q{j}\td{doc}\t{int(rng.integers(0, 3))}")
    (folder / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_beir(tmp_path_factory.mktemp("beir") / "small")


@pytest.fixture(scope="module")
def small(small_dir: Path) -> BeirDataset:
    return load_beir(small_dir)


@pytest.fixture(scope="module")
def small_report(
    small: BeirDataset, tiny_embeddings: TasbEmbeddings, tmp_path_factory: pytest.TempPathFactory
) -> EvalReport:
    return run_evaluation(
        small,
        tiny_embeddings,
        hnsw=EXHAUSTIVE,
        ef_search_sweep=(4, 500),
        cache_dir=tmp_path_factory.mktemp("cache"),
    )


def plain_ndcg_at_10(
    run: Mapping[str, Mapping[str, float]], qrels: Mapping[str, dict[str, int]]
) -> float:
    """nDCG@10 written out with numpy, independently of langchain_tasb.evaluation."""
    discounts = 1.0 / np.log2(np.arange(2, 12))
    values = []
    for query_id, rels in qrels.items():
        ranked = sorted(run.get(query_id, {}).items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
        gains = np.array([max(rels.get(doc, 0), 0) for doc, _ in ranked[:10]], dtype=float)
        ideal = np.array(sorted((g for g in rels.values() if g > 0), reverse=True)[:10], float)
        idcg = float(ideal @ discounts[: ideal.size])
        values.append(float(gains @ discounts[: gains.size]) / idcg if idcg else 0.0)
    return float(np.mean(values))


# --------------------------------------------------------------------------------------------
# Library
# --------------------------------------------------------------------------------------------


def test_index_matches_exact_search_with_exhaustive_hnsw(
    small_report: EvalReport, small: BeirDataset, tiny_embeddings: TasbEmbeddings
) -> None:
    report = small_report
    assert report.index.recall_at_10_vs_exact == 1.0
    for key in ("ndcg@10", "recall@100", "mrr@10", "map@100"):
        assert report.index.metrics[key] == pytest.approx(report.exact.metrics[key], abs=1e-9)
        assert 0.0 <= report.exact.metrics[key] <= 1.0
    assert report.ndcg_at_10_loss == pytest.approx(0.0, abs=1e-9)
    # The exact ranking is the dot-product ranking of title + " " + text.
    docs = np.asarray(tiny_embeddings.embed_documents(small.doc_texts))
    for query_id, text in small.queries.items():
        scores = docs @ np.asarray(tiny_embeddings.embed_query(text))
        expected = [small.doc_ids[i] for i in np.argsort(-scores)[:10]]
        got = sorted(report.exact.run[query_id], key=report.exact.run[query_id].get)[::-1]
        assert got[:10] == expected
    # Fewer documents than 100: every document is ranked, by both searches.
    assert report.exact.k == report.index.k == len(small.doc_ids)
    assert all(len(run) == len(small.doc_ids) for run in report.index.run.values())
    assert report.exact.metrics == evaluate(report.exact.run, small.qrels)


def test_report_settings_describe_the_run(small_report: EvalReport, small: BeirDataset) -> None:
    report = small_report
    assert (report.dataset.name, report.dataset.split) == ("small", "test")
    assert report.dataset.n_docs == 60
    assert report.dataset.n_queries == 8
    assert report.dataset.n_judgments == 32
    assert report.model.dimension == 32
    assert report.model.similarity == "dot"
    assert report.model.backend == "torch-float32"  # tests run the exact torch backend (conftest)
    assert report.hnsw == EXHAUSTIVE
    assert report.exact.latency.mean_ms > 0
    assert report.index.latency.p95_ms >= report.index.latency.p50_ms > 0
    assert report.versions["chromadb"] != "not installed"


def test_sweep_reports_each_ef_search_at_k_10(small_report: EvalReport) -> None:
    assert [p.ef_search for p in small_report.sweep] == [4, 500]
    assert all(p.k == 10 for p in small_report.sweep)
    widest = small_report.sweep[-1]
    assert widest.recall_at_10_vs_exact == 1.0
    assert widest.ndcg_at_10 == pytest.approx(small_report.exact.metrics["ndcg@10"], abs=1e-9)


def test_json_holds_every_figure_and_setting(small_report: EvalReport) -> None:
    data = json.loads(small_report.to_json())
    assert set(data) == {
        "dataset",
        "model",
        "hnsw",
        "exact",
        "index",
        "ndcg@10_loss",
        "sweep",
        "encoding",
        "index_build_s",
        "versions",
    }
    assert set(data["dataset"]) == {
        "name",
        "split",
        "n_docs",
        "n_queries",
        "n_judgments",
        "corpus_sha256",
    }
    assert set(data["model"]) == {
        "name",
        "dimension",
        "similarity",
        "backend",
        "document_max_tokens",
        "query_max_tokens",
    }
    assert data["hnsw"] == {
        "space": "ip",
        "ef_search": 500,
        "ef_construction": 500,
        "max_neighbors": 64,
    }
    for side in ("exact", "index"):
        assert set(data[side]) == {"metrics", "recall@10_vs_exact", "latency", "k"}
        assert set(data[side]["latency"]) == {"mean_ms", "p50_ms", "p95_ms"}
        for key in ("ndcg@10", "recall@100", "mrr@10", "map@100"):
            assert data[side]["metrics"][key] == getattr(small_report, side).metrics[key]
    assert [p["ef_search"] for p in data["sweep"]] == [4, 500]
    assert set(data["sweep"][0]) == {"ef_search", "recall@10_vs_exact", "ndcg@10", "latency", "k"}
    assert set(data["encoding"]) == {"cache_path", "cache_hit", "docs_s", "query_ms"}
    assert {"python", "chromadb", "numpy", "torch", "langchain-tasb"} <= set(data["versions"])
    assert data["ndcg@10_loss"] == small_report.ndcg_at_10_loss


def test_markdown_table_lists_both_searches_and_the_sweep(small_report: EvalReport) -> None:
    text = small_report.to_markdown()
    assert "| search | nDCG@10 | Recall@100 | MRR@10 | MAP@100 |" in text
    exact_row = next(line for line in text.splitlines() if line.startswith("| exact |"))
    assert f"{small_report.exact.metrics['ndcg@10']:.4f}" in exact_row
    assert "| index (ef_search=500) |" in text
    assert "| 4 |" in text
    assert "| 500 | 1.0000 |" in text


def test_second_run_reads_the_cache_without_encoding_the_corpus(
    small: BeirDataset,
    tiny_embeddings: TasbEmbeddings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = run_evaluation(small, tiny_embeddings, hnsw=EXHAUSTIVE, cache_dir=tmp_path)
    assert not first.encoding.cache_hit
    assert first.encoding.cache_path is not None
    assert Path(first.encoding.cache_path).parent == tmp_path
    corpus = set(small.doc_texts)
    original = TasbEmbeddings.embed_documents

    def guarded(self: TasbEmbeddings, texts: list[str]) -> list[list[float]]:
        if corpus & set(texts):
            msg = "the corpus was encoded again despite the cache"
            raise AssertionError(msg)
        return original(self, texts)

    monkeypatch.setattr(TasbEmbeddings, "embed_documents", guarded)
    second = run_evaluation(small, tiny_embeddings, hnsw=EXHAUSTIVE, cache_dir=tmp_path)
    assert second.encoding.cache_hit
    assert second.encoding.cache_path == first.encoding.cache_path
    assert second.exact.metrics == first.exact.metrics


@pytest.mark.parametrize("damage", ["garbage", "wrong shape", "truncated"])
def test_damaged_cache_is_recomputed_with_a_warning(
    small: BeirDataset,
    tiny_embeddings: TasbEmbeddings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    damage: str,
) -> None:
    vectors, path, hit = cached_corpus_vectors(small, tiny_embeddings, cache_dir=tmp_path)
    assert path is not None
    assert not hit
    if damage == "garbage":
        path.write_bytes(b"not a numpy file")
    elif damage == "wrong shape":
        np.save(path, vectors[:-1])
    else:
        path.write_bytes(path.read_bytes()[:200])
    with caplog.at_level(logging.WARNING, logger="langchain_tasb.evaluation.experiment"):
        again, again_path, again_hit = cached_corpus_vectors(
            small, tiny_embeddings, cache_dir=tmp_path
        )
    assert not again_hit
    assert again_path == path
    assert "re-encoding" in caplog.text
    np.testing.assert_allclose(again, vectors, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.load(path), again)  # the file was repaired
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
    _, _, hit_now = cached_corpus_vectors(small, tiny_embeddings, cache_dir=tmp_path)
    assert hit_now


def test_cache_key_follows_model_settings_and_corpus(
    small: BeirDataset, small_dir: Path, tiny_embeddings: TasbEmbeddings, other_model_path: Path
) -> None:
    key = embedding_cache_key(small, tiny_embeddings)
    assert embedding_cache_key(load_beir(small_dir), tiny_embeddings) == key
    shorter = TasbEmbeddings(
        model_name=tiny_embeddings.model_name, device="cpu", document_max_tokens=16
    )
    assert embedding_cache_key(small, shorter) != key
    other = TasbEmbeddings(model_name=str(other_model_path), device="cpu")
    assert embedding_cache_key(small, other) != key
    edited = BeirDataset(
        name=small.name,
        split=small.split,
        corpus=small.corpus,
        doc_ids=small.doc_ids,
        doc_texts=[*small.doc_texts[:-1], small.doc_texts[-1] + " edited"],
        queries=small.queries,
        qrels=small.qrels,
    )
    assert embedding_cache_key(edited, tiny_embeddings) != key


def test_cache_key_separates_backends_and_precisions(
    small: BeirDataset, tiny_model_path: Path
) -> None:
    fp32 = TasbEmbeddings(model_name=str(tiny_model_path), device="cpu", backend="torch")
    bf16 = TasbEmbeddings(
        model_name=str(tiny_model_path), device="cpu", backend="torch", precision="bfloat16"
    )
    assert embedding_cache_key(small, fp32) != embedding_cache_key(small, bf16)


def test_cache_key_separates_int8_from_int8_with_torch_documents(
    small: BeirDataset, tiny_model_path: Path, onnx_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both embed the probe (one text) with the same ONNX graph; only the label differs.
    monkeypatch.setenv("TASB_CACHE_DIR", str(onnx_cache))
    int8 = TasbEmbeddings(model_name=str(tiny_model_path), backend="onnx-int8")
    split = TasbEmbeddings(model_name=str(tiny_model_path), backend="onnx-int8+torch")
    assert embedding_cache_key(small, int8) != embedding_cache_key(small, split)


def test_default_cache_dir_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASB_CACHE_DIR", str(tmp_path / "tasb"))
    assert default_cache_dir() == tmp_path / "tasb" / "embeddings"
    monkeypatch.delenv("TASB_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "langchain-tasb" / "embeddings"


def test_no_cache_writes_nothing(
    small: BeirDataset, tiny_embeddings: TasbEmbeddings, tmp_path: Path
) -> None:
    _, path, hit = cached_corpus_vectors(
        small, tiny_embeddings, cache_dir=tmp_path, use_cache=False
    )
    assert (path, hit) == (None, False)
    assert not list(tmp_path.iterdir())


def test_sweep_refuses_a_given_client(small: BeirDataset, tiny_embeddings: TasbEmbeddings) -> None:
    with pytest.raises(ValueError, match="leave client=None"):
        run_evaluation(small, tiny_embeddings, ef_search_sweep=(8,), client=object())
    with pytest.raises(ValueError, match="positive integers"):
        run_evaluation(small, tiny_embeddings, ef_search_sweep=(0,))


def test_given_client_is_used_and_left_clean(
    small: BeirDataset, tiny_embeddings: TasbEmbeddings, tmp_path: Path
) -> None:
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(
        path=str(tmp_path / "db"), settings=Settings(anonymized_telemetry=False)
    )
    try:
        report = run_evaluation(
            small, tiny_embeddings, hnsw=EXHAUSTIVE, cache_dir=tmp_path, client=client
        )
        assert report.index.recall_at_10_vs_exact == 1.0
        assert client.list_collections() == []
    finally:
        client.close()


def test_plot_without_matplotlib_names_the_extra(
    small_report: EvalReport, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"langchain-tasb\[plot\]"):
        require_matplotlib()
    with pytest.raises(ImportError, match=r"langchain-tasb\[plot\]"):
        small_report.plot(tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_plot_writes_a_png(small_report: EvalReport, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = small_report.plot(tmp_path / "report.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_adi_index_matches_exact_search(tiny_embeddings: TasbEmbeddings, tmp_path: Path) -> None:
    folder = find_data_dir("adi")
    if folder is None:
        pytest.skip("adi not found under $TASB_DATA_DIR or ../shared/data")
    data = load_beir(folder)
    report = run_evaluation(data, tiny_embeddings, hnsw=EXHAUSTIVE, cache_dir=tmp_path)
    assert (report.dataset.n_docs, report.dataset.n_queries) == (82, 35)
    assert report.index.recall_at_10_vs_exact == 1.0
    assert report.index.metrics["ndcg@10"] == pytest.approx(report.exact.metrics["ndcg@10"])
    assert report.exact.metrics["ndcg@10"] == pytest.approx(
        plain_ndcg_at_10(report.exact.run, data.qrels), abs=1e-12
    )


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def test_cli_prints_the_table_and_writes_json_matching_the_library(
    small_dir: Path,
    small: BeirDataset,
    tiny_model_path: Path,
    tiny_embeddings: TasbEmbeddings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TASB_BACKEND", raising=False)  # eval's own default: exact fp32 torch
    out = tmp_path / "report.json"
    code = main(
        [
            "eval",
            str(small_dir),
            "--model",
            str(tiny_model_path),
            "--json",
            str(out),
            "--ef-search",
            "500",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--sweep",
            "8,500",
            "--quiet",
        ]
    )
    assert code == 0
    stdout = capsys.readouterr().out
    assert "| search | nDCG@10 | Recall@100 | MRR@10 | MAP@100 |" in stdout
    assert "| index (ef_search=500) |" in stdout
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["hnsw"]["ef_search"] == 500
    assert data["model"]["backend"] == "torch-float32"
    assert data["model"]["name"] == str(tiny_model_path)
    assert [p["ef_search"] for p in data["sweep"]] == [8, 500]
    library = run_evaluation(small, tiny_embeddings, hnsw=EXHAUSTIVE, cache_dir=tmp_path / "cache")
    assert library.encoding.cache_hit  # the CLI wrote the same cache entry
    for key, value in library.exact.metrics.items():
        assert data["exact"]["metrics"][key] == pytest.approx(value, abs=1e-12)
        assert data["index"]["metrics"][key] == pytest.approx(value, abs=1e-9)
    assert f"{library.exact.metrics['ndcg@10']:.4f}" in stdout


def test_cli_writes_a_plot_and_applies_hnsw_options(
    small_dir: Path, tiny_model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    png, out = tmp_path / "report.png", tmp_path / "report.json"
    code = main(
        [
            "eval",
            str(small_dir),
            "--model",
            str(tiny_model_path),
            "--plot",
            str(png),
            "--json",
            str(out),
            "--ef-search",
            "8",
            "--ef-construction",
            "64",
            "--max-neighbors",
            "8",
            "--document-max-tokens",
            "24",
            "--backend",
            "torch",
            "--no-cache",
            "--quiet",
        ]
    )
    assert code == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["hnsw"]["ef_search"] == 8
    assert data["hnsw"]["ef_construction"] == 64
    assert data["hnsw"]["max_neighbors"] == 8
    assert data["model"]["document_max_tokens"] == 24
    assert data["model"]["backend"] == "torch-float32"
    assert data["encoding"] == {**data["encoding"], "cache_path": None, "cache_hit": False}
    stdout = capsys.readouterr().out
    assert "| exact |" in stdout
    assert "max(ef_search, k) = 60" in stdout  # k=60 (all docs) widens ef_search=8


def test_cli_rejects_a_bad_sweep(small_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["eval", str(small_dir), "--sweep", "16,x"])
    assert exc.value.code == 2
    assert "'x'" in capsys.readouterr().err


def test_cli_missing_split_is_an_error_naming_the_splits(
    small_dir: Path, tiny_model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["eval", str(small_dir), "--split", "dev", "--model", str(tiny_model_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "'dev'" in err
    assert "test" in err


def test_cli_plot_without_matplotlib_fails_before_encoding(
    small_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setattr(
        "langchain_tasb.cli.eval._load", lambda *_: pytest.fail("loaded data before failing")
    )
    code = main(["eval", str(small_dir), "--plot", str(tmp_path / "x.png")])
    assert code == 2
    assert "langchain-tasb[plot]" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# Real weights
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_minilm_on_adi_matches_an_independent_numpy_ndcg(minilm_path: Path, tmp_path: Path) -> None:
    folder = find_data_dir("adi")
    if folder is None:
        pytest.skip("adi not found under $TASB_DATA_DIR or ../shared/data")
    from sentence_transformers import SentenceTransformer

    data = load_beir(folder)
    embeddings = TasbEmbeddings(model_name=str(minilm_path), device="cpu", backend="torch")
    report = run_evaluation(data, embeddings, cache_dir=tmp_path)
    assert report.model.similarity == "cosine"
    assert report.model.dimension == 384

    # 1. The metric: a plain numpy nDCG@10 on the very ranking the report scored.
    ours = report.exact.metrics["ndcg@10"]
    assert ours == pytest.approx(plain_ndcg_at_10(report.exact.run, data.qrels), abs=1e-12)

    # 2. The pipeline: BEIR's recipe done by hand with sentence-transformers (title + " " +
    #    text, 256 tokens, unit vectors, dot product), ranked with numpy.
    model = SentenceTransformer(str(minilm_path), device="cpu")
    model.max_seq_length = 256
    corpus = [(d.title + " " + d.text).strip() for d in data.corpus.values()]
    doc_vecs = model.encode(corpus, normalize_embeddings=True, convert_to_numpy=True)
    query_ids = list(data.queries)
    query_vecs = model.encode(
        [data.queries[q] for q in query_ids], normalize_embeddings=True, convert_to_numpy=True
    )
    scores = query_vecs @ doc_vecs.T
    doc_ids = list(data.corpus)
    run = {
        q: {doc_ids[i]: float(scores[row, i]) for i in np.argsort(-scores[row])[:100]}
        for row, q in enumerate(query_ids)
    }
    assert ours == pytest.approx(plain_ndcg_at_10(run, data.qrels), abs=1e-4)
    assert 0.3 < ours < 0.7  # MiniLM finds relevant ADI documents; random weights would not
    assert not math.isnan(report.index.metrics["ndcg@10"])
    assert report.ndcg_at_10_loss <= 0.002


def test_hybrid_evaluation_scores_the_rankings_users_get(
    small: BeirDataset, tiny_embeddings: TasbEmbeddings, tmp_path: Path, collection_name: str
) -> None:
    from langchain_tasb import TasbRetriever, TasbVectorStore
    from langchain_tasb.search import SearchSettings

    settings = SearchSettings(search_type="hybrid", k=10)
    report = run_evaluation(
        small, tiny_embeddings, hnsw=EXHAUSTIVE, cache_dir=tmp_path, hybrid=settings
    )
    assert report.hybrid is not None
    # The same corpus in a collection of one's own, searched as a user would.
    store = TasbVectorStore(
        embedding=tiny_embeddings, collection_name=collection_name, hnsw=EXHAUSTIVE
    )
    store.add_texts(small.doc_texts, ids=small.doc_ids)
    retriever = TasbRetriever(vectorstore=store, k=10, search_type="hybrid")
    for qid, text in small.queries.items():
        got = report.hybrid.hybrid_run[qid]
        assert list(got) == [d.id for d in retriever.invoke(text)]
        assert list(got.values()) == sorted(got.values(), reverse=True)
    assert report.hybrid.hybrid == evaluate(report.hybrid.hybrid_run, small.qrels)
    assert report.to_dict()["hybrid"]["fetch_k"] == settings.fetch_k


def test_corpus_encoding_shows_a_tqdm_bar_only_when_asked(
    small: BeirDataset, tiny_embeddings: TasbEmbeddings, capsys: pytest.CaptureFixture[str]
) -> None:
    quiet = encode_corpus(small, tiny_embeddings)
    assert capsys.readouterr().err == ""
    shown = encode_corpus(small, tiny_embeddings, progress=True)
    err = capsys.readouterr().err
    assert f"encoding {small.name}: 100%" in err
    assert f"{len(small.doc_ids)}/{len(small.doc_ids)} [" in err
    np.testing.assert_array_equal(quiet, shown)
