"""``tasb search`` in-process: output names, the collection's own model, hybrid search."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest

from langchain_tasb import TasbEmbeddings, TasbRetriever
from langchain_tasb.cli import main

TEXTS = {
    "guide.md": "To rotate the logs, run logrotate with a daily schedule.",
    "city.md": "Around 9 Million people live in London.",
    "cell.md": "The protein binds the cell surface.",
}


@pytest.fixture
def indexed(tiny_model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A --db folder holding TEXTS, indexed with the tiny model into collection "tasb"."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in TEXTS.items():
        (docs / name).write_text(text)
    db = tmp_path / "db"
    assert (
        main(["index", str(docs), "--quiet", "--db", str(db), "--model", str(tiny_model_path)]) == 0
    )
    capsys.readouterr()
    return db


def test_json_names_the_dot_product_score_like_every_other_skin(
    indexed: Path, tiny_embeddings: TasbEmbeddings, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--db", str(indexed), "--model", str(tiny_embeddings.model_name)]
    assert main(["search", "rotate the logs", "-k", "3", "--json", *common]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    q = np.asarray(tiny_embeddings.embed_query("rotate the logs"))
    retrieved = TasbRetriever(
        collection_name="tasb", persist_directory=str(indexed), embedding=tiny_embeddings, k=3
    ).invoke("rotate the logs")
    assert [r["id"] for r in results] == [d.id for d in retrieved]
    for result, doc in zip(results, retrieved, strict=True):
        assert "dot" not in result
        assert result["score"] == doc.metadata["score"]
        assert result["relevance"] == doc.metadata["relevance"]
        d = np.asarray(tiny_embeddings.embed_documents([result["text"]])[0])
        assert result["score"] == pytest.approx(float(q @ d), rel=1e-5)
    assert main(["search", "rotate the logs", "-k", "1", *common]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert re.fullmatch(r" 1\. \S+\.md #\d+  score -?\d+\.\d{3}  relevance [01]\.\d{3}", first)


def test_search_without_a_model_uses_the_one_recorded_in_the_collection(
    indexed: Path,
    tiny_model_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv("TASB_MODEL", raising=False)
    query = ["search", "rotate the logs", "-k", "2", "--json", "--db", str(indexed)]
    with caplog.at_level(logging.INFO, logger="langchain_tasb"):
        code = main(query)  # sockets are blocked: a TAS-B download would fail
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"using model {tiny_model_path} recorded in collection tasb" in caplog.messages
    assert main([*query, "--model", str(tiny_model_path)]) == 0
    assert json.loads(captured.out) == json.loads(capsys.readouterr().out)
    assert len(json.loads(captured.out)["results"]) == 2


def test_an_explicit_model_still_wins_and_a_mismatch_is_still_refused(
    indexed: Path,
    other_model_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("TASB_MODEL", raising=False)
    query = ["search", "logs", "--db", str(indexed)]
    assert main([*query, "--model", str(other_model_path)]) == 2
    assert "pass the model that built it with --model" in capsys.readouterr().err
    monkeypatch.setenv("TASB_MODEL", str(other_model_path))
    assert main(query) == 2
    assert "probe sentence's embedding differs" in capsys.readouterr().err


def test_retriever_from_connection_fields_uses_the_recorded_model(
    indexed: Path, tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TASB_MODEL", raising=False)
    retriever = TasbRetriever(collection_name="tasb", persist_directory=str(indexed), k=2)
    embeddings = retriever.store.embeddings
    assert isinstance(embeddings, TasbEmbeddings)
    assert embeddings.model_name == str(tiny_model_path)
    docs = retriever.invoke("rotate the logs")
    assert len(docs) == 2
    assert all("score" in d.metadata and "relevance" in d.metadata for d in docs)


def test_hybrid_search_finds_the_exact_keyword(
    tiny_model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text("To rotate the logs, run logrotate with a daily schedule.")
    for i in range(8):
        (docs / f"other{i}.md").write_text(f"the protein {i} binds the cell surface and water")
    common = ["--db", str(tmp_path / "db"), "--model", str(tiny_model_path)]
    assert main(["index", str(docs), "--quiet", *common]) == 0
    capsys.readouterr()
    assert main(["search", "logrotate", "-k", "3", "--hybrid", "--json", *common]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert results[0]["source"] == "guide.md"
    assert results[0]["bm25_score"] > 0
    assert all(r["bm25_score"] == 0 for r in results[1:])
    assert [r["rank"] for r in results] == [1, 2, 3]


def test_hybrid_and_mmr_are_exclusive(
    tiny_model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("some text")
    common = ["--db", str(tmp_path / "db"), "--model", str(tiny_model_path)]
    assert main(["index", str(docs), "--quiet", *common]) == 0
    assert main(["search", "x", "--hybrid", "--mmr", *common]) == 2
    assert "cannot be combined" in capsys.readouterr().err


def test_eval_hybrid_reports_bm25_dense_and_fused(
    tiny_model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from langchain_tasb.evaluation import find_data_dir

    adi = find_data_dir("adi")
    if adi is None:
        pytest.skip("../shared/data/adi is not available")
    report = tmp_path / "report.json"
    code = main(
        [
            "eval",
            str(adi),
            "--model",
            str(tiny_model_path),
            "--hybrid",
            "--quiet",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--json",
            str(report),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "| BM25 (the collection's lexical index) |" in out
    assert "| hybrid search (RRF, k=10, fetch_k=40) |" in out
    data = json.loads(report.read_text())
    assert set(data["hybrid"]) == {"k", "fetch_k", "fusion", "alpha", "bm25", "hybrid"}
    # A lexical signal on a random-weight model: BM25 must beat the dense side clearly.
    assert data["hybrid"]["bm25"]["ndcg@10"] > data["exact"]["metrics"]["ndcg@10"] + 0.05
    assert 0.0 < data["hybrid"]["hybrid"]["ndcg@10"] <= 1.0


def test_info_answers_without_reading_sources_unless_asked(
    indexed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["info", "--json", "--db", str(indexed)]) == 0
    quick = json.loads(capsys.readouterr().out)
    assert quick["chunks"] == len(TEXTS)
    assert (quick["sources"], quick["roots"], quick["top_sources"]) == (None, None, None)
    assert (quick["space"], quick["similarity"]) == ("ip", "dot")
    assert main(["info", "--db", str(indexed)]) == 0
    assert re.search(r"^sources\s+not counted: tasb info --sources", capsys.readouterr().out, re.M)
    assert main(["info", "--json", "--sources", "--db", str(indexed)]) == 0
    full = json.loads(capsys.readouterr().out)
    assert full["sources"] == len(TEXTS)
    assert sorted(top["source"] for top in full["top_sources"]) == sorted(TEXTS)
    assert full["roots"] == [str((indexed.parent / "docs").resolve())]
    assert {k: v for k, v in full.items() if k not in ("sources", "roots", "top_sources")} == {
        k: v for k, v in quick.items() if k not in ("sources", "roots", "top_sources")
    }


def test_mcp_collection_info_shows_no_local_paths_unless_show_paths(
    indexed: Path, tiny_model_path: Path
) -> None:
    from langchain_tasb.cli import build_parser
    from langchain_tasb.cli.mcp import collection_info

    parser = build_parser()
    hidden = collection_info(parser.parse_args(["mcp", "--db", str(indexed)]))()
    text = json.dumps(hidden)
    assert str(indexed) not in text
    assert str(tiny_model_path) not in text
    assert str(indexed.parent) not in text
    assert hidden["model"] == tiny_model_path.name
    assert (hidden["collection"], hidden["chunks"]) == ("tasb", len(TEXTS))
    shown = collection_info(parser.parse_args(["mcp", "--show-paths", "--db", str(indexed)]))()
    assert shown["db"] == str(indexed.resolve())
    assert shown["model"] == str(tiny_model_path)


def test_index_rerun_skips_unread_files_and_full_reads_them(
    indexed: Path, tiny_model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = indexed.parent / "docs"
    common = ["--db", str(indexed), "--model", str(tiny_model_path)]
    assert main(["index", str(docs), *common]) == 0
    assert f"; {len(TEXTS)} unchanged since the manifest, not read)" in capsys.readouterr().out
    assert main(["index", str(docs), "--full", *common]) == 0
    assert "; 0 unchanged since the manifest, not read)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["missing-folder"], "no such file or folder: missing-folder"),
        (["a", "b", "--root-id", "r"], "--root-id names one root, got 2 PATHS"),
        (["a", "--overlap", "254"], "--overlap 254 must be smaller than the chunk size"),
    ],
)
def test_index_refuses_bad_arguments_before_creating_anything(
    tiny_model_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    db = tmp_path / "db"
    assert main(["index", *extra, "--db", str(db), "--model", str(tiny_model_path)]) == 2
    assert message in capsys.readouterr().err
    assert not db.exists()
