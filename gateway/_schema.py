"""The gateway's versioned schema and its upgrades (`python -m gateway migrate`, and on start).

A version table and an ordered list of steps, each a few DDL statements. One SQL text per
step, written for SQLite; `_for_postgres` maps its handful of type words. Every step runs in
one transaction under a lock (SQLite's write lock, a PostgreSQL advisory lock), so replicas
that start together upgrade once. Version 1 is the layout the gateway wrote before it was
versioned: a file from then has its tables and no version table.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from ._db import Database, Tx

__all__ = ["SCHEMA_VERSION", "migrate", "schema_version"]

_log = logging.getLogger(__name__)

_V1 = """
CREATE TABLE IF NOT EXISTS threads (
    id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    key_id TEXT NOT NULL,             -- the key that created it; other keys do not see it
    metadata TEXT NOT NULL DEFAULT '{}',
    state TEXT,                       -- the team's saved state (JSON) after its last completed run
    state_seq INTEGER NOT NULL DEFAULT 0  -- messages up to this seq are inside that state
);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    thread_id TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    agent TEXT,
    assistant_id TEXT,
    run_id TEXT,
    metadata TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS messages_thread ON messages(thread_id, seq);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
    assistant_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    started_at INTEGER,
    expires_at INTEGER,
    cancelled_at INTEGER,
    failed_at INTEGER,
    completed_at INTEGER,
    last_error_code TEXT,
    last_error_message TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    key_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS runs_thread ON runs(thread_id, created_at);
