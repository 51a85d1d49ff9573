"""Three real gateway processes over one real PostgreSQL: a thread, its messages and runs
go through different replicas, cancels reach the replica running the run from either of
the other two, the per-key limit counts the runs of all three, and a file uploaded
through one is read through the others (its bytes are in the database)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import openai
import pytest

from serving.testing import ScriptedModelServer
from tests._postgres import postgres_dsn  # noqa: F401  (fixture)

from ._replicas import executor_pid, gateway_process
from ._travel import FINAL, GatedScript
from .test_database import db_url  # noqa: F401  (fixture)
from .test_replicas import TASK, sdk, status, until

pytestmark = pytest.mark.filterwarnings("ignore:The Assistants API is deprecated:DeprecationWarning")


@pytest.fixture
def gated() -> Iterator[tuple[GatedScript, ScriptedModelServer]]:
    script = GatedScript("local_agent")
    with ScriptedModelServer(script) as model:
        yield script, model
        script.release.set()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_three_replicas_share_threads_runs_cancels_the_key_limit_and_files(
    db_url: str,  # noqa: F811
    gated: tuple[GatedScript, ScriptedModelServer],
    tmp_path: Path,
) -> None:
    script, model = gated
    log, limit = tmp_path / "gateway.log", ("--max-concurrency", "2")
    with ExitStack() as stack:
        procs = [
            stack.enter_context(gateway_process(db_url, model.base_url, model.model, log, *limit))
            for _ in range(3)
        ]
        a, b, c = clients = [sdk(url) for _, url in procs]
        by_pid = {proc.pid: client for (proc, _), client in zip(procs, clients, strict=True)}

        # one thread through three replicas; its run polled and listed through each
        thread = a.beta.threads.create(metadata={"via": "a"})
        b.beta.threads.messages.create(thread.id, role="user", content=TASK)
        first = c.beta.threads.runs.create(thread.id, assistant_id="travel_planning")
        until(lambda: status(a, thread.id, first.id) == "in_progress", 60, "first run started")
        assert script.reached.wait(60)
        assert [[r.id for r in x.beta.threads.runs.list(thread.id)] for x in clients] == [[first.id]] * 3
        assert c.beta.threads.retrieve(thread.id).metadata == {"via": "a"}

        # a second active run of the key, through another replica: the limit of 2 is full on all three
        other = b.beta.threads.create(messages=[{"role": "user", "content": TASK}])
        second = a.beta.threads.runs.create(other.id, assistant_id="travel_planning")
        until(lambda: status(c, other.id, second.id) == "in_progress", 60, "second run started")
        third = c.beta.threads.create(messages=[{"role": "user", "content": TASK}])
        with pytest.raises(openai.RateLimitError) as limited:
            c.beta.threads.runs.create(third.id, assistant_id="travel_planning")
        with pytest.raises(openai.RateLimitError):
            b.chat.completions.create(model="travel_planning", messages=[{"role": "user", "content": TASK}])
        assert "limit 2" in str(limited.value)

        # each run cancelled through a replica that does not run it
        cancel_s = []
        for thread_id, run_id in ((thread.id, first.id), (other.id, second.id)):
            runner = executor_pid(db_url, run_id)
            assert runner in by_pid
            elsewhere = [client for pid, client in by_pid.items() if pid != runner]
            asked = time.monotonic()
            elsewhere[0].beta.threads.runs.cancel(run_id, thread_id=thread_id)
            until(
                lambda t=thread_id, r=run_id, x=elsewhere[1]: status(x, t, r) == "cancelled",  # type: ignore[misc]
                10,
                "cancel observed",
            )
            cancel_s.append(time.monotonic() - asked)

        # the key has room again: a run through the third replica completes, read through the first
        script.release.set()
        done = c.beta.threads.runs.create_and_poll(
            thread_id=third.id, assistant_id="travel_planning", poll_interval_ms=50
        )
        answer = a.beta.threads.messages.list(third.id).data[0]

        # a file uploaded through A is read, listed and deleted through B and C
        uploaded = a.files.create(file=("readings.csv", b"t,v\n1,2\n"), purpose="assistants")
        contents = [x.files.content(uploaded.id).read() for x in (b, c)]
        listed = [f.id for f in c.files.list()]
        b.files.delete(uploaded.id)
        with pytest.raises(openai.NotFoundError):
            a.files.content(uploaded.id)
        for client in clients:
            client.close()

    assert all(s < 5 for s in cancel_s), f"cancels took {cancel_s} s (bound 1 s; 5 s on a loaded machine)"
    assert done.status == "completed", done.last_error
    assert answer.content[0].type == "text" and answer.content[0].text.value == FINAL
    assert contents == [b"t,v\n1,2\n"] * 2
    assert listed == [uploaded.id]
