"""The shared database, over a SQLite file and over a real PostgreSQL: the queue's claim, the
replica lease, cancels as writes, run events, the per-key count, and schema upgrades."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from gateway._db import connect
from gateway._schema import SCHEMA_VERSION, schema_version
from gateway._store import Store
from teams import Message, RunEvent, ToolCall, Usage
from tests._postgres import postgres_dsn  # noqa: F401  (fixture)

REPO = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parent / "data" / "gateway-v1.sqlite3"  # written by the schema before versions
_created = iter(range(1_000_000))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gateway.sqlite3'}"
        return
    import psycopg

    server = request.getfixturevalue("postgres_dsn")
    name = f"gw_{next(_created)}_{tmp_path.name[-8:].lower().replace('-', '_')}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield server.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
async def two(db_url: str) -> AsyncIterator[tuple[Store, Store]]:
    a, b = Store(db_url), Store(db_url)
    await a.open()
    await b.open()
    yield a, b
    await a.close()
    await b.close()


async def _queued(store: Store, text: str = "go") -> tuple[str, str]:
    thread = await store.create_thread("dev", {})
    await store.add_message(thread.id, "user", text)
    run = await store.create_run(thread.id, "echo", key_id="dev", user_id="u", expires_in=60, metadata={})
    assert run is not None
    return thread.id, run.id


async def test_each_queued_run_is_claimed_by_exactly_one_replica(two: tuple[Store, Store]) -> None:
    a, b = two
    runs = {(await _queued(a, f"task {i}"))[1] for i in range(20)}

    async def drain(store: Store) -> list[str]:
        got = []
        while (run := await store.claim_next()) is not None:
            got.append(run.id)
        return got

    got_a, got_b = await asyncio.gather(drain(a), drain(b))
    assert sorted(got_a + got_b) == sorted(runs)  # none twice, none left
    assert await a.claim_next() is None


async def test_a_cancel_written_by_one_replica_is_read_by_the_other(two: tuple[Store, Store]) -> None:
    a, b = two
    tid, queued = await _queued(a)
    assert await b.cancel_run(queued) == "cancelled"  # never started: cancelled at once
    assert await a.claim_next() is None
    tid, running = await _queued(a)
    claimed = await a.claim_next()
    assert claimed is not None and claimed.id == running
    assert await a.cancelling([running]) == []
    assert await b.cancel_run(running) == "cancelling"
    assert await a.cancelling([running]) == [running]
    await a.finish_run(running, "cancelled", usage=Usage(3, 1))
    assert await b.cancel_run(running) is None  # not active any more
    row = await b.get_run(tid, running)
    assert row is not None and row.status == "cancelled" and row.prompt_tokens == 3


async def test_a_stopped_replicas_runs_fail_with_the_reason(two: tuple[Store, Store], db_url: str) -> None:
    a, b = two
    tid, run_id = await _queued(a)
    assert (await b.claim_next()) is not None
    assert await a.sweep() == 0  # b renews its lease: its run is left alone
    # b on another machine stops renewing: its lease runs out
    await a.db.execute(
        "UPDATE replicas SET host = 'elsewhere', lease_until = 0 WHERE id = ?", (b.replica_id,)
    )
    assert await a.sweep() == 1
    row = await a.get_run(tid, run_id)
    assert row is not None and row.status == "failed" and row.last_error_message is not None
    assert "(the gateway replica running it stopped: killed" in row.last_error_message
    await b.finish_run(run_id, "completed", usage=None)  # too late: the failure stands
    row = await a.get_run(tid, run_id)
    assert row is not None and row.status == "failed"
    await b.renew_lease()  # it was only paused: it registers again
    assert await a.sweep() == 0


async def test_run_events_are_readable_from_every_replica(two: tuple[Store, Store]) -> None:
    a, b = two
    _, run_id = await _queued(a)
    events: list[RunEvent] = [
        Message("writer", "Draft", Usage(10, 5)),
        ToolCall("critic", "call_1", "word_count", '{"text": "x"}', Usage(7, 3)),
    ]
    for seq, event in enumerate(events):
        await a.add_event(run_id, seq, event)
    assert [e for _, e in await b.events(run_id)] == events
    assert [s for s, _ in await b.events(run_id, after=0)] == [1]


async def test_the_per_key_limit_counts_every_replica(two: tuple[Store, Store]) -> None:
    a, b = two
    first = await a.acquire_call("dev", limit=2)
    assert first is not None
    thread = await b.create_thread("dev", {})
    await b.add_message(thread.id, "user", "go")
    run = await b.create_run(
        thread.id, "echo", key_id="dev", user_id="u", expires_in=60, metadata={}, limit=2
    )
    assert run is not None
    assert await a.acquire_call("dev", limit=2) is None  # a chat call on a + a queued run on b
    assert await b.acquire_call("other-key", limit=2) is not None
    await a.release_call(first)
    assert await b.acquire_call("dev", limit=2) is not None


async def test_a_file_from_before_schema_versions_is_upgraded_without_losing_threads(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    shutil.copy(FIXTURE, path)
    store = Store(path)
    await store.open()
    thread = await store.get_thread("thread_cf2a4224aa06d3dd3fb23507")
    messages = await store.list_messages("thread_cf2a4224aa06d3dd3fb23507")
    runs = await store.list_runs("thread_cf2a4224aa06d3dd3fb23507", limit=10, order="asc")
    other = await store.list_messages("thread_1d35de56df1eea2a922d23fa")
    usage = await store.usage()
    version = await schema_version(store.db)
    # and the upgraded file runs the queue
    await store.add_message(thread.id if thread else "", "user", "Make it 5 days")
    new_run = await store.create_run(
        "thread_cf2a4224aa06d3dd3fb23507",
        "travel_planning",
        key_id="dev",
        user_id="alice",
        expires_in=60,
        metadata={},
    )
    claimed = await store.claim_next()
    await store.close()
    assert version == SCHEMA_VERSION
    assert thread is not None and thread.metadata == {"project": "nepal"} and thread.state == {"turns": 1}
    assert [(m.role, m.content, m.agent) for m in messages] == [
        ("user", "Plan a 3 day trip to Nepal.", None),
        ("assistant", "Day 1: Kathmandu.", "planner_agent"),
    ]
    assert [(r.status, r.prompt_tokens, r.completion_tokens) for r in runs] == [("completed", 120, 40)]
    assert [m.content for m in other] == ["What time is it in Seoul?"]
    assert [(u.user, u.runs, u.total_tokens) for u in usage] == [("alice", 1, 160)]
    assert new_run is not None and claimed is not None and claimed.id == new_run.id


def test_migrate_command_upgrades_once(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    shutil.copy(FIXTURE, path)

    def migrate(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway", "migrate", *args], cwd=REPO, capture_output=True, text=True
        )

    first, second = migrate("--db", str(path)), migrate("--db", f"sqlite:///{path}")
    bad = migrate("--db", "mysql://root:hunter2@db/gw")
    assert first.stdout == f"{path}: schema upgraded from version 1 to {SCHEMA_VERSION}\n", first.stderr
    assert second.stdout == f"sqlite:///{path}: schema version {SCHEMA_VERSION}, up to date\n"
    assert (bad.returncode, bad.stderr) == (
        2,
        "error: --db mysql://root:***@db/gw: unknown database;"
        " valid: sqlite:///PATH, postgresql://USER:PASS@HOST/DB\n",
    )


async def test_replicas_starting_together_upgrade_once(db_url: str) -> None:
    stores = [Store(db_url) for _ in range(3)]
    await asyncio.gather(*(s.open() for s in stores))
    db = await connect(db_url)
    rows = (await db.execute("SELECT version FROM schema_version")).rows
    await db.close()
    for s in stores:
        await s.close()
    assert rows == [{"version": SCHEMA_VERSION}]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_replica_reconnects_after_postgres_dropped_its_connections(db_url: str) -> None:
    import psycopg

    store = Store(db_url)
    await store.open()
    thread = await store.create_thread("dev", {})
    with psycopg.connect(db_url, autocommit=True) as admin:  # what a server restart does to clients
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid != pg_backend_pid()"
        )
    failures = 0
    for _ in range(8):  # each pooled connection fails once, then is replaced
        try:
            found = await store.get_thread(thread.id)
        except psycopg.OperationalError:
            failures += 1
            continue
        assert found is not None
    await store.close()
    assert failures <= 4
    assert await store_gets(db_url, thread.id)


async def store_gets(db_url: str, thread_id: str) -> bool:
    store = Store(db_url)
    await store.open()
    try:
        return await store.get_thread(thread_id) is not None
    finally:
        await store.close()


async def test_a_write_while_another_process_holds_the_sqlite_lock_waits_its_turn(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "gateway.sqlite3"
    store = Store(path)
    await store.open()
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another replica in the middle of a write
    loop = asyncio.get_running_loop()
    loop.call_later(0.3, other.execute, "COMMIT")
    started = loop.time()
    thread = await store.create_thread("dev", {"during": "lock"})  # not "database is locked"
    waited = loop.time() - started
    found = await store.get_thread(thread.id)
    other.close()
    await store.close()
    assert waited >= 0.25
    assert found is not None and found.metadata == {"during": "lock"}


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_postgres_notifies_every_replica_of_run_changes(two: tuple[Store, Store]) -> None:
    from gateway._notify import PgListener, RunSignals

    a, b = two
    signals = RunSignals()
    heard: list[str] = []
    told = asyncio.Event()
    queued = asyncio.Event()

    def on_cancelling(run_id: str) -> None:
        heard.append(run_id)
        told.set()

    listener = PgListener(a.url, signals, queued.set, on_cancelling)
    listener.start()
    try:
        await asyncio.wait_for(listener.ready.wait(), 30)
        queued.clear()
        tid, run_id = await _queued(b)  # queued through the other replica: a's queue is woken
        await asyncio.wait_for(
            queued.wait(), 5
        )  # notifications arrive in commit order: none older is pending
        # each change is awaited before the next is made: a late notification of the claim
        # once woke the wait for the message, and the message's the wait for the cancel
        with signals.follow(run_id) as changed:
            assert (await b.claim_next()) is not None
            await asyncio.wait_for(changed.wait(), 5)
            changed.clear()
            await b.add_message(tid, "assistant", "Draft", agent="writer", run_id=run_id)
            await asyncio.wait_for(changed.wait(), 5)  # a follower on a sees b's message
            changed.clear()
            assert await a.cancel_run(run_id) == "cancelling"
            await asyncio.wait_for(changed.wait(), 5)
            await asyncio.wait_for(told.wait(), 5)
        assert heard == [run_id]  # the executing replica is told to stop, without polling
        assert signals.listening
    finally:
        await listener.aclose()
    assert not signals.listening
