"""A knowledge base: a source, a store and the models; refresh it incrementally, search it."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mcp_servers.search._errors import KnowledgeError
from mcp_servers.search._models import Models
from mcp_servers.search._store import DocumentRows, IndexMeta, Store, check_meta
from mcp_servers.search._units import Document, Source, Unit

log = logging.getLogger(__name__)

RERANK_POOL = 20  # candidates the reranker sees, at least


@dataclass(frozen=True)
class Hit:
    unit: Unit
    score: float  # cosine similarity, or the reranker's relevance score when reranked
    vector_score: float

    def as_dict(self) -> dict[str, object]:
        return {
            "source_id": self.unit.id,
            "source": self.unit.location,
            "title": self.unit.title,
            "score": round(self.score, 4),
            "text": self.unit.text,
        }


@dataclass(frozen=True)
class RefreshReport:
    documents: int  # in the source now
    embedded_units: int
    new: int
    changed: int
    removed: int
    unchanged: int

    def summary(self) -> str:
        if not (self.new or self.changed or self.removed):
            return f"up to date: {self.documents} documents, nothing to embed"
        return (
            f"embedded {self.embedded_units} units: {self.new} new, {self.changed} changed, "
            f"{self.removed} removed, {self.unchanged} unchanged documents"
        )


# progress(done_units, total_units): called as documents are written
Progress = Callable[[int, int], None]


def cache_path(cache_dir: Path, source_key: str, model: str) -> Path:
    digest = hashlib.sha256(f"{source_key}\0{model}".encode()).hexdigest()[:16]
    return cache_dir / f"{digest}.sqlite"


class KnowledgeBase:
    def __init__(
        self, name: str, source: Source, store: Store, models: Models, *, reindex_hint: str = "--rebuild"
    ) -> None:
        self.name = name
        self.source = source
        self.store = store
        self.models = models
        self.reindex_hint = reindex_hint
        self.batch_units = 32  # units per embedding request

    def _meta(self, dimension: int) -> IndexMeta:
        return IndexMeta(self.models.embedder.model, dimension, self.source.key)

    def check_model(self) -> None:
        """Refuse an index built by another embedding model."""
        check_meta(self.store.meta(), self._meta(0), self.store.location, self.reindex_hint)

    def is_empty(self) -> bool:
        return self.store.count() == 0

    async def refresh(self, progress: Progress | None = None, *, rebuild: bool = False) -> RefreshReport:
        """Embed what is new or changed, drop what is gone; each document is written atomically."""
        if rebuild:
            self.store.clear()
        self.check_model()
        documents: list[Document] = await asyncio.to_thread(self.source.documents)
        stored = self.store.digests()
        todo = [d for d in documents if stored.get(d.id) != d.digest]
        gone = sorted(set(stored) - {d.id for d in documents})
        plans = await asyncio.to_thread(lambda: [(d, d.load()) for d in todo])
        total = sum(len(units) for _, units in plans)
        if progress:
            progress(0, total)
        done = 0
        meta: IndexMeta | None = self.store.meta()
        # several small documents per embedding request, written in one transaction (each whole)
        batch: list[tuple[Document, list[Unit]]] = []
        for plan in [*plans, None]:
            if plan is not None:
                batch.append(plan)
                if sum(len(u) for _, u in batch) < self.batch_units:
                    continue
            if not batch:
                break
            texts = [u.embed_text() for _, units in batch for u in units]
            vectors = await self.models.embedder.embed(texts) if texts else None
            offset = 0
            if vectors is not None:
                wanted = self._meta(int(vectors.shape[1]))
                check_meta(meta, wanted, self.store.location, self.reindex_hint)
                meta = meta or wanted
            rows = []
            for document, units in batch:
                part = vectors[offset : offset + len(units)] if vectors is not None else np.zeros((0, 1))
                offset += len(units)
                rows.append(DocumentRows(document.id, document.digest, units, part))
            await asyncio.to_thread(self.store.replace_documents, meta, rows)
            done += len(texts)
            if progress:
                progress(done, total)
            batch = []
        if gone:
            await asyncio.to_thread(self.store.delete_documents, gone)
        changed = sum(1 for d in todo if d.id in stored)
        return RefreshReport(
            documents=len(documents),
            embedded_units=total,
            new=len(todo) - changed,
            changed=changed,
            removed=len(gone),
            unchanged=len(documents) - len(todo),
        )

    async def search(self, query: str, k: int = 5, *, rerank: bool | None = None) -> list[Hit]:
        if not query.strip():
            raise KnowledgeError("the search query is empty")
        k = max(1, min(int(k), 50))
        self.check_model()
        vector = (await self.models.embedder.embed([query]))[0]
        meta = self.store.meta()
        if meta is not None:
            check_meta(meta, self._meta(int(vector.shape[0])), self.store.location, self.reindex_hint)
        reranker = self.models.reranker if rerank is not False else None
        pool = max(k * 4, RERANK_POOL) if reranker else k
        found = await asyncio.to_thread(self.store.search, vector, pool)
        hits = [Hit(unit, score, score) for unit, score in found]
        if reranker and hits:
            scores = await reranker.rerank(query, [h.unit.embed_text() for h in hits])
            hits = sorted(
                (Hit(h.unit, s, h.vector_score) for h, s in zip(hits, scores, strict=True)),
                key=lambda h: -h.score,
            )
        return hits[:k]

    def get(self, source_id: str) -> str:
        """The whole document a unit id, document id or sha prefix names."""
        doc_id = self.store.find(source_id.strip())
        if doc_id is None:
            raise KnowledgeError(f"no document {source_id!r} in knowledge base {self.name!r}")
        return "".join(u.text for u in self.store.units(doc_id))
