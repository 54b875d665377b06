from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import pytest

import langchain_tasb

EXPECTED_ALL = {
    "DEFAULT_MODEL_NAME",
    "ChromaUnavailableError",
    "CollectionMismatchError",
    "CollectionNotFoundError",
    "HnswSettings",
    "ModelInfo",
    "ModelMismatchError",
    "RelevanceScale",
    "SpaceMismatchError",
    "StoreLockedError",
    "TasbEmbeddings",
    "TasbRetriever",
    "TasbVectorStore",
    "__version__",
}


def test_all_exports_exactly_the_public_api() -> None:
    assert set(langchain_tasb.__all__) == EXPECTED_ALL
    for name in langchain_tasb.__all__:
        assert hasattr(langchain_tasb, name), name


def test_version_matches_package_metadata() -> None:
    assert langchain_tasb.__version__ == metadata.version("langchain-tasb")
    assert langchain_tasb.__version__ != "0.0.0"


def test_package_ships_type_information() -> None:
    from pathlib import Path

    assert (Path(langchain_tasb.__file__).parent / "py.typed").is_file()


def test_public_names_load_their_modules_on_first_use() -> None:
    code = (
        "import sys\n"
        "import langchain_tasb.encoding.selection, langchain_tasb.testing\n"
        "import langchain_tasb.evaluation\n"
        "print(sorted(m for m in ('langchain_core', 'chromadb', 'pydantic') if m in sys.modules))\n"
        "from langchain_tasb import TasbRetriever\n"
        "print(TasbRetriever.__module__, 'langchain_core' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.splitlines() == ["[]", "langchain_tasb.vectorstore True"]


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'TasbRetreiver'"):
        langchain_tasb.TasbRetreiver  # noqa: B018
    assert langchain_tasb.TasbEmbeddings is langchain_tasb.embeddings.TasbEmbeddings
