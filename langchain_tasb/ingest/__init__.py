"""Index folders into a vector store: incremental, resumable, pipelined, memory-bounded.

:func:`index_paths` (:mod:`~langchain_tasb.ingest.indexer`, which states the contract) brings a
store in line with the files under some roots; :mod:`~langchain_tasb.ingest.files` finds them,
:mod:`~langchain_tasb.ingest.readers` reads them and :mod:`~langchain_tasb.ingest.chunking`
cuts them into chunks; :mod:`~langchain_tasb.ingest.ray_writer` encodes and writes them on Ray
workers instead (``ray=RayIndexing(...)``).
"""

from langchain_tasb.ingest.indexer import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_CHUNKS_PER_FILE,
    DEFAULT_MAX_FILE_BYTES,
    index_paths,
)
from langchain_tasb.ingest.ray_writer import RayIndexing
from langchain_tasb.ingest.report import FileFailure, IndexProgress, IndexReport, ProgressCallback
from langchain_tasb.ingest.roots import default_root_id
from langchain_tasb.ingest.rows import DEFAULT_OVERLAP_TOKENS, chunk_id, make_chunker

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_CHUNKS_PER_FILE",
    "DEFAULT_MAX_FILE_BYTES",
    "DEFAULT_OVERLAP_TOKENS",
    "FileFailure",
    "IndexProgress",
    "IndexReport",
    "ProgressCallback",
    "RayIndexing",
    "chunk_id",
    "default_root_id",
    "index_paths",
    "make_chunker",
]
