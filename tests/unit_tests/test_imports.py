from __future__ import annotations

from importlib import metadata

import langchain_tasb

EXPECTED_ALL = {
    "DEFAULT_MODEL_NAME",
    "ChromaUnavailableError",
    "CollectionMismatchError",
    "HnswSettings",
    "ModelInfo",
    "ModelMismatchError",
    "RelevanceScale",
    "SpaceMismatchError",
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
