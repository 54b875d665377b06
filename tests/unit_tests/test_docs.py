"""The docs cannot drift: the README's and docs/'s code runs or compiles, their links resolve,
the reference names public objects, and the quickstarts run against the tiny model."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit_tests.conftest import run_example

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
QUICKSTART_LINES = {
    "Around 9 Million people live in London",
    "London is known for its financial district",
}
# Prose that narrates past work instead of describing the product (git keeps the history).
NARRATION = re.compile(
    r"work period|this time|the previous run|earlier version|"
    r"\b(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|"
    r"thirteenth|fourteenth) session\b",
    re.IGNORECASE,
)


def blocks(path: Path, language: str) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def block_with(path: Path, needle: str) -> str:
    found = [b for b in blocks(path, "python") if needle in b]
    assert len(found) == 1, f"{path.name}: {len(found)} python blocks contain {needle!r}"
    return found[0]


def run_code(code: str, model: Path, cwd: Path) -> list[str]:
    """Run ``code`` as a script in ``cwd`` with ``model`` as ``$TASB_MODEL``; its output lines."""
    script = cwd / "block.py"
    script.write_text(code, encoding="utf-8")
    env = {**os.environ, "TASB_MODEL": str(model), "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()


def page_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_readme_is_at_most_220_lines() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 220, len(lines)


@pytest.mark.parametrize("page", [ROOT / "README.md", DOCS / "getting-started.md"], ids=page_id)
def test_quickstart_is_the_example_file(page: Path) -> None:
    example = (ROOT / "examples" / "quickstart.py").read_text(encoding="utf-8")
    body = example.split('"""', 2)[2].lstrip("\n")  # the file minus its docstring
    assert body in blocks(page, "python")


def test_readme_and_docs_show_the_same_llama_index_quickstart() -> None:
    needle = "TasbLlamaVectorStore("
    assert block_with(ROOT / "README.md", needle) == block_with(DOCS / "llamaindex.md", needle)


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_python_blocks_compile(page: Path) -> None:
    for code in blocks(page, "python"):
        compile(code, str(page), "exec")


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_json_blocks_parse(page: Path) -> None:
    for text in blocks(page, "json"):
        json.loads(text)


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_relative_links_resolve(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    local = [t.split("#", 1)[0] for t in targets if not re.match(r"[a-z]+:|#", t)]
    missing = [t for t in local if not (page.parent / t).exists()]
    assert not missing, f"{page.name} links to missing files: {missing}"


def test_every_docs_page_is_in_the_nav() -> None:
    nav = set(re.findall(r":\s*(\S+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.MULTILINE))
    assert nav == {p.name for p in DOCS.glob("*.md")}


def test_reference_names_public_objects() -> None:
    names = re.findall(r"^::: (\S+)$", (DOCS / "api.md").read_text(), flags=re.MULTILINE)
    assert "langchain_tasb.TasbRetriever" in names
    for name in names:
        module, _, attribute = name.rpartition(".")
        assert getattr(importlib.import_module(module), attribute) is not None, name


def test_no_file_points_at_the_merged_results_files() -> None:
    assert [p.name for p in (ROOT / "benchmarks").glob("RESULTS*.md")] == ["RESULTS.md"]
    texts = [*ROOT.glob("*.md"), *ROOT.glob("*.toml"), *ROOT.glob("*.yml")]
    for folder in ("langchain_tasb", "tests", "benchmarks", "examples", "scripts", "docs"):
        texts += [p for p in (ROOT / folder).rglob("*") if p.suffix in {".py", ".md", ".sh"}]
    this = Path(__file__).resolve()
    stale = [str(p) for p in texts if p != this and "RESULTS_" in p.read_text(encoding="utf-8")]
    assert not stale


def test_results_and_docs_describe_the_product_not_past_work() -> None:
    texts = [*PAGES, ROOT / "benchmarks" / "RESULTS.md", *(ROOT / "langchain_tasb").rglob("*.py")]
    narrating = [str(p) for p in texts if NARRATION.search(p.read_text(encoding="utf-8"))]
    assert not narrating


def test_quickstart_runs_against_the_tiny_model(tiny_model_path: Path, tmp_path: Path) -> None:
    result = run_example("quickstart.py", tiny_model_path, tmp_path)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3
    scores = [float(line.split()[0]) for line in lines[:2]]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= float(line.split()[1]) <= 1.0 for line in lines[:2])
    assert lines[2] in QUICKSTART_LINES
    assert (tmp_path / "tasb_db").is_dir()


def test_llama_index_and_hybrid_examples_run_on_the_quickstart_collection(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    quickstart = run_example("quickstart.py", tiny_model_path, tmp_path).stdout.splitlines()
    langchain_order = [line.split(maxsplit=2)[2] for line in quickstart[:2]]

    llama = run_code(
        block_with(DOCS / "llamaindex.md", "TasbLlamaVectorStore("), tiny_model_path, tmp_path
    )
    assert [line.split(maxsplit=2)[2] for line in llama] == langchain_order
    assert all(0.0 <= float(line.split()[1]) <= 1.0 for line in llama)
    assert [float(line.split()[0]) for line in llama] == [
        float(line.split()[0]) for line in quickstart[:2]
    ]

    hybrid = run_code(block_with(DOCS / "hybrid.md", "search_type="), tiny_model_path, tmp_path)
    assert {line.split(maxsplit=2)[2] for line in hybrid} == QUICKSTART_LINES
    assert all(float(line.split()[0]) > 0.0 for line in hybrid)
