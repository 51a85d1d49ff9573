"""Two real gateway processes over one database (a SQLite file, a real PostgreSQL): any
replica serves any thread, a cancel reaches the replica running the run, a killed replica's
run fails with the reason and the thread runs again on the survivor, and a restarted replica
takes the queued runs."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from serving.testing import ScriptedModelServer
from tests._postgres import postgres_dsn  # noqa: F401  (fixture)

from ._replicas import executor_pid, gateway_process, replica_pids
from ._travel import FINAL, GatedScript, reply_for
from .test_database import db_url  # noqa: F401  (fixture: a fresh SQLite file or PostgreSQL database)

pytestmark = pytest.mark.filterwarnings("ignore:The Assistants API is deprecated:DeprecationWarning")

_log = logging.getLogger(__name__)
TASK = "Plan a 3 day trip to Nepal."


def until(check: Callable[[], Any], within: float, what: str) -> Any:
    """Poll `check()` until it returns something truthy, within `within` seconds."""
    deadline = time.monotonic() + within
    while not (value := check()):
        assert time.monotonic() < deadline, f"{what}: not within {within} s"
        time.sleep(0.02)
    return value


def sdk(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


def status(client: openai.OpenAI, thread_id: str, run_id: str) -> str:
    return client.beta.threads.runs.retrieve(run_id, thread_id=thread_id).status


@pytest.fixture
def gated() -> Iterator[tuple[GatedScript, ScriptedModelServer]]:
    script = GatedScript("local_agent")  # the second agent's model call waits for `release`
    with ScriptedModelServer(script) as model:
        yield script, model
        script.release.set()


def test_two_replicas_serve_one_thread_cancel_across_and_survive_a_kill(
    db_url: str,  # noqa: F811
    gated: tuple[GatedScript, ScriptedModelServer],
    tmp_path: Path,
) -> None:
    script, model = gated
    log = tmp_path / "gateway.log"
    options = ("--max-concurrency", "1")
    with (
        gateway_process(db_url, model.base_url, model.model, log, *options) as (proc_a, url_a),
        gateway_process(db_url, model.base_url, model.model, log, *options) as (proc_b, url_b),
    ):
        a, b = sdk(url_a), sdk(url_b)
        by_pid = {proc_a.pid: (proc_a, a), proc_b.pid: (proc_b, b)}

        # a thread made through A gets its message and its run through B, polled through A
        thread = a.beta.threads.create(metadata={"via": "a"})
        b.beta.threads.messages.create(thread.id, role="user", content=TASK)
        run = b.beta.threads.runs.create(thread.id, assistant_id="travel_planning")
        until(lambda: status(a, thread.id, run.id) == "in_progress", 60, "run started")
        assert script.reached.wait(60)
        assert [r.id for r in a.beta.threads.runs.list(thread.id)] == [run.id]
        assert [r.id for r in b.beta.threads.runs.list(thread.id)] == [run.id]
        assert b.beta.threads.retrieve(thread.id).metadata == {"via": "a"}

        # the key's limit of 1 holds on both replicas while the run is active
        other = b.beta.threads.create(messages=[{"role": "user", "content": TASK}])
        with pytest.raises(openai.RateLimitError) as limited_run:
            b.beta.threads.runs.create(other.id, assistant_id="travel_planning")
        with pytest.raises(openai.RateLimitError):
            a.chat.completions.create(model="travel_planning", messages=[{"role": "user", "content": TASK}])
        assert "limit 1" in str(limited_run.value)

        # cancelled through the replica that is not running it
        runner = executor_pid(db_url, run.id)
        assert runner in by_pid
        (_, elsewhere) = next(v for pid, v in by_pid.items() if pid != runner)
        asked = time.monotonic()
        # (over PostgreSQL the executing replica hears of it at once and may be done already)
        assert elsewhere.beta.threads.runs.cancel(run.id, thread_id=thread.id).status in (
            "cancelling",
            "cancelled",
        )
        until(lambda: status(elsewhere, thread.id, run.id) == "cancelled", 10, "cancel observed")
        cancel_s = time.monotonic() - asked
        script.release.set()
        kept = [(m.metadata or {}).get("agent") for m in a.beta.threads.messages.list(thread.id, order="asc")]
        assert kept == [None, "planner_agent"]

        # SIGKILL the replica running the next run: a survivor fails it with the reason
        script.release.clear()
        script.reached.clear()
        second = a.beta.threads.runs.create(thread.id, assistant_id="travel_planning")
        assert script.reached.wait(60)
        runner = executor_pid(db_url, second.id)
        assert runner in by_pid
        killed, _ = by_pid.pop(runner)
        (_, survivor) = next(iter(by_pid.values()))
        os.kill(runner, signal.SIGKILL)
        killed.wait(30)
        died = time.monotonic()
        failed = until(
            lambda: (
                (r := survivor.beta.threads.runs.retrieve(second.id, thread_id=thread.id)).status == "failed"
                and r
            ),
            30,
            "the survivor noticed",
        )
        noticed_s = time.monotonic() - died
        script.release.set()
        again = survivor.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id="travel_planning", poll_interval_ms=50
        )
        answer = survivor.beta.threads.messages.list(thread.id).data[0]
        a.close()
        b.close()

    _log.info(
        "%s: cancel seen after %.2f s; SIGKILL noticed after %.2f s",
        db_url.split(":")[0],
        cancel_s,
        noticed_s,
    )
    assert cancel_s < 5, "a cancel must stop the run within a second (5 s: a loaded 2-core machine)"
    assert failed.last_error is not None
    assert failed.last_error.message.startswith(
        "the gateway stopped while this run was in_progress (the gateway replica running it stopped"
    )
    assert again.status == "completed", again.last_error
    assert answer.content[0].type == "text" and answer.content[0].text.value == FINAL


def test_a_restarted_replica_takes_the_queued_runs(
    db_url: str,  # noqa: F811
    gated: tuple[GatedScript, ScriptedModelServer],
    tmp_path: Path,
) -> None:
    script, model = gated
    log = tmp_path / "gateway.log"
    with gateway_process(db_url, model.base_url, model.model, log, "--max-active-runs", "1") as (proc, url):
        client = sdk(url)
        first = client.beta.threads.create_and_run(
            assistant_id="travel_planning", thread={"messages": [{"role": "user", "content": TASK}]}
        )
        assert script.reached.wait(60)
        queued = client.beta.threads.create_and_run(
            assistant_id="travel_planning", thread={"messages": [{"role": "user", "content": TASK}]}
        )
        assert status(client, queued.thread_id, queued.id) == "queued"  # no room: one active run
        proc.kill()
        proc.wait(30)
        client.close()
    script.release.set()
    with gateway_process(db_url, model.base_url, model.model, log) as (_, url):
        client = sdk(url)
        interrupted = status(client, first.thread_id, first.id)
        done = until(
            lambda: (
                (r := client.beta.threads.runs.retrieve(queued.id, thread_id=queued.thread_id)).status
                in ("completed", "failed")
                and r
            ),
            60,
            "the queued run ran",
        )
        client.close()
    assert interrupted == "failed"
    assert done.status == "completed", done.last_error


def test_processes_n_serves_one_port_from_n_replicas(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'gateway.sqlite3'}"
    with (
        ScriptedModelServer(reply_for) as model,
        gateway_process(db, model.base_url, model.model, tmp_path / "log", "--processes", "2") as (_, url),
    ):
        until(lambda: len(replica_pids(db)) == 2, 120, "two replicas registered")
        client = sdk(url)
        runs = [
            client.beta.threads.create_and_run_poll(
                assistant_id="travel_planning",
                thread={"messages": [{"role": "user", "content": TASK}]},
                poll_interval_ms=50,
            )
            for _ in range(2)
        ]
        client.close()
        pids = replica_pids(db)
    assert [r.status for r in runs] == ["completed", "completed"]
    assert len(set(pids)) == 2


def test_the_retired_workers_flag_says_to_use_processes() -> None:
    import subprocess
    import sys

    from ._replicas import REPO

    done = subprocess.run(
        [sys.executable, "-m", "gateway", "--workers", "2"], cwd=REPO, capture_output=True, text=True
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "error: --workers was removed; use --processes 2: that many gateway processes over one database\n"
    )