CREATE TABLE IF NOT EXISTS usage (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at INTEGER NOT NULL,
    key_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    scenario TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL
)
"""

# Runs are queued in the database and claimed by a replica (`owner`), whose lease in
# `replicas` it renews; a run's events are kept so that any replica can stream them.
_V2 = """
ALTER TABLE runs ADD COLUMN queued_at REAL;   -- time.time(): the queue's order, finer than created_at
ALTER TABLE runs ADD COLUMN owner TEXT;        -- the replica executing it
UPDATE runs SET queued_at = created_at;
CREATE INDEX runs_queue ON runs(status, queued_at);
CREATE INDEX runs_owner ON runs(owner, status);
CREATE TABLE replicas (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at REAL NOT NULL,
    lease_until REAL NOT NULL
);
CREATE TABLE run_events (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    created_at REAL NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE active_calls (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX active_calls_key ON active_calls(key_id)
"""


# PostgreSQL only: each change of a run that a follower shows (its status, a message of it)
# notifies every replica as it commits (see _notify.py); SQLite replicas read instead.
_V3_POSTGRES = (
    """CREATE OR REPLACE FUNCTION gateway_notify_run() RETURNS trigger AS $$
    BEGIN
        PERFORM pg_notify('gateway_runs', NEW.id || ' ' || NEW.status);
        RETURN NULL;
    END $$ LANGUAGE plpgsql""",
    """CREATE OR REPLACE FUNCTION gateway_notify_message() RETURNS trigger AS $$
    BEGIN
        PERFORM pg_notify('gateway_runs', NEW.run_id || ' message');
        RETURN NULL;
    END $$ LANGUAGE plpgsql""",
    "CREATE TRIGGER runs_notify AFTER INSERT OR UPDATE OF status ON runs"
    " FOR EACH ROW EXECUTE FUNCTION gateway_notify_run()",
    "CREATE TRIGGER messages_notify AFTER INSERT OR UPDATE OF content ON messages"
    " FOR EACH ROW WHEN (NEW.run_id IS NOT NULL) EXECUTE FUNCTION gateway_notify_message()",
    # a response's stream is its run_events (a tool call is an event and no message)
    """CREATE OR REPLACE FUNCTION gateway_notify_event() RETURNS trigger AS $$
    BEGIN
        PERFORM pg_notify('gateway_runs', NEW.run_id || ' event');
        RETURN NULL;
    END $$ LANGUAGE plpgsql""",
    "CREATE TRIGGER run_events_notify AFTER INSERT ON run_events"
    " FOR EACH ROW EXECUTE FUNCTION gateway_notify_event()",
)


# The Files API's tables, which the file store used to create by itself in the SQLite file
# (hence IF NOT EXISTS); over PostgreSQL the bytes are kept in `file_data` and `rowid` is an
# identity column (SQLite's implicit rowid orders the list there).
_V4 = """
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,           -- the key that made it; other keys get 404
    created_at INTEGER NOT NULL,
    filename TEXT NOT NULL,
    purpose TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    media_type TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS files_key ON files(key_id, created_at);
CREATE TABLE IF NOT EXISTS message_files (
    message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    file_id TEXT NOT NULL,
    kind TEXT NOT NULL,             -- image: an image_file content part; attachment: attachments
    PRIMARY KEY (message_id, position)
)
"""
_V4_POSTGRES = (
    "CREATE TABLE files (rowid BIGINT GENERATED BY DEFAULT AS IDENTITY UNIQUE, id TEXT PRIMARY KEY,"
    " key_id TEXT NOT NULL, created_at BIGINT NOT NULL, filename TEXT NOT NULL, purpose TEXT NOT NULL,"
    " bytes BIGINT NOT NULL, media_type TEXT NOT NULL)",
    "CREATE INDEX files_key ON files(key_id, created_at)",
    "CREATE TABLE message_files (message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,"
    " position BIGINT NOT NULL, file_id TEXT NOT NULL, kind TEXT NOT NULL,"
    " PRIMARY KEY (message_id, position))",
    "CREATE TABLE file_data (file_id TEXT PRIMARY KEY REFERENCES files(id) ON DELETE CASCADE,"
    " data BYTEA NOT NULL)",
)


# A response (the Responses API) is a run, and a conversation is a thread: `object` tells a
# response from a thread run, `request` keeps a response's own parameters (instructions, ...),
# `state` the team's state after a response, so that a later one can branch from it.
_V5 = """
ALTER TABLE runs ADD COLUMN object TEXT NOT NULL DEFAULT 'thread.run';  -- or 'response'
ALTER TABLE runs ADD COLUMN request TEXT;                                -- JSON, responses only
ALTER TABLE runs ADD COLUMN state TEXT     -- a completed response's team state: to branch from it
"""


@dataclass(frozen=True)
class _Step:
    version: int
    what: str
    sql: str
    postgresql: tuple[str, ...] | None = None  # statements of its own on PostgreSQL


_STEPS = (
    _Step(1, "threads, messages, runs, usage", _V1),
    _Step(2, "a run queue with leases, run events, calls counted per key", _V2),
    _Step(3, "run changes notify the replicas (PostgreSQL)", "", _V3_POSTGRES),
    _Step(4, "files in the database (their bytes too on PostgreSQL)", _V4, _V4_POSTGRES),
    _Step(5, "responses as runs (their kind and parameters)", _V5),
)
SCHEMA_VERSION = _STEPS[-1].version

_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
_MIGRATION_LOCK = 73_114_011  # any constant: the advisory lock id the replicas agree on


def _for_postgres(sql: str) -> str:
    sql = sql.replace(
        "INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
    )
    sql = re.sub(r"\bINTEGER\b", "BIGINT", sql)
    return re.sub(r"\bREAL\b", "DOUBLE PRECISION", sql)


def _statements(db: Database, sql: str) -> list[str]:
    text = _for_postgres(sql) if db.dialect == "postgresql" else sql
    text = re.sub(r"--[^\n]*", "", text)
    return [s.strip() for s in text.split(";") if s.strip()]


async def _current(tx: Tx, db: Database) -> int:
    row = (await tx.execute("SELECT MAX(version) AS v FROM schema_version")).one()
    if row is not None and row["v"] is not None:
        return int(row["v"])
    # unversioned: a file written before the version table existed has `threads` already
    if db.dialect == "sqlite":
        found = await tx.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'threads'")
    else:
        found = await tx.execute("SELECT 1 FROM information_schema.tables WHERE table_name = 'threads'")
    return 1 if found.rows else 0


async def schema_version(db: Database) -> int:
    async with db.transaction() as tx:
        await tx.execute(_VERSION_TABLE)
        return await _current(tx, db)


async def migrate(db: Database) -> tuple[int, int]:
    """Upgrade to SCHEMA_VERSION; returns (version before, version after)."""
    async with db.transaction() as tx:
        if db.dialect == "postgresql":
            await tx.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
        await tx.execute(_VERSION_TABLE)
        before = current = await _current(tx, db)
        if current > SCHEMA_VERSION:
            raise RuntimeError(
                f"the database has schema version {current}, newer than this gateway's {SCHEMA_VERSION}:"
                " upgrade the gateway"
            )
        for step in _STEPS:
            if step.version <= current:
                continue
            pg_only = step.postgresql if db.dialect == "postgresql" else None
            for statement in pg_only if pg_only is not None else _statements(db, step.sql):
                await tx.execute(statement)
            _log.info("database schema upgraded to version %d: %s", step.version, step.what)
            current = step.version
        if current != before or before == 0:
            await tx.execute("DELETE FROM schema_version")
            await tx.execute("INSERT INTO schema_version(version) VALUES (?)", (current,))
    return before, current
