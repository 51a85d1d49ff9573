"""Threads, messages, runs, their queue and events, team state and usage, in one database.

Every replica of the gateway reads and writes here and keeps nothing another one needs.
Every write commits before returning: a SIGKILL loses nothing that a client has been told
about. The SQL is written once for SQLite and PostgreSQL (see `_db.py`).

Runs are queued rows. A replica claims the oldest queued run in one atomic statement
(`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite has one writer at a time), becomes its
`owner`, and renews one lease for all of its runs in `replicas`. A run whose owner's lease
expired, or whose owner closed, or whose owner was a process on this machine that no longer
exists, is failed by whichever replica sweeps next; a run that was claimed has started the
team, so it is failed rather than queued again (its model calls may have had effects, such
as tool calls, that must not be repeated).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, overload

from teams import RunEvent, Usage, event_from_json

from ._db import Database, connect
from ._schema import migrate
from ._schemas import UsageRowOut
from ._states import ACTIVE_STATUSES, LastErrorCode, Outcome, RunKind, RunStatus

__all__ = ["LEASE_S", "MessageRow", "RunRow", "Store", "ThreadRow", "new_id"]

_log = logging.getLogger(__name__)

# a replica renews its lease every LEASE_S / 4; a run is failed at most LEASE_S after its
# replica stopped renewing, plus one sweep interval
LEASE_S = 12.0

_ACTIVE_IN = f"status IN ({', '.join('?' * len(ACTIVE_STATUSES))})"
_RUNNING_IN = "status IN ('in_progress', 'cancelling')"
# the column each outcome stamps with its time (an expired run only has expires_at)
_ENDED_AT: dict[Outcome, str | None] = {
    "completed": "completed_at",
    "failed": "failed_at",
    "cancelled": "cancelled_at",
    "expired": None,
}
_RUN_COLUMNS = (
    "id, thread_id, assistant_id, created_at, status, started_at, expires_at, cancelled_at, failed_at,"
    " completed_at, last_error_code, last_error_message, prompt_tokens, completion_tokens, key_id,"
    " user_id, metadata, object, request"
)
_RUN_COLUMNS_OF_RUNS = ", ".join(f"runs.{c.strip()}" for c in _RUN_COLUMNS.split(","))
STOPPED_REPLICA = (
    "the gateway stopped while this run was ' || status || ' (the gateway replica running it stopped:"
    " killed, restarted or unreachable); its messages so far are kept and the thread can run again"
)


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
    object: Literal["thread.run", "response"] = "thread.run"
    request: dict[str, Any] | None = None  # a response's own parameters


def _thread(row: dict[str, Any]) -> ThreadRow:
    return ThreadRow(
        id=row["id"],
        created_at=row["created_at"],
        key_id=row["key_id"],
        metadata=json.loads(row["metadata"]),
        state=json.loads(row["state"]) if row["state"] else None,
        state_seq=row["state_seq"],
    )


def _message(row: dict[str, Any]) -> MessageRow:
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


def _run(row: dict[str, Any]) -> RunRow:
    fields = {name: row[name] for name in _RUN_FIELDS}
    fields["metadata"] = json.loads(fields["metadata"])
    fields["request"] = json.loads(fields["request"]) if fields["request"] else None
    return RunRow(**fields)


_RUN_FIELDS = tuple(f.name for f in dataclasses.fields(RunRow))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Store:
    """The gateway's database, as the HTTP handlers and the run queue use it.

    `db` is a URL (`sqlite:///path`, `postgresql://...`) or a SQLite file path. Each Store is
    one replica: `open()` registers it, `close()` withdraws it.
    """

    def __init__(self, db: Path | str) -> None:
        self.url = str(db) if not isinstance(db, Path) else str(db)
        self.replica_id = new_id("replica")
        self.host = socket.gethostname()
        self._db: Database | None = None

    @property
    def db(self) -> Database:
        if self._db is None:
            raise RuntimeError("store is closed")
        return self._db

    async def open(self) -> int:
        """Open (and upgrade) the database, register this replica, and fail the runs that
        stopped replicas left active; returns how many."""
        self._db = await connect(self.url)
        before, after = await migrate(self._db)
        if before not in (0, after):
            _log.warning("upgraded the database schema from version %d to %d", before, after)
        now = time.time()
        await self.db.execute(
            "INSERT INTO replicas(id, host, pid, started_at, lease_until) VALUES (?, ?, ?, ?, ?)",
            (self.replica_id, self.host, os.getpid(), now, now + LEASE_S),
        )
        return await self.sweep()

    async def close(self) -> None:
        if self._db is None:
            return
        try:
            await self._db.execute("DELETE FROM replicas WHERE id = ?", (self.replica_id,))
            await self._db.execute("DELETE FROM active_calls WHERE owner = ?", (self.replica_id,))
        finally:
            await self._db.close()
            self._db = None

    # ---- replicas and leases ------------------------------------------------------------

    async def renew_lease(self) -> None:
        """Tell the other replicas this one is alive (and so are the runs it owns)."""
        result = await self.db.execute(
            "UPDATE replicas SET lease_until = ? WHERE id = ?", (time.time() + LEASE_S, self.replica_id)
        )
        if result.rowcount == 0:  # another replica took us for dead (a long pause): come back
            now = time.time()
            _log.warning("this replica's lease had expired; registering again")
            await self.db.execute(
                "INSERT INTO replicas(id, host, pid, started_at, lease_until) VALUES (?, ?, ?, ?, ?)",
                (self.replica_id, self.host, os.getpid(), now, now + LEASE_S),
            )

    async def sweep(self) -> int:
        """Fail the active runs of replicas that stopped; returns how many."""
        now = time.time()
        mine = await self.db.execute(
            "SELECT id, pid FROM replicas WHERE host = ? AND id != ?", (self.host, self.replica_id)
        )
        for r in mine.rows:  # on this machine a dead process is known at once, not at lease expiry
            if not _pid_alive(int(r["pid"])):
                await self.db.execute("DELETE FROM replicas WHERE id = ?", (r["id"],))
        await self.db.execute("DELETE FROM replicas WHERE lease_until < ?", (now,))
        await self.db.execute(
            "DELETE FROM active_calls WHERE owner NOT IN (SELECT id FROM replicas)",
        )
        result = await self.db.execute(
            "UPDATE runs SET status = 'failed', failed_at = ?, last_error_code = 'server_error',"
            f" last_error_message = '{STOPPED_REPLICA}'"
            f" WHERE {_RUNNING_IN} AND (owner IS NULL OR owner NOT IN (SELECT id FROM replicas))",
            (int(now),),
        )
        if result.rowcount:
            _log.warning("marked %d run(s) failed whose gateway replica stopped", result.rowcount)
        return result.rowcount

    # ---- threads ------------------------------------------------------------------

    async def create_thread(self, key_id: str, metadata: dict[str, str], prefix: str = "thread") -> ThreadRow:
        row = ThreadRow(new_id(prefix), _now(), key_id, metadata, None, 0)
        await self.db.execute(
            "INSERT INTO threads(id, created_at, key_id, metadata) VALUES (?, ?, ?, ?)",
            (row.id, row.created_at, key_id, json.dumps(metadata)),
        )
        return row

    async def get_thread(self, thread_id: str) -> ThreadRow | None:
        r = (await self.db.execute("SELECT * FROM threads WHERE id = ?", (thread_id,))).one()
        return _thread(r) if r else None

    async def update_thread_metadata(self, thread_id: str, metadata: dict[str, str]) -> None:
        await self.db.execute(
            "UPDATE threads SET metadata = ? WHERE id = ?", (json.dumps(metadata), thread_id)
        )

    async def delete_thread(self, thread_id: str) -> bool:
        return (await self.db.execute("DELETE FROM threads WHERE id = ?", (thread_id,))).rowcount > 0

    async def save_state(self, thread_id: str, state: dict[str, Any], upto_seq: int) -> None:
        await self.db.execute(
            "UPDATE threads SET state = ?, state_seq = ? WHERE id = ?",
            (json.dumps(state), upto_seq, thread_id),
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
        message_id: str | None = None,
    ) -> MessageRow:
        mid, created = message_id or new_id("msg"), _now()
        meta = dict(metadata or {})
        r = (
            await self.db.execute(
                "INSERT INTO messages(id, thread_id, created_at, role, content, agent, assistant_id, run_id,"
                " metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
                (mid, thread_id, created, role, content, agent, assistant_id, run_id, json.dumps(meta)),
            )
        ).one()
        assert r is not None
        return MessageRow(
            int(r["seq"]), mid, thread_id, created, role, content, agent, assistant_id, run_id, meta
        )

    async def delete_messages_after(self, thread_id: str, seq: int) -> None:
        """Take back the messages added after `seq` (a request that was refused after adding them)."""
        await self.db.execute("DELETE FROM messages WHERE thread_id = ? AND seq > ?", (thread_id, seq))

    async def last_seq(self, thread_id: str) -> int:
        r = (
            await self.db.execute("SELECT MAX(seq) AS s FROM messages WHERE thread_id = ?", (thread_id,))
        ).one()
        return int(r["s"] or 0) if r else 0

    async def set_message_content(self, message_id: str, content: str) -> None:
        await self.db.execute("UPDATE messages SET content = ? WHERE id = ?", (content, message_id))

    async def get_message(self, thread_id: str, message_id: str) -> MessageRow | None:
        r = (
            await self.db.execute(
                "SELECT * FROM messages WHERE id = ? AND thread_id = ?", (message_id, thread_id)
            )
        ).one()
        return _message(r) if r else None

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
        sql = "SELECT * FROM messages WHERE thread_id = ?"
        args: list[Any] = [thread_id]
        if run_id is not None:
            sql += " AND run_id = ?"
            args.append(run_id)
        for cursor, forward in ((after, True), (before, False)):
            if cursor is None:
                continue
            # an unknown cursor id bounds nothing
            greater = forward == (order == "asc")
            sql += (
                " AND seq > COALESCE((SELECT seq FROM messages WHERE id = ?), -1)"
                if greater
                else " AND seq < COALESCE((SELECT seq FROM messages WHERE id = ?), 9223372036854775807)"
            )
            args.append(cursor)
        sql += " ORDER BY seq " + ("ASC" if order == "asc" else "DESC")
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [_message(r) for r in (await self.db.execute(sql, args)).rows]

    # ---- runs ---------------------------------------------------------------------

    @overload
    async def create_run(
        self,
        thread_id: str,
        assistant_id: str,
        *,
        key_id: str,
        user_id: str,
        expires_in: float,
        metadata: dict[str, str],
        limit: None = None,
        object: Literal["thread.run", "response"] = "thread.run",
        request: dict[str, Any] | None = None,
    ) -> RunRow: ...

    @overload
    async def create_run(
        self,
        thread_id: str,
        assistant_id: str,
        *,
        key_id: str,
        user_id: str,
        expires_in: float,
        metadata: dict[str, str],
        limit: int,
        object: Literal["thread.run", "response"] = "thread.run",
        request: dict[str, Any] | None = None,
    ) -> RunRow | None: ...

    async def create_run(
        self,
        thread_id: str,
        assistant_id: str,
        *,
        key_id: str,
        user_id: str,
        expires_in: float,
        metadata: dict[str, str],
        limit: int | None = None,
        object: Literal["thread.run", "response"] = "thread.run",
        request: dict[str, Any] | None = None,
    ) -> RunRow | None:
        """A queued run: the next replica with room claims it. None: `key_id` already has
        `limit` active runs and calls (on every replica). A response is a run whose
        `object` is "response" (id `resp_...`), with its own parameters in `request`."""
        created = _now()
        row = RunRow(
            id=new_id("resp" if object == "response" else "run"),
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
            object=object,
            request=request,
        )
        columns = (
            "INSERT INTO runs(id, thread_id, assistant_id, created_at, status, expires_at, key_id,"
            " user_id, metadata, queued_at, object, request)"
        )
        values = (
            row.id,
            thread_id,
            assistant_id,
            created,
            "queued",
            row.expires_at,
            key_id,
            user_id,
            json.dumps(metadata),
            time.time(),
            object,
            json.dumps(request) if request is not None else None,
        )
        marks = ", ".join("?" * len(values))
        if limit is None:
            await self.db.execute(f"{columns} VALUES ({marks})", values)
            return row
        inserted = await self._insert_if_room(f"{columns} SELECT {marks}", values, key_id, limit)
        return row if inserted else None

    async def get_run(self, thread_id: str, run_id: str) -> RunRow | None:
        r = (
            await self.db.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ? AND thread_id = ?", (run_id, thread_id)
            )
        ).one()
        return _run(r) if r else None

    async def get_run_by_id(self, run_id: str) -> RunRow | None:
        r = (await self.db.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))).one()
        return _run(r) if r else None

    async def save_run_state(self, run_id: str, state: dict[str, Any]) -> None:
        await self.db.execute("UPDATE runs SET state = ? WHERE id = ?", (json.dumps(state), run_id))

    async def run_state(self, run_id: str) -> dict[str, Any] | None:
        r = (await self.db.execute("SELECT state FROM runs WHERE id = ?", (run_id,))).one()
        return json.loads(r["state"]) if r and r["state"] else None

    async def delete_run(self, run_id: str) -> bool:
        return (await self.db.execute("DELETE FROM runs WHERE id = ?", (run_id,))).rowcount > 0

    async def copy_messages(self, from_thread: str, to_thread: str, upto_seq: int) -> None:
        """The messages of `from_thread` up to `upto_seq`, appended to `to_thread` (a fork)."""
        for m in await self.list_messages(from_thread):
            if m.seq <= upto_seq:
                await self.add_message(
                    to_thread,
                    m.role,
                    m.content,
                    agent=m.agent,
                    assistant_id=m.assistant_id,
                    run_id=m.run_id,
                    metadata=m.metadata,
                )

    async def list_runs(self, thread_id: str, *, limit: int, order: Literal["asc", "desc"]) -> list[RunRow]:
        direction = "ASC" if order == "asc" else "DESC"
        sql = (
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE thread_id = ?"
            f" ORDER BY created_at {direction}, queued_at {direction} LIMIT ?"
        )
        return [_run(r) for r in (await self.db.execute(sql, (thread_id, limit))).rows]

    async def active_run(self, thread_id: str) -> RunRow | None:
        r = (
            await self.db.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE thread_id = ? AND {_ACTIVE_IN} LIMIT 1",
                (thread_id, *ACTIVE_STATUSES),
            )
        ).one()
        return _run(r) if r else None

    async def any_queued(self) -> bool:
        """Whether some run waits to be claimed (a read: no write lock on SQLite)."""
        return bool((await self.db.execute("SELECT 1 AS q FROM runs WHERE status = 'queued' LIMIT 1")).rows)

    async def claim_next(self) -> RunRow | None:
        """queued -> in_progress for the oldest queued run, now owned by this replica."""
        claimed = await self.claim(1)
        return claimed[0] if claimed else None

    async def claim(self, limit: int) -> list[RunRow]:
        """queued -> in_progress for up to `limit` of the oldest queued runs, in one statement."""
        if self.db.dialect == "postgresql":  # locks only the rows it takes, skipping the others' ones
            sql = (
                "WITH picked AS (SELECT id FROM runs WHERE status = 'queued' ORDER BY queued_at LIMIT ?"
                " FOR UPDATE SKIP LOCKED) UPDATE runs SET status = 'in_progress', started_at = ?,"
                f" owner = ? FROM picked WHERE runs.id = picked.id RETURNING {_RUN_COLUMNS_OF_RUNS}"
            )
            args: tuple[Any, ...] = (limit, _now(), self.replica_id)
        else:  # one writer at a time
            sql = (
                "UPDATE runs SET status = 'in_progress', started_at = ?, owner = ? WHERE id IN ("
                "SELECT id FROM runs WHERE status = 'queued' ORDER BY queued_at LIMIT ?"
                f") RETURNING {_RUN_COLUMNS}"
            )
            args = (_now(), self.replica_id, limit)
        result = await self.db.execute(sql, args)
        return [_run(r) for r in result.rows]

    async def mark_run_started(self, run_id: str) -> None:
        """queued -> in_progress for this run, owned by this replica."""
        await self.db.execute(
            "UPDATE runs SET status = 'in_progress', started_at = ?, owner = ? WHERE id = ?",
            (_now(), self.replica_id, run_id),
        )

    async def cancel_run(self, run_id: str) -> RunStatus | None:
        """queued -> cancelled at once; in_progress -> cancelling (its replica stops it).

        Returns the new status, or None when the run was not queued or in progress."""
        now = _now()
        r = (
            await self.db.execute(
                "UPDATE runs SET"
                " status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE 'cancelling' END,"
                " cancelled_at = CASE WHEN status = 'queued' THEN ? ELSE cancelled_at END"
                " WHERE id = ? AND status IN ('queued', 'in_progress') RETURNING status",
                (now, run_id),
            )
        ).one()
        return r["status"] if r else None

    async def mark_run_cancelling(self, run_id: str) -> bool:
        """in_progress -> cancelling: asked to stop; False if it was not in progress."""
        result = await self.db.execute(
            "UPDATE runs SET status = 'cancelling' WHERE id = ? AND status = 'in_progress'", (run_id,)
        )
        return result.rowcount > 0

    async def cancelling(self, run_ids: list[str]) -> list[str]:
        """Those of `run_ids` (runs this replica executes) that were asked to stop."""
        if not run_ids:
            return []
        marks = ", ".join("?" * len(run_ids))
        result = await self.db.execute(
            f"SELECT id FROM runs WHERE id IN ({marks}) AND status != 'in_progress'", run_ids
        )
        return [r["id"] for r in result.rows]

    async def finish_run(
        self,
        run_id: str,
        outcome: Outcome,
        *,
        usage: Usage | None,
        error: tuple[LastErrorCode, str] | None = None,
    ) -> None:
        """The run ended with `outcome`: stamped with its time, its usage so far and its error.

        Only an active run ends: one that a sweep already failed keeps that outcome."""
        ended_at = _ENDED_AT[outcome]
        code, message = error if error is not None else (None, None)
        prompt, completion = (
            (usage.prompt_tokens, usage.completion_tokens) if usage is not None else (None, None)
        )
        stamp = f", {ended_at} = ?" if ended_at is not None else ""
        args = (outcome, code, message, prompt, completion, *([_now()] if ended_at else []), run_id)
        await self.db.execute(
            "UPDATE runs SET status = ?, last_error_code = ?, last_error_message = ?, prompt_tokens = ?,"
            f" completion_tokens = ?{stamp} WHERE id = ? AND {_ACTIVE_IN}",
            (*args, *ACTIVE_STATUSES),
        )

    # ---- run events ---------------------------------------------------------------

    async def add_event(self, run_id: str, seq: int, event: RunEvent) -> None:
        await self.db.execute(
            "INSERT INTO run_events(run_id, seq, created_at, data) VALUES (?, ?, ?, ?)",
            (run_id, seq, time.time(), json.dumps(event.to_json())),
        )

    async def events(self, run_id: str, after: int = -1) -> list[tuple[int, RunEvent]]:
        """The run's events with seq > `after`, in order."""
        result = await self.db.execute(
            "SELECT seq, data FROM run_events WHERE run_id = ? AND seq > ? ORDER BY seq", (run_id, after)
        )
        return [(int(r["seq"]), event_from_json(json.loads(r["data"]))) for r in result.rows]

    # ---- per-key concurrency, counted across replicas -----------------------------

    async def acquire_call(self, key_id: str, limit: int) -> str | None:
        """Count one run of `key_id` unless it already has `limit` (queued and running thread
        runs plus chat calls, on every replica); returns the slot's id, or None when full."""
        slot = new_id("call")
        inserted = await self._insert_if_room(
            "INSERT INTO active_calls(id, key_id, owner, created_at) SELECT ?, ?, ?, ?",
            (slot, key_id, self.replica_id, time.time()),
            key_id,
            limit,
        )
        return slot if inserted else None

    async def _insert_if_room(
        self, insert_select: str, values: tuple[Any, ...], key_id: str, limit: int
    ) -> bool:
        """`INSERT ... SELECT values` unless `key_id` has `limit` active runs and calls.

        One statement, so SQLite (one writer) runs count and insert atomically; PostgreSQL
        sees other transactions' inserts only after the count, so it first takes the key's
        advisory lock, held to the end of the transaction."""
        sql = (
            f"{insert_select} WHERE (SELECT COUNT(*) FROM active_calls WHERE key_id = ?)"
            f" + (SELECT COUNT(*) FROM runs WHERE key_id = ? AND {_ACTIVE_IN}) < ?"
        )
        args = (*values, key_id, key_id, *ACTIVE_STATUSES, limit)
        if self.db.dialect == "sqlite":
            return (await self.db.execute(sql, args)).rowcount == 1
        async with self.db.transaction() as tx:
            await tx.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (key_id,))
            return (await tx.execute(sql, args)).rowcount == 1

    async def release_call(self, slot: str) -> None:
        await self.db.execute("DELETE FROM active_calls WHERE id = ?", (slot,))

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
        await self.db.execute(
            "INSERT INTO usage(created_at, key_id, user_id, scenario, kind, status, prompt_tokens,"
            " completion_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )

    async def usage(
        self, *, key_id: str | None = None, user: str | None = None, scenario: str | None = None
    ) -> list[UsageRowOut]:
        """Runs and tokens per user and scenario."""
        where: list[str] = []
        args: list[Any] = []
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
                runs=int(r["runs"]),
                prompt_tokens=int(r["p"]),
                completion_tokens=int(r["c"]),
                total_tokens=int(r["p"]) + int(r["c"]),
            )
            for r in (await self.db.execute(sql, args)).rows
        ]
