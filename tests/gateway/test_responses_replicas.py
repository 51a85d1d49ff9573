"""Two real gateway processes over one database (a SQLite file, a real PostgreSQL): a response
made through one replica is polled, resumed and cancelled through the other, a conversation
continues across them, and a thread run's stream resumes on either."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.testing import ScriptedModelServer
from tests._postgres import postgres_dsn  # noqa: F401  (fixture)

from ._replicas import executor_pid, gateway_process
from ._travel import AGENTS, FINAL, GatedScript
from .test_database import db_url  # noqa: F401  (fixture: a fresh SQLite file or PostgreSQL database)
from .test_responses import agents_of, sdk

TASK = "Plan a 3 day trip to Nepal."


@pytest.fixture
def gated() -> Iterator[tuple[GatedScript, ScriptedModelServer]]:
    script = GatedScript("local_agent")  # the second agent's model call waits for `release`
    with ScriptedModelServer(script) as model:
        yield script, model
        script.release.set()


@pytest.mark.filterwarnings(
    "ignore:The Assistants API is deprecated:DeprecationWarning"
)  # the thread run only
def test_a_response_resumes_and_cancels_on_the_other_replica(
    db_url: str,  # noqa: F811
    gated: tuple[GatedScript, ScriptedModelServer],
    tmp_path: Path,
) -> None:
    script, model = gated
    log = tmp_path / "gateway.log"
    with (
        gateway_process(db_url, model.base_url, model.model, log) as (proc_a, url_a),
        gateway_process(db_url, model.base_url, model.model, log) as (proc_b, url_b),
    ):
        a, b = sdk(url_a), sdk(url_b)
        by_pid = {proc_a.pid: a, proc_b.pid: b}

        # streamed from A until the connection drops; resumed from B after the last event seen
        stream = a.responses.create(model="travel_planning", input=TASK, background=True, stream=True)
        seen = []
        for event in stream:
            seen.append(event)
            if event.type == "response.in_progress":
                break
        assert script.reached.wait(60)
        stream.close()
        response_id = seen[0].response.id  # type: ignore[union-attr]
        assert b.responses.retrieve(response_id).status == "in_progress"
        script.release.set()
        resumed = list(
            b.responses.retrieve(response_id, stream=True, starting_after=seen[-1].sequence_number)
        )
        replayed = list(a.responses.retrieve(response_id, stream=True))
        assert [e.sequence_number for e in seen + resumed] == list(range(len(replayed)))
        assert [e.model_dump() for e in seen + resumed] == [e.model_dump() for e in replayed]
        assert resumed[-1].type == "response.completed"
        assert resumed[-1].response.output_text == FINAL

        # a conversation made through B continues through A with the team's state
        conversation = b.conversations.create()
        first = a.responses.create(model="travel_planning", input=TASK, conversation=conversation.id)
        before = len(model.requests)
        second = b.responses.create(
            model="travel_planning", input="Make it 5 days.", conversation=conversation.id
        )
        seen_text = " | ".join(str(m.get("content")) for m in model.requests[before]["messages"])
        assert first.output_text == second.output_text == FINAL
        assert "Visit Asan market" in seen_text and "Make it 5 days." in seen_text
        items = list(a.conversations.items.list(conversation.id, order="asc"))
        assert [(i.model_extra or {}).get("agent") for i in items] == [None, *AGENTS] * 2

        # cancelled through the replica that is not running it
        script.release.clear()
        script.reached.clear()
        background = b.responses.create(model="travel_planning", input=TASK, background=True)
        assert script.reached.wait(60)
        runner = executor_pid(db_url, background.id)
        assert runner in by_pid
        elsewhere = next(c for pid, c in by_pid.items() if pid != runner)
        asked = time.monotonic()
        cancelled = elsewhere.responses.cancel(background.id)
        cancel_s = time.monotonic() - asked
        script.release.set()
        assert cancelled.status == "cancelled", cancelled.status
        assert cancel_s < 5, "a cancel stops the run within a second (5 s: a loaded 2-core machine)"
        assert agents_of(a.responses.retrieve(background.id)) == [("reasoning", "planner_agent")]

        # a thread run's stream, resumed through the other replica as Responses events
        script.release.clear()
        script.reached.clear()
        run = a.beta.threads.create_and_run(
            assistant_id="travel_planning", thread={"messages": [{"role": "user", "content": TASK}]}
        )
        assert script.reached.wait(60)
        live = b.responses.retrieve(run.id, stream=True)
        head = []
        for event in live:
            head.append(event)
            if event.type == "response.in_progress":
                break
        live.close()
        script.release.set()
        tail = list(a.responses.retrieve(run.id, stream=True, starting_after=head[-1].sequence_number))
        assert tail[-1].type == "response.completed" and tail[-1].response.output_text == FINAL
        a.close()
        b.close()
