"""Index folders into a vector store with :func:`index_paths`, here or on Ray workers."""

from langchain_tasb.ingest.indexer import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_CHUNKS_PER_FILE,
    DEFAULT_MAX_FILE_BYTES,
    RayIndexing,
    index_paths,
)
from langchain_tasb.ingest.report import FileFailure, IndexProgress, IndexReport, ProgressCallback
from langchain_tasb.ingest.rows import (
    DEFAULT_OVERLAP_TOKENS,
    chunk_id,
    default_root_id,
    make_chunker,
)

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
