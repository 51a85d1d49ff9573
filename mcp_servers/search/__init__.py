"""Indexing and search of documents and git histories, shared by `python -m mcp_servers.search`
and the scenarios' `knowledge:` section.

Names load on first use, so `import mcp_servers.search.spec` (done by every scenario load)
pulls in neither numpy nor an HTTP client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "KnowledgeError": "_errors",
    "Hit": "_index",
    "KnowledgeBase": "_index",
    "RefreshReport": "_index",
    "cache_path": "_index",
    "ModelTarget": "_models",
    "open_models": "_models",
    "pick_model": "_models",
    "open_knowledge": "_open",
    "IndexMeta": "_store",
    "LocalStore": "_store",
    "Store": "_store",
    "format_hits": "_tool",
    "knowledge_tool": "_tool",
    "Document": "_units",
    "Unit": "_units",
    "chunk_text": "_units",
    "open_source": "_units",
    "FilesSourceSpec": "spec",
    "GitSourceSpec": "spec",
    "KnowledgeSpec": "spec",
    "LocalStoreSpec": "spec",
    "PostgresStoreSpec": "spec",
}

__all__ = [
    "Document",
    "FilesSourceSpec",
    "GitSourceSpec",
    "Hit",
    "IndexMeta",
    "KnowledgeBase",
    "KnowledgeError",
    "KnowledgeSpec",
    "LocalStore",
    "LocalStoreSpec",
    "ModelTarget",
    "PostgresStoreSpec",
    "RefreshReport",
    "Store",
    "Unit",
    "cache_path",
    "chunk_text",
    "format_hits",
    "knowledge_tool",
    "open_knowledge",
    "open_models",
    "open_source",
    "pick_model",
]

if TYPE_CHECKING:
    from mcp_servers.search._errors import KnowledgeError
    from mcp_servers.search._index import Hit, KnowledgeBase, RefreshReport, cache_path
    from mcp_servers.search._models import ModelTarget, open_models, pick_model
    from mcp_servers.search._open import open_knowledge
    from mcp_servers.search._store import IndexMeta, LocalStore, Store
    from mcp_servers.search._tool import format_hits, knowledge_tool
    from mcp_servers.search._units import Document, Unit, chunk_text, open_source
    from mcp_servers.search.spec import (
        FilesSourceSpec,
        GitSourceSpec,
        KnowledgeSpec,
        LocalStoreSpec,
        PostgresStoreSpec,
    )


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'mcp_servers.search' has no attribute {name!r}")
    return getattr(importlib.import_module(f"mcp_servers.search.{module}"), name)
