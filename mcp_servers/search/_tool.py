"""A knowledge base as an agent tool: search_NAME(query, k)."""

from __future__ import annotations

from typing import Any

from mcp_servers.search._index import Hit, KnowledgeBase

SNIPPET_CHARS = 900


def format_hits(hits: list[Hit]) -> str:
    """Hits as the model reads them: a numbered source line (cite it) and the passage."""
    if not hits:
        return "no results"
    blocks = []
    for i, hit in enumerate(hits, 1):
        text = (
            hit.unit.text if len(hit.unit.text) <= SNIPPET_CHARS else hit.unit.text[:SNIPPET_CHARS] + " ..."
        )
        blocks.append(f"[{i}] {hit.unit.location} (score {hit.score:.3f})\n{text}")
    return "\n\n".join(blocks)


def knowledge_tool(kb: KnowledgeBase, description: str | None = None) -> Any:
    """A FunctionTool named search_<name>; its parameter schema comes from the signature."""
    from autogen_core.tools import FunctionTool

    async def search(query: str, k: int = 5) -> str:
        """Search the knowledge base; cite the source line ([n] sha title, or file:lines) you use."""
        return format_hits(await kb.search(query, k))

    what = description or f"Search {kb.source.label}."
    return FunctionTool(
        search,
        name=f"search_{kb.name}",
        description=f"{what} Returns the best passages with their sources (commit sha and title, "
        "or file and lines).",
    )
