#!/usr/bin/env bash
# Create .venv, install the package, then index the Python standard library's documentation
# into an embedded Chroma (.tasb-demo/db) and run a few searches (examples/demo.py).
# The model: $TASB_MODEL if set, else TAS-B from the hub, else (offline) the bundled MiniLM.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
# The CPU wheel first: a bare `torch` requirement would pull a multi-GB CUDA build.
python -m pip install -q torch==2.13.0
python -m pip install -q -e ".[demo]"
python examples/demo.py "$@"
