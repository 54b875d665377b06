"""The README's quickstart is examples/quickstart.py, and it runs."""

from __future__ import annotations

import re
from pathlib import Path

from tests.unit_tests.conftest import run_example

ROOT = Path(__file__).resolve().parents[2]


def readme_python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_readme_quickstart_is_the_example_file() -> None:
    example = (ROOT / "examples" / "quickstart.py").read_text(encoding="utf-8")
    body = example.split('"""', 2)[2].lstrip("\n")  # the file minus its docstring
    assert body in readme_python_blocks()


def test_quickstart_runs_against_the_tiny_model(tiny_model_path: Path, tmp_path: Path) -> None:
    result = run_example("quickstart.py", tiny_model_path, tmp_path)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3
    scores = [float(line.split()[0]) for line in lines[:2]]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= float(line.split()[1]) <= 1.0 for line in lines[:2])
    assert lines[2] in {
        "Around 9 Million people live in London",
        "London is known for its financial district",
    }
    assert (tmp_path / "tasb_db").is_dir()
