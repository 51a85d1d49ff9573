"""One database for every gateway process: a SQLite file (WAL) or PostgreSQL, behind one API.

The store writes its SQL once, with `?` placeholders and SQL both databases speak
(`INSERT ... RETURNING`, `UPDATE ... WHERE id = (subquery)`); this layer only adapts the
placeholders and the driver. SQLite: the stdlib driver; a statement runs at once on the
event loop's own connection, which never waits for a lock (a hop to a thread costs more CPU
than the statement), and only when another connection holds the write lock does it wait on a
second connection owned by a worker thread, as whole transactions always do. PostgreSQL:
psycopg 3's async connections, a few per process.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from agentteams import UserError

__all__ = ["Database", "DatabaseUrlError", "Result", "Tx", "connect", "describe_url"]

T = TypeVar("T")
Dialect = Literal["sqlite", "postgresql"]
Args = Sequence[Any]

# a SQLite writer waits this long for another process's write to finish before failing
_BUSY_TIMEOUT_S = 30.0
_PG_CONNECTIONS = 4


class DatabaseUrlError(UserError):
    """`--db` names no database this gateway can open."""


@dataclass(frozen=True)
class Result:
    rows: list[dict[str, Any]]
    rowcount: int

    def one(self) -> dict[str, Any] | None:
        return self.rows[0] if self.rows else None


class Tx(Protocol):
    """Statements inside one transaction."""

    async def execute(self, sql: str, args: Args = ()) -> Result: ...


class Database(Protocol):
    dialect: Dialect
    url: str

    async def execute(self, sql: str, args: Args = ()) -> Result:
        """One statement in its own transaction."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[Tx]: ...

    async def close(self) -> None: ...


