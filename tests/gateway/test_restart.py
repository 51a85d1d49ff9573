"""SIGKILL the gateway process mid-run and start it again: no message is lost, the run is
reported failed with a reason, and the thread runs again."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import openai
import pytest
from openai.types.beta import thread_create_params

from serving.testing import ScriptedModelServer

from ._replicas import gateway_process as replica
from ._travel import FINAL, GatedScript

pytestmark = pytest.mark.filterwarnings("ignore:The Assistants API is deprecated:DeprecationWarning")

TASK: list[thread_create_params.Message] = [{"role": "user", "content": "Plan a 3 day trip to Nepal."}]


@contextmanager
def gateway_process(
    db: Path, model: ScriptedModelServer, log: Path, *options: str
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`python -m gateway` over the SQLite file `db` and the scripted model, healthy within 60 s."""
    with replica(str(db), model.base_url, model.model, log, *options, startup=60) as started:
        yield started


def test_sigkill_mid_run_loses_no_message(tmp_path: Path) -> None:
    db, log = tmp_path / "gateway.sqlite3", tmp_path / "gateway.log"
    script = GatedScript("local_agent")  # the second agent's model call hangs
    with ScriptedModelServer(script) as model:
        with gateway_process(db, model, log) as (proc, url):
            sdk = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
            thread = sdk.beta.threads.create(messages=TASK)
            run = sdk.beta.threads.runs.create(thread.id, assistant_id="travel_planning")
            assert script.reached.wait(30)
            deadline = time.monotonic() + 30
            while len(sdk.beta.threads.messages.list(thread_id=thread.id).data) < 2:  # planner's turn saved
                assert time.monotonic() < deadline
            assert sdk.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "in_progress"
            proc.kill()  # SIGKILL: no shutdown code runs
            proc.wait(30)
            sdk.close()
        script.release.set()

        with gateway_process(db, model, log) as (_, url):
            sdk = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
            interrupted = sdk.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
            kept = sdk.beta.threads.messages.list(thread_id=thread.id, order="asc").data
            rerun = sdk.beta.threads.runs.create_and_poll(
                thread_id=thread.id, assistant_id="travel_planning", poll_interval_ms=50
            )
            after = sdk.beta.threads.messages.list(thread_id=thread.id).data
            sdk.close()

    assert interrupted.status == "failed"
    assert interrupted.last_error is not None
    assert "gateway stopped while this run was in_progress" in interrupted.last_error.message
    assert [(m.role, (m.metadata or {}).get("agent")) for m in kept] == [
        ("user", None),
        ("assistant", "planner_agent"),
    ]
    assert rerun.status == "completed", rerun.last_error
    assert after[0].content[0].type == "text" and after[0].content[0].text.value == FINAL
