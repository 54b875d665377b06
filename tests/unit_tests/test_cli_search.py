"""``tasb search`` in-process: hybrid search through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from langchain_tasb.cli import main

pytest.importorskip("bm25s")


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
    assert "| BM25 |" in out and "| hybrid (RRF) |" in out
    data = json.loads(report.read_text())
    assert set(data["hybrid"]) == {"fusion", "alpha", "bm25", "hybrid"}
    # A lexical signal on a random-weight model: BM25 must beat the dense side clearly.
    assert data["hybrid"]["bm25"]["ndcg@10"] > data["exact"]["metrics"]["ndcg@10"] + 0.05
    assert 0.0 < data["hybrid"]["hybrid"]["ndcg@10"] <= 1.0
