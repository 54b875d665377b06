#!/usr/bin/env bash
# Create .venv, install the package with its test extras, lint, type-check, build the docs site
# and run every test (unit and integration; the integration tests start their own Chroma server
# on 127.0.0.1).
# Extra arguments go to pytest, e.g. scripts/run-tests.sh -m "not slow".
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
# The CPU wheel first: a bare `torch` requirement would pull a multi-GB CUDA build.
python -m pip install -q torch==2.13.0
# The test extra brings langchain-mcp-adapters too: tasb mcp and the agent share this venv.
python -m pip install -q -e ".[dev]"
ruff check langchain_tasb tests benchmarks examples
ruff format --check langchain_tasb tests benchmarks examples
mypy
# The documentation site, from docs/ and the docstrings, into site/; any warning fails.
NO_MKDOCS_2_WARNING=1 python -m mkdocs build --strict --quiet --site-dir site
python -m pytest "$@"
