"""`python -m bench gateway_db`: the gateway's hot queries through its own thin layer
(`gateway/_db.py`: stdlib sqlite3, psycopg 3) against the same queries through SQLAlchemy
Core (2.x; sync pysqlite engine for SQLite, the async psycopg engine for PostgreSQL), on a
fresh database of each kind made by the gateway's own schema.

One "run" is what a thread run costs the store: insert a message and its event, read the
run and its messages (a stream's read), and claim then finish a run. The ratio of CPU
per run (SQLAlchemy / ours) decides whether one SQLAlchemy code path is worth it.
SQLAlchemy is not a dependency: `pip install 'sqlalchemy[asyncio]'` to run this.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench._report import print_table, write_json
from gateway._store import Store, new_id


@contextlib.contextmanager
def _database(kind: str, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'bench.sqlite3'}"
        return
    from tests._postgres import debian_bin_dir, postgres_cluster

    bin_dir = debian_bin_dir()
    if bin_dir is None:
        raise SystemExit("PostgreSQL is not installed: scripts/install-system-packages.sh")
    with postgres_cluster(bin_dir) as cluster:
        yield cluster.dsn


async def _ours(store: Store, thread_id: str, runs: int) -> None:
    for i in range(runs):
        run = await store.create_run(
            thread_id, "echo", key_id="dev", user_id="u", expires_in=600, metadata={}
        )
        claimed = await store.claim(1)
        assert claimed
        m = await store.add_message(thread_id, "assistant", f"reply {i}", agent="writer", run_id=run.id)
        await store.db.execute(
            "INSERT INTO run_events(run_id, seq, created_at, data) VALUES (?, ?, ?, ?)",
            (run.id, 0, time.time(), json.dumps({"type": "message", "text": m.content})),
        )
        assert await store.get_run(thread_id, run.id) is not None
        assert await store.list_messages(thread_id, run_id=run.id)
        await store.finish_run(run.id, "completed", usage=None)


def _sa_tables() -> Any:
    import sqlalchemy as sa

    meta = sa.MetaData()
    runs = sa.Table(
        "runs",
        meta,
        *(
            sa.Column(name, sa.Text if name not in _INTS else sa.BigInteger)
            for name in (
                "id thread_id assistant_id created_at status started_at expires_at cancelled_at failed_at"
                " completed_at last_error_code last_error_message prompt_tokens completion_tokens key_id"
                " user_id metadata owner"
            ).split()
        ),
        sa.Column("queued_at", sa.Float),
    )
    messages = sa.Table(
        "messages",
        meta,
        sa.Column("seq", sa.BigInteger, primary_key=True),
        *(
            sa.Column(n, sa.Text if n != "created_at" else sa.BigInteger)
            for n in "id thread_id created_at role content agent assistant_id run_id metadata".split()
        ),
    )
    events = sa.Table(
        "run_events",
        meta,
        sa.Column("run_id", sa.Text),
        sa.Column("seq", sa.BigInteger),
        sa.Column("created_at", sa.Float),
        sa.Column("data", sa.Text),
    )
    return runs, messages, events


_INTS = {"created_at", "started_at", "expires_at", "cancelled_at", "failed_at", "completed_at"}
_INTS |= {"prompt_tokens", "completion_tokens"}


def _sa_statements(dialect: str) -> dict[str, Any]:
    import sqlalchemy as sa

    runs, messages, events = _sa_tables()
    picked = sa.select(runs.c.id).where(runs.c.status == "queued").order_by(runs.c.queued_at).limit(1)
    if dialect == "postgresql":
        picked = picked.with_for_update(skip_locked=True)
    return {
        "create_run": runs.insert(),
        "claim": runs.update()
        .where(runs.c.id.in_(picked.scalar_subquery()))
        .values(status="in_progress", started_at=sa.bindparam("now"), owner=sa.bindparam("me"))
        .returning(*runs.c),
        "add_message": messages.insert().returning(messages.c.seq),
        "add_event": events.insert(),
        "get_run": sa.select(runs).where(
            runs.c.id == sa.bindparam("rid"), runs.c.thread_id == sa.bindparam("tid")
        ),
        "list_messages": sa.select(messages)
        .where(messages.c.thread_id == sa.bindparam("tid"), messages.c.run_id == sa.bindparam("rid"))
        .order_by(messages.c.seq),
        "finish": runs.update()
        .where(runs.c.id == sa.bindparam("rid"), runs.c.status.in_(["queued", "in_progress", "cancelling"]))
        .values(status="completed", completed_at=sa.bindparam("now")),
    }


def _sa_run_args(thread_id: str, i: int) -> tuple[str, dict[str, Any], dict[str, Any]]:
    rid, now = new_id("run"), int(time.time())
    run = {
        "id": rid,
        "thread_id": thread_id,
        "assistant_id": "echo",
        "created_at": now,
        "status": "queued",
        "expires_at": now + 600,
        "key_id": "dev",
        "user_id": "u",
        "metadata": "{}",
        "queued_at": time.time(),
    }
    message = {
        "id": new_id("msg"),
        "thread_id": thread_id,
        "created_at": now,
        "role": "assistant",
        "content": f"reply {i}",
        "agent": "writer",
        "assistant_id": None,
        "run_id": rid,
        "metadata": "{}",
    }
    return rid, run, message


def _sa_sqlite(path: str, thread_id: str, runs: int) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{path}", isolation_level="AUTOCOMMIT")  # as ours
    q = _sa_statements("sqlite")
    for i in range(runs):
        rid, run, message = _sa_run_args(thread_id, i)
        with engine.begin() as c:
            c.execute(q["create_run"], run)
        with engine.begin() as c:
            assert c.execute(q["claim"], {"now": int(time.time()), "me": "r"}).all()
        with engine.begin() as c:
            c.execute(q["add_message"], message).one()
        with engine.begin() as c:
            c.execute(q["add_event"], {"run_id": rid, "seq": 0, "created_at": time.time(), "data": "{}"})
        with engine.connect() as c:
            assert c.execute(q["get_run"], {"rid": rid, "tid": thread_id}).mappings().one()
            assert c.execute(q["list_messages"], {"rid": rid, "tid": thread_id}).mappings().all()
        with engine.begin() as c:
            c.execute(q["finish"], {"rid": rid, "now": int(time.time())})
    engine.dispose()


async def _sa_postgres(url: str, thread_id: str, runs: int) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(
        url.replace("postgresql://", "postgresql+psycopg://", 1), pool_size=4, isolation_level="AUTOCOMMIT"
    )
    q = _sa_statements("postgresql")
    for i in range(runs):
        rid, run, message = _sa_run_args(thread_id, i)
        async with engine.begin() as c:
            await c.execute(q["create_run"], run)
        async with engine.begin() as c:
            assert (await c.execute(q["claim"], {"now": int(time.time()), "me": "r"})).all()
        async with engine.begin() as c:
            (await c.execute(q["add_message"], message)).one()
        async with engine.begin() as c:
            await c.execute(
                q["add_event"], {"run_id": rid, "seq": 0, "created_at": time.time(), "data": "{}"}
            )
        async with engine.connect() as c:
            assert (await c.execute(q["get_run"], {"rid": rid, "tid": thread_id})).mappings().one()
            assert (await c.execute(q["list_messages"], {"rid": rid, "tid": thread_id})).mappings().all()
        async with engine.begin() as c:
            await c.execute(q["finish"], {"rid": rid, "now": int(time.time())})
    await engine.dispose()


def _cpu_ms(fn: Callable[[], None], runs: int) -> float:
    started = time.process_time()
    fn()
    return 1000 * (time.process_time() - started) / runs


def _measure(kind: str, url: str, runs: int, repeat: int) -> tuple[float, float]:
    """Median CPU ms per run: ours, SQLAlchemy's; interleaved, so drift hits both alike."""
    store = Store(url)

    async def setup() -> str:
        await store.open()
        thread = await store.create_thread("dev", {})
        await store.close()
        return thread.id

    thread_id = asyncio.run(setup())

    async def ours() -> None:
        await store.open()
        try:
            await _ours(store, thread_id, runs)
        finally:
            await store.close()

    def sa_run() -> None:
        if kind == "sqlite":
            _sa_sqlite(url.removeprefix("sqlite:///"), thread_id, runs)
        else:
            asyncio.run(_sa_postgres(url, thread_id, runs))

    mine, theirs = [], []
    for _ in range(repeat):
        mine.append(_cpu_ms(lambda: asyncio.run(ours()), runs))
        theirs.append(_cpu_ms(sa_run, runs))
    return statistics.median(mine), statistics.median(theirs)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench gateway_db", description=__doc__)
    parser.add_argument("--runs", type=int, default=500, help="store round trips per measurement")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    try:
        import sqlalchemy
    except ImportError:
        print("SQLAlchemy is not installed: pip install 'sqlalchemy[asyncio]'", file=sys.stderr)
        return 2
    rows, results = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("sqlite", "postgresql"):
            with _database(kind, Path(tmp)) as url:
                m, t = _measure(kind, url, args.runs, args.repeat)
            results.append({"db": kind, "ours_cpu_ms": round(m, 3), "sqlalchemy_cpu_ms": round(t, 3)})
            rows.append([kind, f"{m:.2f} ms", f"{t:.2f} ms", f"{t / m:.2f}x"])
    print_table(
        f"gateway store: one thread run's hot queries (7 statements), CPU per run, median of {args.repeat}"
        f" x {args.runs} (SQLAlchemy {sqlalchemy.__version__})",
        ["database", "ours (_db.py)", "SQLAlchemy Core", "SQLAlchemy / ours"],
        rows,
    )
    path = write_json("gateway-db", {"runs": args.runs, "cpus": os.cpu_count(), "results": results})
    print(f"wrote {path}")
    return 0
