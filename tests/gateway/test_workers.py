"""`--workers N`: teams run in N worker processes behind one gateway process."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import openai
import pytest
from autogen_core import CancellationToken
from openai.types.beta import thread_create_params

from agentteams import ModelServerUnavailable
from gateway._runner import RemoteRunError
from gateway._workers import WorkerPool
from serving.testing import ScriptedModelServer
from teams import RunEvent, RunRequest, RunResult

from ._travel import AGENTS, FINAL, PER_CALL, GatedScript, reply_for
from .test_restart import gateway_process

TASK = "Plan a 3 day trip to Nepal."


async def _drain(
    pool: WorkerPool,
    request: RunRequest,
    name: str = "travel_planning",
    cancel: CancellationToken | None = None,
) -> list[RunEvent]:
    return [event async for event in pool.stream(name, request, cancel or CancellationToken())]


async def _load_reaches(pool: WorkerPool, runs: int) -> dict[int, int]:
    deadline = time.monotonic() + 30
    while sum(pool.load().values()) != runs:
        assert time.monotonic() < deadline, pool.load()
        await asyncio.sleep(0.01)
    return pool.load()


async def test_runs_spread_over_the_workers_and_finish() -> None:
    with ScriptedModelServer(reply_for, latency=0.3) as model:
        pool = WorkerPool(workers=2, base_url=model.base_url, model=model.model)
        await pool.start()
        try:
            runs = [
                asyncio.create_task(_drain(pool, RunRequest(TASK, stream_tokens=False))) for _ in range(4)
            ]
            during = await _load_reaches(pool, 4)
            results = await asyncio.gather(*runs)
        finally:
            await pool.aclose()
    assert sorted(during.values()) == [2, 2]  # two processes, two runs each
    for events in results:
        finished = events[-1]
        assert isinstance(finished, RunResult)
        assert (finished.final_text, finished.final_source) == (FINAL, "travel_summary_agent")
        assert finished.total.prompt_tokens == 4 * PER_CALL[0]
        assert [getattr(e, "source", None) for e in events[:-1]] == ["user", *AGENTS]
    assert model.calls == 16


async def test_cancelling_stops_the_team_in_its_worker() -> None:
    script = GatedScript("local_agent")
    with ScriptedModelServer(script) as model:
        pool = WorkerPool(workers=2, base_url=model.base_url, model=model.model)
        await pool.start()
        try:
            cancel = CancellationToken()
            run = asyncio.create_task(_drain(pool, RunRequest(TASK, stream_tokens=False), cancel=cancel))
            assert await asyncio.to_thread(script.reached.wait, 30)
            cancel.cancel()
            events = await asyncio.wait_for(run, 10)
            await _load_reaches(pool, 0)
        finally:
            script.release.set()
            await pool.aclose()
    # the task, the planner's turn, and no result after the cancel
    assert [getattr(e, "source", None) for e in events] == ["user", "planner_agent"]
    assert model.calls == 2


async def test_a_killed_worker_fails_its_run_and_is_replaced() -> None:
    script = GatedScript("local_agent")
    with ScriptedModelServer(script) as model:
        pool = WorkerPool(workers=2, base_url=model.base_url, model=model.model)
        await pool.start()
        try:
            run = asyncio.create_task(_drain(pool, RunRequest(TASK, stream_tokens=False)))
            assert await asyncio.to_thread(script.reached.wait, 30)
            (victim,) = [pid for pid, runs in pool.load().items() if runs]
            os.kill(victim, signal.SIGKILL)
            with pytest.raises(RemoteRunError) as failed:
                await asyncio.wait_for(run, 10)
            script.release.set()
            after = await _drain(pool, RunRequest(TASK, stream_tokens=False))
            pids = set(pool.load())
        finally:
            script.release.set()
            await pool.aclose()
    assert str(failed.value) == (
        f"the gateway worker process running this team (pid {victim}) exited with status -9"
    )
    assert isinstance(after[-1], RunResult) and after[-1].final_text == FINAL
    assert victim not in pids and len(pids) == 2


async def test_an_unreachable_model_server_is_an_upstream_error_naming_it() -> None:
    pool = WorkerPool(workers=2, base_url="http://127.0.0.1:9/v1", model="m")
    await pool.start()
    try:
        with pytest.raises(ModelServerUnavailable) as down:
            await _drain(pool, RunRequest(TASK))
        with pytest.raises(KeyError):
            await _drain(pool, RunRequest(TASK), "no_such_scenario")
    finally:
        await pool.aclose()
    assert down.value.url is not None and "127.0.0.1:9" in down.value.url
    assert "cannot reach the model server at http://127.0.0.1:9/v1" in str(down.value)


@pytest.mark.filterwarnings("ignore:The Assistants API is deprecated:DeprecationWarning")
def test_the_sdk_against_a_gateway_with_two_workers(tmp_path: Path) -> None:
    messages: list[thread_create_params.Message] = [{"role": "user", "content": TASK}]
    script = GatedScript("language_agent")
    with ScriptedModelServer(script) as model:
        with gateway_process(tmp_path / "g.sqlite3", model, tmp_path / "g.log", "--workers", "2") as (_, url):
            sdk = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
            thread = sdk.beta.threads.create(messages=messages)
            run = sdk.beta.threads.runs.create(thread.id, assistant_id="travel_planning")
            assert script.reached.wait(30)
            sdk.beta.threads.runs.cancel(run.id, thread_id=thread.id)
            deadline = time.monotonic() + 30
            while (
                cancelled := sdk.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
            ).status != "cancelled":
                assert time.monotonic() < deadline, cancelled.status
                time.sleep(0.05)
            script.release.set()
            completion = sdk.chat.completions.create(
                model="travel_planning", messages=[{"role": "user", "content": TASK}]
            )
            sdk.close()
    assert completion.choices[0].message.content == FINAL
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (
        4 * PER_CALL[0],
        4 * PER_CALL[1],
    )
