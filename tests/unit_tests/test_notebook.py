"""examples/notebook.ipynb runs top to bottom against the tiny model, and is stored stripped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "notebook.ipynb"


def _stdout(cell: Any) -> str:
    return "".join(
        out.get("text", "") for out in cell.get("outputs", []) if out.get("name") == "stdout"
    )


def test_repo_notebook_is_stored_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code
    for cell in code:
        assert cell.outputs == [], cell.source[:60]
        assert cell.execution_count is None, cell.source[:60]


def test_notebook_runs_against_the_tiny_model(
    tiny_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jupyter_client.manager import KernelManager

    monkeypatch.setenv("TASB_MODEL", str(tiny_model_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # Unix-socket transport: unit tests may not open TCP sockets, even on localhost.
    km = KernelManager(kernel_name="python3", transport="ipc", ip=str(tmp_path / "kernel"))
    client = nbclient.NotebookClient(
        nb, km=km, timeout=600, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell

    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    errors = [out for cell in code for out in cell.outputs if out.output_type == "error"]
    assert errors == []
    text = "\n".join(_stdout(cell) for cell in code)
    assert f"model: {tiny_model_path}" in text
    assert "6 records in notebook-guide" in text
    search = next(_stdout(c) for c in code if "retriever.invoke(query)" in c.source)
    scores = [float(line.split()[0]) for line in search.strip().splitlines()]
    assert len(scores) == 3
    assert scores == sorted(scores, reverse=True)
    hybrid = next(_stdout(c) for c in code if 'search_type="hybrid"' in c.source)
    assert [line.split()[0] for line in hybrid.strip().splitlines()] == ["fused"] * 3
    if (Path(__file__).resolve().parents[3] / "shared" / "data" / "adi").is_dir():
        assert "nDCG@10" in text
        assert "hybrid (RRF)" in text
