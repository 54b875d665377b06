"""``python -m langchain_tasb.cli``: the same as the ``tasb`` command."""

from __future__ import annotations

import sys

from langchain_tasb.cli import main

sys.exit(main())
