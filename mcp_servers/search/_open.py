"""Open a knowledge base from its spec: source, models, store; index it when asked or empty."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from mcp_servers.search._index import KnowledgeBase, Progress, cache_path
from mcp_servers.search._models import ModelTarget, open_models
from mcp_servers.search._store import LocalStore, Store
from mcp_servers.search._units import default_cache_dir, open_source
from mcp_servers.search.spec import KnowledgeSpec, StoreSpec

log = logging.getLogger(__name__)


def store_for(spec: StoreSpec, default_path: Path) -> Store:
    """The store a spec names; a local one without a path lives at default_path."""
    if spec.type == "postgres":
        from mcp_servers.search._postgres import PostgresStore

        return PostgresStore(spec.dsn, spec.table)
    return LocalStore(Path(spec.path).expanduser() if spec.path else default_path)


@asynccontextmanager
async def open_knowledge(
    name: str,
    spec: KnowledgeSpec,
    embedding: ModelTarget,
    *,
    base_dir: Path | None = None,
    cache_dir: Path | None = None,
    index: bool | None = None,
    progress: Progress | None = None,
    reindex_hint: str = "--rebuild",
) -> AsyncIterator[KnowledgeBase]:
    """index: True refreshes, False never indexes, None indexes only when the index is empty."""
    source = open_source(spec.source, base_dir)
    async with AsyncExitStack() as stack:
        models = await stack.enter_async_context(open_models(embedding, rerank=spec.rerank))
        path = cache_path(cache_dir or default_cache_dir(), source.key, models.embedder.model)
        store = store_for(spec.store, path)
        stack.callback(store.close)
        kb = KnowledgeBase(name, source, store, models, reindex_hint=reindex_hint)
        kb.check_model()
        if index or (index is None and kb.is_empty()):
            if index is None:
                log.info(
                    "indexing knowledge %r (%s) on first use into %s", name, source.label, store.location
                )
            report = await kb.refresh(progress)
            log.info("knowledge %r: %s", name, report.summary())
        yield kb
