"""The MCP server: search(query, k) and get(source_id) over one knowledge base."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp_servers.search._index import KnowledgeBase
from mcp_servers.search._models import ModelTarget
from mcp_servers.search._open import open_knowledge
from mcp_servers.search.spec import KnowledgeSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerOptions:
    spec: KnowledgeSpec
    embedding: ModelTarget
    cache_dir: Path | None = None
    rebuild: bool = False
    http_port: int | None = None  # None: stdio


def build_server(kb: KnowledgeBase, *, host: str = "127.0.0.1", port: int = 8000) -> Any:
    """A FastMCP server over an open knowledge base (shared by every session)."""
    from mcp.server.fastmcp import FastMCP

    server = FastMCP(
        "search",
        instructions=f"Search {kb.source.label}; cite the sources returned.",
        host=host,
        port=port,
        log_level="WARNING",
    )

    @server.tool()
    async def search(query: str, k: int = 5) -> list[dict[str, Any]]:
        """Find the passages nearest to the query: each with source_id, source (file and line
        range, or commit sha and title), title, score and text."""
        return [hit.as_dict() for hit in await kb.search(query, k)]

    @server.tool()
    async def get(source_id: str) -> str:
        """The whole document a search result's source_id (or a commit sha prefix) names."""
        return kb.get(source_id)

    return server


async def serve(options: ServerOptions) -> None:
    """Index (incrementally), then serve until the client goes away or the process is stopped."""
    async with open_knowledge(
        "search", options.spec, options.embedding, cache_dir=options.cache_dir, index=not options.rebuild
    ) as kb:
        if options.rebuild:
            log.info("%s", (await kb.refresh(rebuild=True)).summary())
        log.info("index %s: %d units", kb.store.location, kb.store.count())
        server = build_server(kb, port=options.http_port or 8000)
        if options.http_port:
            log.info("serving MCP over streamable HTTP at http://127.0.0.1:%d/mcp", options.http_port)
            await server.run_streamable_http_async()
        else:
            await server.run_stdio_async()