def describe_url(url: str) -> str:
    """The URL without its password, for logs."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


async def connect(url: str) -> Database:
    """Open `sqlite:///path` (also a bare path) or `postgresql://user:pass@host/db`."""
    if url.startswith(("postgresql://", "postgres://")):
        db = PostgresDatabase(url)
        await db.open()
        return db
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://")
        if not path.startswith("/"):
            raise DatabaseUrlError(f"--db {url}: write sqlite:///relative/path or sqlite:////absolute/path")
        path = path[1:] or ":memory:"
    elif "://" in url:
        raise DatabaseUrlError(
            f"--db {describe_url(url)}: unknown database; valid: sqlite:///PATH, postgresql://USER:PASS@HOST/DB"
        )
    else:
        path = url
    sdb = SqliteDatabase(path)
    await sdb.open()
    return sdb


# ---- SQLite ---------------------------------------------------------------------------------


def _rows(cur: sqlite3.Cursor) -> Result:
    if cur.description is None:
        return Result([], cur.rowcount)
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    return Result(rows, cur.rowcount)


class SqliteDatabase:
    dialect: Dialect = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gateway-db")
        self._conn: sqlite3.Connection | None = None  # the worker thread's: waits for locks
        self._inline: sqlite3.Connection | None = None  # the event loop's: never waits
        self._tx_lock = asyncio.Lock()  # one multi-statement transaction at a time on the connection

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._with_conn, fn)

    def _with_conn(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            raise RuntimeError("database is closed")
        return fn(self._conn)

    def _open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # autocommit: a single statement is its own transaction; `transaction()` says BEGIN IMMEDIATE
        conn = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=_BUSY_TIMEOUT_S
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        self._conn = conn
        if self.path != ":memory:":  # (an in-memory database is one connection's own)
            inline = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=0)
            inline.execute("PRAGMA synchronous=NORMAL")  # per connection: FULL would fsync each commit
            inline.execute("PRAGMA foreign_keys=ON")
            self._inline = inline

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._open)

    async def execute(self, sql: str, args: Args = ()) -> Result:
        if self._inline is not None:
            try:
                return _rows(self._inline.execute(sql, tuple(args)))
            except sqlite3.OperationalError as exc:
                # SQLITE_BUSY: another connection writes; an autocommit statement that failed
                # so wrote nothing, so it waits its turn on the worker's connection
                if exc.sqlite_errorcode & 0xFF not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                    raise
        if self._tx_lock.locked():
            async with self._tx_lock:  # never between another transaction's statements
                return await self._call(lambda c: _rows(c.execute(sql, tuple(args))))
        return await self._call(lambda c: _rows(c.execute(sql, tuple(args))))

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Tx]:
        async with self._tx_lock:
            await self._call(lambda c: c.execute("BEGIN IMMEDIATE"))
            try:
                yield _SqliteTx(self)
            except BaseException:
                await asyncio.shield(self._call(lambda c: c.execute("ROLLBACK")))
                raise
            await self._call(lambda c: c.execute("COMMIT"))

    def transaction(self) -> AbstractAsyncContextManager[Tx]:
        return self._transaction()

    async def close(self) -> None:
        def close(_: sqlite3.Connection) -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        if self._conn is not None:
            await self._call(close)
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        self._executor.shutdown(wait=True)


@dataclass
class _SqliteTx:
    db: SqliteDatabase

    async def execute(self, sql: str, args: Args = ()) -> Result:
        return await self.db._call(lambda c: _rows(c.execute(sql, tuple(args))))


# ---- PostgreSQL -----------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\?")


def _pg_sql(sql: str, cache: dict[str, str] = {}) -> str:  # noqa: B006 - a deliberate cache
    converted = cache.get(sql)
    if converted is None:
        converted = cache[sql] = _PLACEHOLDER.sub("%s", sql.replace("%", "%%"))
    return converted


class PostgresDatabase:
    dialect: Dialect = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = url
        self._free: asyncio.Queue[Any] = asyncio.Queue()
        self._all: list[Any] = []

    async def open(self) -> None:
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - the postgres extra is not installed
            raise DatabaseUrlError(
                "--db postgresql://...: install the driver with `pip install 'psycopg[binary]>=3.2'`"
            ) from exc
        try:
            for _ in range(_PG_CONNECTIONS):
                conn = await self._connect()
                self._all.append(conn)
                self._free.put_nowait(conn)
        except psycopg.OperationalError as exc:
            await self.close()
            raise DatabaseUrlError(f"--db {describe_url(self.url)}: cannot connect: {exc}".strip()) from exc

    async def _connect(self) -> Any:
        import psycopg

        return await psycopg.AsyncConnection.connect(self.url, autocommit=True)

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[Any]:
        conn = await self._free.get()
        if conn.broken or conn.closed:  # the server restarted or the network dropped: a new one
            try:
                fresh = await self._connect()
            except BaseException:
                self._free.put_nowait(conn)
                raise
            self._all[self._all.index(conn)] = conn = fresh
        try:
            yield conn
        finally:
            self._free.put_nowait(conn)

    async def execute(self, sql: str, args: Args = ()) -> Result:
        async with self._conn() as conn:
            return await _pg_execute(conn, sql, args)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Tx]:
        async with self._conn() as conn, conn.transaction():
            yield _PgTx(conn)

    def transaction(self) -> AbstractAsyncContextManager[Tx]:
        return self._transaction()

    async def close(self) -> None:
        for conn in self._all:
            await conn.close()
        self._all.clear()


async def _pg_execute(conn: Any, sql: str, args: Args) -> Result:
    from psycopg.pq import ExecStatus
    from psycopg.rows import dict_row

    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_pg_sql(sql), tuple(args))
        # (not `cur.description`: it builds a Column per column, a third of a query's CPU)
        result = cur.pgresult
        rows = await cur.fetchall() if result is not None and result.status == ExecStatus.TUPLES_OK else []
        return Result(list(rows), cur.rowcount)


@dataclass
class _PgTx:
    conn: Any

    async def execute(self, sql: str, args: Args = ()) -> Result:
        return await _pg_execute(self.conn, sql, args)
