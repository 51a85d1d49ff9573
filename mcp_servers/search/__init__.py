"""Indexing and search of documents and git histories, shared by `python -m mcp_servers.search`
and the scenarios' `knowledge:` section. Importing starts nothing."""

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
