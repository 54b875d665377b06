"""``tasb mcp``: a Model Context Protocol server over one collection (``langchain-tasb[mcp]``)."""

from __future__ import annotations

from langchain_tasb.mcp_server.filters import check_filter
from langchain_tasb.mcp_server.results import Chunk, CollectionInfo, SearchHit, SearchResults
from langchain_tasb.mcp_server.run import check_exposure, parse_address, serve_http
from langchain_tasb.mcp_server.stdio import serve_stdio
from langchain_tasb.mcp_server.tools import MAX_K, build_server

__all__ = [
    "MAX_K",
    "Chunk",
    "CollectionInfo",
    "SearchHit",
    "SearchResults",
    "build_server",
    "check_exposure",
    "check_filter",
    "parse_address",
    "serve_http",
    "serve_stdio",
]
