"""The server-backed store: PostgreSQL with pgvector (an HNSW index on cosine distance).

Same interface as the local store; several machines can share one index. The vector column
is typed on the first write (`vector(dimension)`), so the dimension is enforced by the server
as well as by the index metadata.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from mcp_servers.search._errors import KnowledgeError
from mcp_servers.search._store import DocumentRows, IndexMeta
from mcp_servers.search._units import Unit


def _literal(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{float(x):.7g}" for x in vector) + "]"


class PostgresStore:
    def __init__(self, dsn: str, table: str = "knowledge") -> None:
        try:
            import psycopg
        except ImportError as exc:  # an optional dependency
            raise KnowledgeError(
                "the postgres store needs psycopg: pip install 'agentteams[postgres]'"
            ) from exc
        self.location = f"{_redacted(dsn)} table {table}"
        self._t = table
        self._lock = threading.Lock()
        try:
            self._db = psycopg.connect(dsn, autocommit=True)
        except psycopg.OperationalError as exc:
            raise KnowledgeError(
                f"cannot connect to PostgreSQL at {_redacted(dsn)}: {str(exc).strip().splitlines()[0]}"
            ) from exc
        try:
            self._db.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except psycopg.Error as exc:
            raise KnowledgeError(
                f"PostgreSQL at {_redacted(dsn)} has no pgvector extension ({exc.diag.message_primary})"
            ) from exc
        t = self._t
        self._db.execute(f"CREATE TABLE IF NOT EXISTS {t}_meta (key text PRIMARY KEY, value text NOT NULL)")
        self._db.execute(
            f"CREATE TABLE IF NOT EXISTS {t}_documents (id text PRIMARY KEY, digest text NOT NULL)"
        )

    def _ensure_units(self, cur: Any, dimension: int) -> None:
        t = self._t
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {t}_units (id text PRIMARY KEY, document text NOT NULL, "
            "ord int NOT NULL, "
            f"title text, location text, text text, meta jsonb, embedding vector({dimension}) NOT NULL)"
        )
        cur.execute(f"CREATE INDEX IF NOT EXISTS {t}_units_document ON {t}_units (document, ord)")
        cur.execute(
            f"CREATE INDEX IF NOT EXISTS {t}_units_hnsw ON {t}_units USING hnsw (embedding vector_cosine_ops)"
        )

    def _has_units(self) -> bool:
        row = self._db.execute("SELECT to_regclass(%s)", (f"{self._t}_units",)).fetchone()
        return bool(row and row[0])

    def meta(self) -> IndexMeta | None:
        rows: dict[str, str] = dict(self._db.execute(f"SELECT key, value FROM {self._t}_meta").fetchall())
        if "model" not in rows:
            return None
        return IndexMeta(rows["model"], int(rows["dimension"]), rows.get("source", ""))

    def digests(self) -> dict[str, str]:
        return dict(self._db.execute(f"SELECT id, digest FROM {self._t}_documents").fetchall())

    def replace_documents(self, meta: IndexMeta | None, documents: Sequence[DocumentRows]) -> None:
        t = self._t
        with self._lock, self._db.transaction(), self._db.cursor() as cur:
            if meta is not None:
                cur.executemany(
                    f"INSERT INTO {t}_meta VALUES (%s, %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    [("model", meta.model), ("dimension", str(meta.dimension)), ("source", meta.source)],
                )
                self._ensure_units(cur, meta.dimension)
            for doc in documents:
                if doc.units:
                    cur.execute(f"DELETE FROM {t}_units WHERE document = %s", (doc.id,))
                    cur.executemany(
                        f"INSERT INTO {t}_units VALUES (%s, %s, %s, %s, %s, %s, %s, %s::vector) "
                        "ON CONFLICT (id) DO UPDATE SET document = EXCLUDED.document, ord = EXCLUDED.ord, "
                        "title = EXCLUDED.title, location = EXCLUDED.location, text = EXCLUDED.text, "
                        "meta = EXCLUDED.meta, embedding = EXCLUDED.embedding",
                        [
                            (u.id, doc.id, i, u.title, u.location, u.text, json.dumps(u.meta), _literal(v))
                            for i, (u, v) in enumerate(zip(doc.units, doc.vectors, strict=True))
                        ],
                    )
                elif self._has_units():
                    cur.execute(f"DELETE FROM {t}_units WHERE document = %s", (doc.id,))
                cur.execute(
                    f"INSERT INTO {t}_documents VALUES (%s, %s) "
                    "ON CONFLICT (id) DO UPDATE SET digest = EXCLUDED.digest",
                    (doc.id, doc.digest),
                )

    def delete_documents(self, doc_ids: Sequence[str]) -> None:
        t = self._t
        with self._lock, self._db.transaction(), self._db.cursor() as cur:
            if self._has_units():
                cur.execute(f"DELETE FROM {t}_units WHERE document = ANY(%s)", (list(doc_ids),))
            cur.execute(f"DELETE FROM {t}_documents WHERE id = ANY(%s)", (list(doc_ids),))

    def search(self, vector: np.ndarray, k: int) -> list[tuple[Unit, float]]:
        if not self._has_units():
            return []
        with self._lock, self._db.transaction(), self._db.cursor() as cur:
            cur.execute(f"SET LOCAL hnsw.ef_search = {max(40, 2 * int(k))}")
            cur.execute(
                f"SELECT id, document, title, location, text, meta, 1 - (embedding <=> %s::vector) "
                f"FROM {self._t}_units ORDER BY embedding <=> %s::vector LIMIT %s",
                (_literal(vector), _literal(vector), int(k)),
            )
            rows = cur.fetchall()
        return [(Unit(r[0], r[1], r[2], r[3], r[4], r[5]), float(r[6])) for r in rows]

    def units(self, doc_id: str) -> list[Unit]:
        if not self._has_units():
            return []
        rows = self._db.execute(
            f"SELECT id, document, title, location, text, meta FROM {self._t}_units "
            "WHERE document = %s ORDER BY ord",
            (doc_id,),
        ).fetchall()
        return [Unit(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]

    def find(self, unit_or_doc_id: str) -> str | None:
        if not self._has_units():
            return None
        t = self._t
        row = self._db.execute(
            f"SELECT document FROM {t}_units WHERE id = %s OR document = %s LIMIT 1",
            (unit_or_doc_id, unit_or_doc_id),
        ).fetchone()
        if row:
            return str(row[0])
        if len(unit_or_doc_id) >= 4:
            rows = self._db.execute(
                f"SELECT DISTINCT document FROM {t}_units WHERE document LIKE %s LIMIT 2",
                (unit_or_doc_id.replace("%", "") + "%",),
            ).fetchall()
            if len(rows) == 1:
                return str(rows[0][0])
        return None

    def count(self) -> int:
        if not self._has_units():
            return 0
        row = self._db.execute(f"SELECT count(*) FROM {self._t}_units").fetchone()
        return int(row[0]) if row else 0

    def clear(self) -> None:
        t = self._t
        with self._lock, self._db.transaction():
            self._db.execute(f"DROP TABLE IF EXISTS {t}_units")
            self._db.execute(f"DELETE FROM {t}_documents")
            self._db.execute(f"DELETE FROM {t}_meta")

    def close(self) -> None:
        self._db.close()


def _redacted(dsn: str) -> str:
    """The DSN without its password, for messages."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(dsn)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return dsn
