"""SQLite persistence of threads, messages, runs, team state and usage.

One connection used from one worker thread, so the event loop never blocks on disk and
writes are serialised without locks. Every write commits before returning: a SIGKILL loses
nothing that a client has been told about.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from teams import Usage

from ._schemas import UsageRowOut
from ._states import ACTIVE_STATUSES, LastErrorCode, Outcome, RunKind, RunStatus

__all__ = ["MessageRow", "RunRow", "Store", "ThreadRow", "new_id"]

T = TypeVar("T")

_ACTIVE_IN = f"status IN ({', '.join('?' * len(ACTIVE_STATUSES))})"
# the column each outcome stamps with its time (an expired run only has expires_at)
_ENDED_AT: dict[Outcome, str | None] = {
    "completed": "completed_at",
    "failed": "failed_at",
    "cancelled": "cancelled_at",
    "expired": None,
}

_SCHEMA = """
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
);
"""


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _now() -> int:
    return int(time.time())


@dataclass(frozen=True)
class ThreadRow:
    id: str
    created_at: int
    key_id: str
    metadata: dict[str, str]
    state: dict[str, Any] | None
    state_seq: int


@dataclass(frozen=True)
class MessageRow:
    seq: int
    id: str
    thread_id: str
    created_at: int
    role: Literal["user", "assistant"]
    content: str
    agent: str | None
    assistant_id: str | None
    run_id: str | None
    metadata: dict[str, str]


@dataclass(frozen=True)
class RunRow:
    id: str
    thread_id: str
    assistant_id: str
    created_at: int
    status: RunStatus
    started_at: int | None
    expires_at: int | None
    cancelled_at: int | None
    failed_at: int | None
    completed_at: int | None
    last_error_code: LastErrorCode | None
    last_error_message: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    key_id: str
    user_id: str
    metadata: dict[str, str]


def _thread(row: sqlite3.Row) -> ThreadRow:
    return ThreadRow(
        id=row["id"],
        created_at=row["created_at"],
        key_id=row["key_id"],
        metadata=json.loads(row["metadata"]),
        state=json.loads(row["state"]) if row["state"] else None,
        state_seq=row["state_seq"],
    )


def _message(row: sqlite3.Row) -> MessageRow:
    return MessageRow(
        seq=row["seq"],
        id=row["id"],
        thread_id=row["thread_id"],
        created_at=row["created_at"],
        role=row["role"],
        content=row["content"],
        agent=row["agent"],
        assistant_id=row["assistant_id"],
        run_id=row["run_id"],
        metadata=json.loads(row["metadata"]),
    )


def _run(row: sqlite3.Row) -> RunRow:
    fields = dict(row)
    fields["metadata"] = json.loads(fields["metadata"])
    return RunRow(**fields)


class Store:
    """Async facade over one SQLite connection owned by a single worker thread."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path) if str(path) != ":memory:" else path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gateway-db")
        self._conn: sqlite3.Connection | None = None

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._with_conn, fn)

    def _with_conn(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            raise RuntimeError("store is closed")
        with self._conn:  # one transaction per call
            return fn(self._conn)

    def _open(self) -> None:
        if isinstance(self.path, Path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.executescript(_SCHEMA)
        conn.isolation_level = "DEFERRED"  # implicit transactions again, committed by `with conn`
        self._conn = conn

    async def open(self) -> int:
        """Open the database and fail the runs a killed process left active; returns how many."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._open)
        return await self._call(_recover)

    async def close(self) -> None:
        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, close)
        self._executor.shutdown(wait=True)

    # ---- threads ------------------------------------------------------------------

    async def create_thread(self, key_id: str, metadata: dict[str, str]) -> ThreadRow:
        row = ThreadRow(new_id("thread"), _now(), key_id, metadata, None, 0)

        def insert(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO threads(id, created_at, key_id, metadata) VALUES (?, ?, ?, ?)",
                (row.id, row.created_at, key_id, json.dumps(metadata)),
            )

        await self._call(insert)
        return row

    async def get_thread(self, thread_id: str) -> ThreadRow | None:
        def get(c: sqlite3.Connection) -> ThreadRow | None:
            r = c.execute("SELECT * FROM threads WHERE id = ?", (thread_id,)).fetchone()
            return _thread(r) if r else None

        return await self._call(get)

    async def update_thread_metadata(self, thread_id: str, metadata: dict[str, str]) -> None:
        await self._call(
            lambda c: c.execute(
                "UPDATE threads SET metadata = ? WHERE id = ?", (json.dumps(metadata), thread_id)
            )
        )

    async def delete_thread(self, thread_id: str) -> bool:
        def delete(c: sqlite3.Connection) -> bool:
            return c.execute("DELETE FROM threads WHERE id = ?", (thread_id,)).rowcount > 0

        return await self._call(delete)

    async def save_state(self, thread_id: str, state: dict[str, Any], upto_seq: int) -> None:
        await self._call(
            lambda c: c.execute(
                "UPDATE threads SET state = ?, state_seq = ? WHERE id = ?",
                (json.dumps(state), upto_seq, thread_id),
            )
        )

    # ---- messages -----------------------------------------------------------------

    async def add_message(
        self,
        thread_id: str,
        role: Literal["user", "assistant"],
        content: str,
        *,
        agent: str | None = None,
        assistant_id: str | None = None,
        run_id: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> MessageRow:
        mid, created = new_id("msg"), _now()
        meta = dict(metadata or {})

        def insert(c: sqlite3.Connection) -> int:
            cur = c.execute(
                "INSERT INTO messages(id, thread_id, created_at, role, content, agent, assistant_id, run_id,"
                " metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (mid, thread_id, created, role, content, agent, assistant_id, run_id, json.dumps(meta)),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

        seq = await self._call(insert)
        return MessageRow(seq, mid, thread_id, created, role, content, agent, assistant_id, run_id, meta)

    async def last_seq(self, thread_id: str) -> int:
        def get(c: sqlite3.Connection) -> int:
            r = c.execute("SELECT MAX(seq) AS s FROM messages WHERE thread_id = ?", (thread_id,)).fetchone()
            return int(r["s"] or 0)

        return await self._call(get)

    async def set_message_content(self, message_id: str, content: str) -> None:
        await self._call(
            lambda c: c.execute("UPDATE messages SET content = ? WHERE id = ?", (content, message_id))
        )

    async def get_message(self, thread_id: str, message_id: str) -> MessageRow | None:
        def get(c: sqlite3.Connection) -> MessageRow | None:
            r = c.execute(
                "SELECT * FROM messages WHERE id = ? AND thread_id = ?", (message_id, thread_id)
            ).fetchone()
            return _message(r) if r else None

        return await self._call(get)

    async def list_messages(
        self,
        thread_id: str,
        *,
        limit: int | None = None,
        order: Literal["asc", "desc"] = "asc",
        after: str | None = None,
        before: str | None = None,
        run_id: str | None = None,
    ) -> list[MessageRow]:
        """Messages in `order`; `after`/`before` are message ids (cursors in that order)."""

        def query(c: sqlite3.Connection) -> list[MessageRow]:
            sql = "SELECT * FROM messages WHERE thread_id = ?"
            args: list[Any] = [thread_id]
            if run_id is not None:
                sql += " AND run_id = ?"
                args.append(run_id)
            for cursor, forward in ((after, True), (before, False)):
                if cursor is None:
                    continue
                r = c.execute("SELECT seq FROM messages WHERE id = ?", (cursor,)).fetchone()
                if r is None:
                    continue
                greater = forward == (order == "asc")
                sql += " AND seq > ?" if greater else " AND seq < ?"
                args.append(r["seq"])
            sql += " ORDER BY seq " + ("ASC" if order == "asc" else "DESC")
            if limit is not None:
                sql += " LIMIT ?"
                args.append(limit)
            return [_message(r) for r in c.execute(sql, args)]

        return await self._call(query)

    # ---- runs ---------------------------------------------------------------------

    async def create_run(
        self,
        thread_id: str,
        assistant_id: str,
        *,
        key_id: str,
        user_id: str,
        expires_in: float,
        metadata: dict[str, str],
    ) -> RunRow:
        created = _now()
        row = RunRow(
            id=new_id("run"),
            thread_id=thread_id,
            assistant_id=assistant_id,
            created_at=created,
            status="queued",
            started_at=None,
            expires_at=created + int(expires_in),
            cancelled_at=None,
            failed_at=None,
            completed_at=None,
            last_error_code=None,
            last_error_message=None,
            prompt_tokens=None,
            completion_tokens=None,
            key_id=key_id,
            user_id=user_id,
            metadata=metadata,
        )

        def insert(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO runs(id, thread_id, assistant_id, created_at, status, expires_at, key_id,"
                " user_id, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.id,
                    thread_id,
                    assistant_id,
                    created,
                    "queued",
                    row.expires_at,
                    key_id,
                    user_id,
                    json.dumps(metadata),
                ),
            )

        await self._call(insert)
        return row

    async def get_run(self, thread_id: str, run_id: str) -> RunRow | None:
        def get(c: sqlite3.Connection) -> RunRow | None:
            r = c.execute("SELECT * FROM runs WHERE id = ? AND thread_id = ?", (run_id, thread_id)).fetchone()
            return _run(r) if r else None

        return await self._call(get)

    async def list_runs(self, thread_id: str, *, limit: int, order: Literal["asc", "desc"]) -> list[RunRow]:
        def query(c: sqlite3.Connection) -> list[RunRow]:
            sql = "SELECT * FROM runs WHERE thread_id = ? ORDER BY created_at {0}, rowid {0} LIMIT ?".format(
                "ASC" if order == "asc" else "DESC"
            )
            return [_run(r) for r in c.execute(sql, (thread_id, limit))]

        return await self._call(query)

    async def active_run(self, thread_id: str) -> RunRow | None:
        def get(c: sqlite3.Connection) -> RunRow | None:
            r = c.execute(
                f"SELECT * FROM runs WHERE thread_id = ? AND {_ACTIVE_IN} LIMIT 1",
                (thread_id, *ACTIVE_STATUSES),
            ).fetchone()
            return _run(r) if r else None

        return await self._call(get)

    async def mark_run_started(self, run_id: str) -> None:
        """queued -> in_progress: a slot was free and the team starts."""
        await self._call(
            lambda c: c.execute(
                "UPDATE runs SET status = 'in_progress', started_at = ? WHERE id = ?", (_now(), run_id)
            )
        )

    async def mark_run_cancelling(self, run_id: str) -> bool:
        """in_progress -> cancelling: asked to stop; False if it was not in progress."""
        return await self._call(
            lambda c: (
                c.execute(
                    "UPDATE runs SET status = 'cancelling' WHERE id = ? AND status = 'in_progress'", (run_id,)
                ).rowcount
                > 0
            )
        )

    async def finish_run(
        self,
        run_id: str,
        outcome: Outcome,
        *,
        usage: Usage | None,
        error: tuple[LastErrorCode, str] | None = None,
    ) -> None:
        """The run ended with `outcome`: stamped with its time, its usage so far and its error."""
        ended_at = _ENDED_AT[outcome]
        code, message = error if error is not None else (None, None)
        prompt, completion = (
            (usage.prompt_tokens, usage.completion_tokens) if usage is not None else (None, None)
        )
        stamp = f", {ended_at} = ?" if ended_at is not None else ""
        args = (outcome, code, message, prompt, completion, *([_now()] if ended_at else []), run_id)
        await self._call(
            lambda c: c.execute(
                "UPDATE runs SET status = ?, last_error_code = ?, last_error_message = ?, prompt_tokens = ?,"
                f" completion_tokens = ?{stamp} WHERE id = ?",
                args,
            )
        )

    # ---- usage --------------------------------------------------------------------

    async def record_usage(
        self,
        *,
        key_id: str,
        user_id: str,
        scenario: str,
        kind: RunKind,
        outcome: Outcome,
        usage: Usage,
    ) -> None:
        row = (_now(), key_id, user_id, scenario, kind, outcome, usage.prompt_tokens, usage.completion_tokens)
        await self._call(
            lambda c: c.execute(
                "INSERT INTO usage(created_at, key_id, user_id, scenario, kind, status, prompt_tokens,"
                " completion_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        )

    async def usage(
        self, *, key_id: str | None = None, user: str | None = None, scenario: str | None = None
    ) -> list[UsageRowOut]:
        """Runs and tokens per user and scenario."""

        def query(c: sqlite3.Connection) -> list[UsageRowOut]:
            where, args = [], []
            if key_id is not None:
                where.append("key_id = ?")
                args.append(key_id)
            if user is not None:
                where.append("user_id = ?")
                args.append(user)
            if scenario is not None:
                where.append("scenario = ?")
                args.append(scenario)
            sql = (
                "SELECT user_id, scenario, COUNT(*) AS runs, SUM(prompt_tokens) AS p,"
                " SUM(completion_tokens) AS c FROM usage"
                + (" WHERE " + " AND ".join(where) if where else "")
                + " GROUP BY user_id, scenario ORDER BY user_id, scenario"
            )
            return [
                UsageRowOut(
                    user=r["user_id"],
                    scenario=r["scenario"],
                    runs=r["runs"],
                    prompt_tokens=r["p"],
                    completion_tokens=r["c"],
                    total_tokens=r["p"] + r["c"],
                )
                for r in c.execute(sql, args)
            ]

        return await self._call(query)


def _recover(c: sqlite3.Connection) -> int:
    now = _now()
    cur = c.execute(
        "UPDATE runs SET status = 'failed', failed_at = ?, last_error_code = 'server_error',"
        " last_error_message = 'the gateway stopped while this run was ' || status ||"
        " ' (process killed or restarted); its messages so far are kept and the thread can run again'"
        f" WHERE {_ACTIVE_IN}",
        (now, *ACTIVE_STATUSES),
    )
    return cur.rowcount
