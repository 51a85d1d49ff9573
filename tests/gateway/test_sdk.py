"""The official openai SDK against the gateway on a real uvicorn, with the real `scenarios`
package and a scripted model server behind it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.beta import thread_create_params
from openai.types.chat import ChatCompletionMessageParam

from gateway import GatewayConfig, create_app
from serving.testing import ScriptedModelServer

from ._travel import AGENTS, FINAL, PER_CALL, GatedScript, reply_for
from .conftest import serve

pytestmark = pytest.mark.filterwarnings("ignore:The Assistants API is deprecated:DeprecationWarning")

TASK: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Plan a 3 day trip to Nepal."}]
THREAD_TASK: list[thread_create_params.Message] = [{"role": "user", "content": "Plan a 3 day trip to Nepal."}]


@pytest.fixture
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer(reply_for) as server:
        yield server


def gateway_client(url: str, key: str = "unused", retries: int = 0) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=retries, timeout=60)


@pytest.fixture
def client(model: ScriptedModelServer, tmp_path: Path) -> Iterator[openai.OpenAI]:
    config = GatewayConfig(db_path=tmp_path / "db.sqlite3", base_url=model.base_url, model=model.model)
    with serve(create_app(config)) as url:
        sdk = gateway_client(url)
        yield sdk
        sdk.close()


def test_models_are_the_scenarios(client: openai.OpenAI) -> None:
    models = {m.id: m for m in client.models.list()}
    assert {"travel_planning", "travel_selector", "time_assistant"} <= set(models)
    assert "plan a trip" in (models["travel_planning"].model_extra or {})["description"].lower()


def test_chat_completion_returns_the_teams_final_answer(
    client: openai.OpenAI, model: ScriptedModelServer
) -> None:
    completion = client.chat.completions.create(model="travel_planning", messages=TASK)
    choice = completion.choices[0]
    assert choice.message.content == FINAL  # TERMINATE removed
    assert choice.finish_reason == "stop"
    assert completion.model == "travel_planning"
    calls = len(model.requests)
    assert calls == 4  # one turn per agent
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (
        PER_CALL[0] * calls,
        PER_CALL[1] * calls,
    )


def test_history_reaches_the_team(client: openai.OpenAI, model: ScriptedModelServer) -> None:
    messages: Any = [
        {"role": "user", "content": "I like mountains."},
        {"role": "assistant", "content": "Noted: mountains."},
        *TASK,
    ]
    client.chat.completions.create(model="travel_planning", messages=messages)
    first_call = " | ".join(str(m.get("content")) for m in model.requests[0]["messages"])
    assert "I like mountains." in first_call and "Noted: mountains." in first_call
    assert first_call.index("I like mountains.") < first_call.index("Plan a 3 day trip")


def test_stream_sends_each_turn_by_speaker_then_the_answer_usage_and_done(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="travel_planning",
        messages=TASK,
        stream=True,
        stream_options={"include_usage": True},
    )
    order: list[str] = []  # "reasoning:<agent>", "content", "usage"
    reasoning = answer = ""
    usage = None
    for chunk in stream:
        extra = chunk.model_extra or {}
        if chunk.usage is not None:
            usage = chunk.usage
            order.append("usage")
            continue
        delta: Any = chunk.choices[0].delta
        piece = (delta.model_extra or {}).get("reasoning_content")
        if piece:
            reasoning += piece
            label = f"reasoning:{extra['agent']}"
            if not order or order[-1] != label:
                order.append(label)
        if delta.content:
            answer += delta.content
            if order[-1] != "content":
                order.append("content")
    assert order == [*(f"reasoning:{a}" for a in AGENTS), "content", "usage"]
    for agent in AGENTS:
        assert f"[{agent}] " in reasoning
    assert "Visit Asan market" in reasoning
    assert answer == FINAL
    assert usage is not None and usage.total_tokens == 4 * sum(PER_CALL)


def test_sdk_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as not_found:
        client.chat.completions.create(model="no_such_team", messages=TASK)
    assert not_found.value.status_code == 404
    assert not_found.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(
            model="travel_planning",
            messages=[{"role": "assistant", "content": "no task"}],
        )
    assert bad.value.code == "invalid_messages"
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(model="travel_planning", messages=[{"role": "wizard", "content": "x"}])  # type: ignore[list-item,misc]


def test_wrong_or_missing_key_is_401(model: ScriptedModelServer, tmp_path: Path) -> None:
    config = GatewayConfig(db_path=tmp_path / "db.sqlite3", keys=("sk-team",), base_url=model.base_url)
    with serve(create_app(config)) as url:
        with gateway_client(url, "sk-wrong") as wrong_key, pytest.raises(openai.AuthenticationError) as wrong:
            wrong_key.models.list()
        with gateway_client(url, "sk-team") as right_key:
            ok = right_key.models.list()
    assert wrong.value.status_code == 401 and wrong.value.code == "invalid_api_key"
    assert any(m.id == "travel_planning" for m in ok)


def test_model_server_down_is_502_naming_its_url(tmp_path: Path) -> None:
    dead = "http://127.0.0.1:9/v1"  # port 9 (discard): nothing listens
    config = GatewayConfig(db_path=tmp_path / "db.sqlite3", base_url=dead, model="m")
    with serve(create_app(config)) as url:
        with gateway_client(url) as sdk, pytest.raises(openai.APIStatusError) as down:
            sdk.chat.completions.create(model="travel_planning", messages=TASK)
    assert down.value.status_code == 502
    assert "127.0.0.1:9" in down.value.message


def test_429_beyond_the_per_key_limit(tmp_path: Path) -> None:
    script = GatedScript("planner_agent")
    with ScriptedModelServer(script) as model:
        config = GatewayConfig(
            db_path=tmp_path / "db.sqlite3",
            base_url=model.base_url,
            model=model.model,
            max_concurrent_per_key=1,
        )
        with serve(create_app(config)) as url, gateway_client(url) as sdk:
            thread = sdk.beta.threads.create(messages=THREAD_TASK)
            sdk.beta.threads.runs.create(thread.id, assistant_id="travel_planning")
            assert script.reached.wait(20)
            with pytest.raises(openai.RateLimitError) as limited:
                sdk.chat.completions.create(model="travel_planning", messages=TASK)
            script.release.set()
    assert limited.value.code == "concurrency_limit_exceeded"


def test_threads_and_runs_with_the_sdk(client: openai.OpenAI, model: ScriptedModelServer) -> None:
    threads = client.beta.threads
    thread = threads.create(messages=THREAD_TASK)
    run = threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id="travel_planning", poll_interval_ms=50
    )
    assert run.status == "completed", run.last_error
    assert run.usage is not None and run.usage.total_tokens == 4 * sum(PER_CALL)
    messages = threads.messages.list(thread_id=thread.id)
    assert [(m.role, (m.metadata or {}).get("agent")) for m in messages.data] == [
        ("assistant", "travel_summary_agent"),
        ("assistant", "language_agent"),
        ("assistant", "local_agent"),
        ("assistant", "planner_agent"),
        ("user", None),
    ]
    newest = messages.data[0]
    assert newest.content[0].type == "text" and newest.content[0].text.value == FINAL
    assert newest.assistant_id == "travel_planning" and newest.run_id == run.id

    # the thread keeps the team's state: the next run sees the first conversation
    threads.messages.create(thread_id=thread.id, role="user", content="Make it 5 days.")
    before = len(model.requests)
    second = threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id="travel_planning", poll_interval_ms=50
    )
    assert second.status == "completed"
    seen = " | ".join(str(m.get("content")) for m in model.requests[before]["messages"])
    assert "Plan a 3 day trip" in seen and "Make it 5 days." in seen and "Visit Asan market" in seen
    assert len(threads.messages.list(thread_id=thread.id, limit=100).data) == 10


def test_cancel_a_run_with_the_sdk(tmp_path: Path) -> None:
    script = GatedScript("local_agent")
    with ScriptedModelServer(script) as model:
        config = GatewayConfig(db_path=tmp_path / "db.sqlite3", base_url=model.base_url, model=model.model)
        with serve(create_app(config)) as url, gateway_client(url) as sdk:
            threads = sdk.beta.threads
            thread = threads.create(messages=THREAD_TASK)
            run = threads.runs.create(thread.id, assistant_id="travel_planning")
            assert script.reached.wait(20)
            cancelling = threads.runs.cancel(run.id, thread_id=thread.id)
            assert cancelling.status in ("cancelling", "cancelled")
            script.release.set()
            final = threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=50)
            kept = threads.messages.list(thread_id=thread.id, order="asc").data
    assert final.status == "cancelled" and final.cancelled_at is not None
    assert [(m.metadata or {}).get("agent") for m in kept] == [None, "planner_agent"]


def test_poll_hint_header(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create(messages=THREAD_TASK)
    run = client.beta.threads.runs.create(thread.id, assistant_id="travel_planning")
    raw = client.beta.threads.runs.with_raw_response.retrieve(run.id, thread_id=thread.id)
    assert raw.headers["openai-poll-after-ms"] == "200"
    # without poll_interval_ms the SDK's poll helper follows that header
    assert client.beta.threads.runs.poll(run.id, thread_id=thread.id).status == "completed"
