"""The Responses and Conversations APIs through the official openai SDK, against the gateway on
a real uvicorn with the real `scenarios` package and a scripted model server behind it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import Response, ResponseInputParam

from gateway import GatewayConfig, create_app
from gateway._db import connect
from serving.testing import Reply, ScriptedModelServer

from ._travel import AGENTS, FINAL, PER_CALL, GatedScript, reply_for
from .conftest import serve

TASK = "Plan a 3 day trip to Nepal."
TURNS = [("reasoning", a) for a in AGENTS]  # each agent's turn, the summary agent's too


def sdk(url: str, key: str = "unused", **headers: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=60, default_headers=headers or None
    )


def until(check: Callable[[], Any], within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while not (value := check()):
        assert time.monotonic() < deadline, f"{what}: not within {within} s"
        time.sleep(0.02)
    return value


def agents_of(response: Response) -> list[tuple[str, str | None]]:
    return [(item.type, (item.model_extra or {}).get("agent")) for item in response.output]


def seen_by(model: ScriptedModelServer, call: int) -> str:
    return " | ".join(str(m.get("content")) for m in model.requests[call]["messages"])


@pytest.fixture
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer(reply_for) as server:
        yield server


@pytest.fixture
def url(model: ScriptedModelServer, tmp_path: Path) -> Iterator[str]:
    config = GatewayConfig(db_path=tmp_path / "db.sqlite3", base_url=model.base_url, model=model.model)
    with serve(create_app(config)) as base:
        yield base


@pytest.fixture
def client(url: str) -> Iterator[openai.OpenAI]:
    with sdk(url) as c:
        yield c


@pytest.fixture
def gated(tmp_path: Path) -> Iterator[tuple[GatedScript, str]]:
    """A gateway whose local_agent model call waits for `script.release`."""
    script = GatedScript("local_agent")
    with ScriptedModelServer(script) as model:
        config = GatewayConfig(db_path=tmp_path / "db.sqlite3", base_url=model.base_url, model=model.model)
        with serve(create_app(config)) as base:
            yield script, base
            script.release.set()


def test_a_response_has_each_agents_turn_then_the_answer_and_the_usage_of_every_call(
    client: openai.OpenAI, model: ScriptedModelServer
) -> None:
    response = client.responses.create(model="travel_planning", input=TASK)
    assert response.status == "completed"
    assert response.id.startswith("resp_") and response.model == "travel_planning"
    assert agents_of(response) == [*TURNS, ("message", "travel_summary_agent")]
    assert response.output_text == FINAL  # the answer alone, without TERMINATE
    planner = response.output[0]
    assert planner.type == "reasoning" and planner.content is not None
    assert planner.content[0].text == "Day 1: Kathmandu. Day 2: Bhaktapur. Day 3: Pokhara."
    assert len(model.requests) == 4
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (4 * PER_CALL[0], 4 * PER_CALL[1])
    assert client.responses.retrieve(response.id).output_text == FINAL


def test_tool_calls_and_results_are_function_call_items(tmp_path: Path) -> None:
    script = [
        Reply.tool_call("get_current_time", {"timezone": "Asia/Seoul"}),
        Reply.text("It is noon in Seoul. TERMINATE"),
    ]
    with ScriptedModelServer(script) as model:
        config = GatewayConfig(db_path=tmp_path / "db.sqlite3", base_url=model.base_url, model=model.model)
        with serve(create_app(config)) as url, sdk(url) as client:
            response = client.responses.create(model="time_assistant", input="What time is it in Seoul?")
    call, result, turn, answer = response.output
    assert turn.type == "reasoning" and turn.content is not None
    assert turn.content[0].text == "It is noon in Seoul. TERMINATE"  # the turn as said
    assert call.type == "function_call" and call.name == "get_current_time"
    assert json.loads(call.arguments) == {"timezone": "Asia/Seoul"}
    assert result.type == "function_call_output" and result.call_id == call.call_id
    assert isinstance(result.output, str) and json.loads(result.output)["timezone"] == "Asia/Seoul"
    assert answer.type == "message" and response.output_text == "It is noon in Seoul."
    assert (call.model_extra or {})["agent"] == "time_assistant"


def test_a_foreground_response_whose_client_gives_up_is_cancelled(
    gated: tuple[GatedScript, str], tmp_path: Path
) -> None:
    script, url = gated
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{url}/v1/responses", json={"model": "travel_planning", "input": TASK}, timeout=3)
    assert script.reached.is_set()

    async def statuses() -> list[str]:
        db = await connect(f"sqlite:///{tmp_path / 'db.sqlite3'}")
        try:
            return [r["status"] for r in (await db.execute("SELECT status FROM runs")).rows]
        finally:
            await db.close()

    until(lambda: asyncio.run(statuses()) == ["cancelled"], 10, "cancelled when the client went away")


def test_input_messages_are_history_and_instructions_reach_the_team(
    client: openai.OpenAI, model: ScriptedModelServer
) -> None:
    conversation: ResponseInputParam = [
        {"role": "user", "content": "I like mountains."},
        {"role": "assistant", "content": "Noted: mountains."},
        {"role": "user", "content": [{"type": "input_text", "text": TASK}]},
    ]
    response = client.responses.create(
        model="travel_planning", input=conversation, instructions="Answer in English only."
    )
    assert response.output_text == FINAL and response.instructions == "Answer in English only."
    first = seen_by(model, 0)
    assert first.index("Answer in English only.") < first.index("I like mountains.")
    assert first.index("Noted: mountains.") < first.index(TASK)
    inputs = client.responses.input_items.list(response.id, order="asc")
    assert [(i.type, getattr(i, "role", None)) for i in inputs.data] == [
        ("message", "user"),
        ("message", "assistant"),
        ("message", "user"),
    ]


def test_the_stream_sends_the_responses_event_sequence(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="travel_planning", input=TASK, stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    kinds = [e.type for e in events]
    inner = [
        "response.output_item.added",
        "response.content_part.added",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    deltas = kinds.count("response.output_text.delta")
    assert deltas >= 2  # the answer arrives in pieces
    assert kinds == [
        "response.created",
        "response.in_progress",
        *inner * 4,
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * deltas,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    added = [e.item for e in events if e.type == "response.output_item.added"]
    assert [(i.model_extra or {}).get("agent") for i in added] == [*AGENTS, "travel_summary_agent"]
    answer = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert answer == FINAL
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.output_text == FINAL
    assert completed.response.usage is not None and completed.response.usage.total_tokens == 4 * sum(PER_CALL)

    # the SDK's stream helper accumulates the same events into the final Response
    with client.responses.stream(model="travel_planning", input=TASK) as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text == final.output_text == FINAL
    assert agents_of(final)[-1] == ("message", "travel_summary_agent")


def test_a_conversation_continues_the_team_with_its_saved_state(
    client: openai.OpenAI, model: ScriptedModelServer
) -> None:
    conversation = client.conversations.create(metadata={"topic": "nepal"})
    assert conversation.id.startswith("conv_")
    first = client.responses.create(model="travel_planning", input=TASK, conversation=conversation.id)
    assert first.conversation is not None and first.conversation.id == conversation.id
    before = len(model.requests)
    second = client.responses.create(
        model="travel_planning", input="Make it 5 days.", conversation=conversation.id
    )
    assert second.output_text == FINAL
    seen = seen_by(model, before)
    assert TASK in seen and "Visit Asan market" in seen and "Make it 5 days." in seen

    items = list(client.conversations.items.list(conversation.id, order="asc"))
    assert [(i.type, i.role, (i.model_extra or {}).get("agent")) for i in items] == [  # type: ignore[union-attr]
        *[("message", "user", None), *(("message", "assistant", a) for a in AGENTS)] * 2
    ]
    last = items[-1]
    assert last.type == "message" and last.content[0].text == FINAL  # type: ignore[union-attr]
    assert (last.model_extra or {})["response_id"] == second.id
    # the answer's conversation item is the response's answer item
    assert last.id == second.output[-1].id
    assert client.conversations.retrieve(conversation.id).metadata == {"topic": "nepal"}
    newest = client.conversations.items.list(conversation.id, limit=2)
    assert [i.id for i in newest.data] == [items[-1].id, items[-2].id] and newest.has_more


def test_previous_response_id_chains_and_branches(client: openai.OpenAI, model: ScriptedModelServer) -> None:
    first = client.responses.create(model="travel_planning", input=TASK)
    before = len(model.requests)
    second = client.responses.create(
        model="travel_planning", input="Make it 5 days.", previous_response_id=first.id
    )
    assert second.previous_response_id == first.id and second.output_text == FINAL
    seen = seen_by(model, before)
    assert TASK in seen and "Visit Asan market" in seen and "Make it 5 days." in seen

    # from the first again: a branch that sees the first exchange and not the second
    before = len(model.requests)
    branch = client.responses.create(
        model="travel_planning", input="Make it a trek instead.", previous_response_id=first.id
    )
    assert branch.output_text == FINAL
    seen = seen_by(model, before)
    assert TASK in seen and "Visit Asan market" in seen and "Make it a trek instead." in seen
    assert "Make it 5 days." not in seen


def test_background_returns_queued_then_polls_to_completion(gated: tuple[GatedScript, str]) -> None:
    script, url = gated
    with sdk(url) as client:
        response = client.responses.create(model="travel_planning", input=TASK, background=True)
        assert response.status == "queued" and response.background is True
        assert script.reached.wait(30)  # running while nobody holds a connection
        running = client.responses.retrieve(response.id)
        assert running.status == "in_progress"
        assert agents_of(running) == [("reasoning", "planner_agent")]  # each turn as soon as it is said
        script.release.set()
        done = until(
            lambda: (r := client.responses.retrieve(response.id)).status == "completed" and r, 30, "completed"
        )
    assert done.output_text == FINAL and done.background is True
    assert agents_of(done)[-1] == ("message", "travel_summary_agent")


def test_cancel_a_background_response(gated: tuple[GatedScript, str]) -> None:
    script, url = gated
    with sdk(url) as client:
        response = client.responses.create(model="travel_planning", input=TASK, background=True)
        assert script.reached.wait(30)
        started = time.monotonic()
        cancelled = client.responses.cancel(response.id)
        took = time.monotonic() - started
        script.release.set()
        again = client.responses.retrieve(response.id)
        with pytest.raises(openai.BadRequestError) as twice:
            client.responses.cancel(response.id)
    assert cancelled.status == again.status == "cancelled", cancelled
    assert took < 5
    assert agents_of(again) == [("reasoning", "planner_agent")]  # what it said before the cancel is kept
    assert twice.value.code == "response_not_active"


def test_a_background_stream_resumes_after_a_sequence_number(gated: tuple[GatedScript, str]) -> None:
    script, url = gated
    with sdk(url) as client:
        stream = client.responses.create(model="travel_planning", input=TASK, background=True, stream=True)
        seen = []
        for event in stream:
            seen.append(event)
            if event.type == "response.in_progress":
                break
        assert script.reached.wait(30)  # the planner has spoken; the local guide is thinking
        stream.close()  # the connection drops
        response_id = seen[0].response.id  # type: ignore[union-attr]
        script.release.set()  # a background response runs on without its client
        resumed = list(
            client.responses.retrieve(response_id, stream=True, starting_after=seen[-1].sequence_number)
        )
        whole = list(client.responses.retrieve(response_id, stream=True))
    assert resumed[0].sequence_number == seen[-1].sequence_number + 1
    assert [e.model_dump() for e in seen + resumed] == [e.model_dump() for e in whole]
    assert resumed[-1].type == "response.completed" and resumed[-1].response.output_text == FINAL


def test_a_client_that_disconnects_cancels_a_foreground_stream_only(gated: tuple[GatedScript, str]) -> None:
    script, url = gated
    with sdk(url) as client:
        stream = client.responses.create(model="travel_planning", input=TASK, stream=True)
        response_id = next(iter(stream)).response.id  # type: ignore[union-attr]
        assert script.reached.wait(30)
        stream.close()
        until(
            lambda: client.responses.retrieve(response_id).status == "cancelled",
            10,
            "cancelled on disconnect",
        )


def test_errors_come_in_the_responses_error_shape(client: openai.OpenAI, tmp_path: Path) -> None:
    with pytest.raises(openai.NotFoundError) as no_model:
        client.responses.create(model="no_such_team", input=TASK)
    assert no_model.value.code == "model_not_found"
    assert no_model.value.body == {
        "message": "The model 'no_such_team' does not exist (no such scenario)",
        "type": "not_found_error",
        "code": "model_not_found",
        "param": "model",
    }
    with pytest.raises(openai.BadRequestError) as no_task:
        client.responses.create(model="travel_planning", input=[{"role": "assistant", "content": "no task"}])
    assert no_task.value.code == "invalid_input" and "role 'user'" in no_task.value.message
    with pytest.raises(openai.BadRequestError) as tools:
        client.responses.create(
            model="travel_planning",
            input=TASK,
            tools=[{"type": "function", "name": "f", "parameters": {}, "strict": True}],
        )
    assert tools.value.code == "tools_not_supported"
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.retrieve("resp_nope")
    assert missing.value.code == "response_not_found"
    with pytest.raises(openai.NotFoundError) as no_conversation:
        client.responses.create(model="travel_planning", input=TASK, conversation="conv_nope")
    assert no_conversation.value.code == "conversation_not_found"

    # a team that fails: the response says so, with the model server's address
    dead = "http://127.0.0.1:9/v1"  # port 9 (discard): nothing listens
    config = GatewayConfig(db_path=tmp_path / "down.sqlite3", base_url=dead, model="m")
    with serve(create_app(config)) as url, sdk(url) as down:
        failed = down.responses.create(model="travel_planning", input=TASK)
        streamed = list(down.responses.create(model="travel_planning", input=TASK, stream=True))
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.code == "server_error" and "127.0.0.1:9" in failed.error.message
    assert streamed[-1].type == "response.failed" and streamed[-1].response.error is not None


def test_another_keys_responses_and_conversations_do_not_exist(
    model: ScriptedModelServer, tmp_path: Path
) -> None:
    config = GatewayConfig(
        db_path=tmp_path / "db.sqlite3", keys=("sk-a", "sk-b"), base_url=model.base_url, model=model.model
    )
    with serve(create_app(config)) as url, sdk(url, "sk-a") as a, sdk(url, "sk-b") as b:
        conversation = a.conversations.create()
        response = a.responses.create(model="travel_planning", input=TASK, conversation=conversation.id)
        attempts: list[Callable[[], object]] = [
            lambda: b.responses.retrieve(response.id),
            lambda: b.responses.cancel(response.id),
            lambda: b.responses.delete(response.id),
            lambda: b.conversations.retrieve(conversation.id),
            lambda: b.conversations.items.list(conversation.id),
            lambda: b.conversations.delete(conversation.id),
            lambda: b.responses.create(model="travel_planning", input="x", conversation=conversation.id),
            lambda: b.responses.create(model="travel_planning", input="x", previous_response_id=response.id),
        ]
        codes = []
        for attempt in attempts:
            with pytest.raises(openai.NotFoundError) as hidden:
                attempt()
            codes.append(hidden.value.code)
        assert a.responses.retrieve(response.id).output_text == FINAL
    assert codes == ["response_not_found"] * 3 + ["conversation_not_found"] * 4 + ["response_not_found"]


def test_per_key_limit_user_usage_and_body_limit(tmp_path: Path) -> None:
    script = GatedScript("planner_agent")
    with ScriptedModelServer(script) as model:
        config = GatewayConfig(
            db_path=tmp_path / "db.sqlite3",
            base_url=model.base_url,
            model=model.model,
            max_concurrent_per_key=1,
            max_body_bytes=4096,
        )
        with serve(create_app(config)) as url, sdk(url, **{"x-user-id": "alice"}) as client:
            background = client.responses.create(model="travel_planning", input=TASK, background=True)
            assert script.reached.wait(30)
            with pytest.raises(openai.RateLimitError) as limited:
                client.responses.create(model="travel_planning", input=TASK)
            with pytest.raises(openai.RateLimitError):
                client.chat.completions.create(
                    model="travel_planning", messages=[{"role": "user", "content": TASK}]
                )
            script.release.set()
            until(lambda: client.responses.retrieve(background.id).status == "completed", 30, "completed")
            with pytest.raises(openai.APIStatusError) as too_big:
                client.responses.create(model="travel_planning", input="x" * 5000)
            usage = httpx.get(f"{url}/v1/usage").json()["data"]
    assert limited.value.code == "concurrency_limit_exceeded"
    assert too_big.value.status_code == 413 and too_big.value.code == "request_too_large"
    assert usage == [
        {
            "user": "alice",
            "scenario": "travel_planning",
            "runs": 1,
            "prompt_tokens": 4 * PER_CALL[0],
            "completion_tokens": 4 * PER_CALL[1],
            "total_tokens": 4 * sum(PER_CALL),
        }
    ]


def test_conversation_items_create_retrieve_and_delete(client: openai.OpenAI) -> None:
    conversation = client.conversations.create(items=[{"role": "user", "content": "I like mountains."}])
    added = client.conversations.items.create(
        conversation.id, items=[{"type": "message", "role": "assistant", "content": "Noted."}]
    )
    new_id = added.data[0].id
    assert new_id is not None
    item = client.conversations.items.retrieve(new_id, conversation_id=conversation.id)
    assert item.type == "message" and item.role == "assistant"
    listed = client.conversations.items.list(conversation.id, order="asc")
    assert [i.content[0].text for i in listed.data] == ["I like mountains.", "Noted."]  # type: ignore[union-attr,index]
    updated = client.conversations.update(conversation.id, metadata={"k": "v"})
    assert updated.metadata == {"k": "v"}
    deleted = client.conversations.delete(conversation.id)
    assert deleted.deleted and deleted.id == conversation.id
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conversation.id)
