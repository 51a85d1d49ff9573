"""/v1/models and /v1/chat/completions over ASGITransport with a fake runner."""

from __future__ import annotations

import json
from typing import Any

import httpx

from teams import Turn

from ._fakes import DOWN_URL, FakeRunner
from .conftest import AppClient

CHAT = "/v1/chat/completions"


def sse_payloads(text: str) -> list[Any]:
    out: list[Any] = []
    for block in text.split("\n\n"):
        if block.startswith("data: "):
            data = block[len("data: ") :]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "code"}
    if code is not None:
        assert error["code"] == code
    return dict(error)


async def test_models_lists_every_scenario_with_its_description(app_client: AppClient) -> None:
    async with app_client() as client:
        body = (await client.get("/v1/models")).json()
        one = (await client.get("/v1/models/echo")).json()
        missing = await client.get("/v1/models/nope")
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["echo", "hang", "gated", "down"]
    assert body["data"][0]["description"] == "Echoes the task through two agents."
    assert one["id"] == "echo" and one["default_task"] == "Say hi."
    assert_error(missing, 404, "model_not_found")


async def test_completion_answers_with_the_final_message_and_summed_usage(
    app_client: AppClient, fake: FakeRunner
) -> None:
    messages = [
        {"role": "system", "content": "ignored: the agents have their own"},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": [{"type": "text", "text": "And 3+3?"}]},
    ]
    async with app_client() as client:
        response = await client.post(CHAT, json={"model": "echo", "messages": messages})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "echo"
    choice = body["choices"][0]
    assert choice["message"]["content"] == "Answer to And 3+3? (history 2)"  # TERMINATE removed
    assert choice["message"]["role"] == "assistant"
    assert choice["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 37, "completion_tokens": 16, "total_tokens": 53}
    ((name, request),) = fake.requests
    assert name == "echo"
    assert request.task == "And 3+3?"
    assert list(request.history) == [Turn("user", "What is 2+2?"), Turn("assistant", "4")]


async def test_stream_sends_inner_turns_then_answer_then_usage_then_done(app_client: AppClient) -> None:
    payload = {
        "model": "echo",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    async with app_client() as client:
        response = await client.post(CHAT, json=payload)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_payloads(response.text)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    kinds = []
    for chunk in chunks[1:]:
        if chunk["choices"] == []:
            kinds.append("usage")
            continue
        delta = chunk["choices"][0]["delta"]
        if "reasoning_content" in delta:
            kinds.append("reasoning")
        elif delta.get("content"):
            kinds.append("content")
        elif chunk["choices"][0]["finish_reason"]:
            kinds.append("finish")
    # every inner turn before the answer; usage last, after the finish chunk
    first_content = kinds.index("content")
    assert set(kinds[:first_content]) == {"reasoning"}
    assert set(kinds[first_content : kinds.index("finish")]) == {"content"}
    assert kinds[-2:] == ["finish", "usage"]
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content", "") for c in chunks if c["choices"])
    assert reasoning.startswith("[writer] Draft: hi\n\n")
    assert '[critic] calls word_count({"text": "x"})' in reasoning
    assert "[critic] result of word_count: 2 words" in reasoning
    speakers = [
        c.get("agent") for c in chunks if c["choices"] and "reasoning_content" in c["choices"][0]["delta"]
    ]
    assert speakers[0] == "writer" and speakers[-1] == "critic"
    answer = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert answer == "Answer to hi (history 0)"
    assert chunks[-1]["usage"]["total_tokens"] == 53


async def test_stream_without_include_usage_has_no_usage_chunk(app_client: AppClient) -> None:
    payload = {"model": "echo", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    async with app_client() as client:
        events = sse_payloads((await client.post(CHAT, json=payload)).text)
    assert events[-1] == "[DONE]"
    assert all(c["choices"] for c in events[:-1])


async def test_bad_requests_use_the_openai_error_shape(app_client: AppClient) -> None:
    async with app_client(max_messages=3, max_body_bytes=2000) as client:
        missing_messages = await client.post(CHAT, json={"model": "echo"})
        unknown_field = await client.post(
            CHAT, json={"model": "echo", "messages": [{"role": "user", "content": "x"}], "mcp_servers": {}}
        )
        not_user_last = await client.post(
            CHAT, json={"model": "echo", "messages": [{"role": "assistant", "content": "x"}]}
        )
        with_tools = await client.post(
            CHAT,
            json={
                "model": "echo",
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "function", "function": {"name": "rm", "parameters": {}}}],
            },
        )
        too_many = await client.post(
            CHAT, json={"model": "echo", "messages": [{"role": "user", "content": "x"}] * 4}
        )
        too_big = await client.post(
            CHAT, json={"model": "echo", "messages": [{"role": "user", "content": "x" * 5000}]}
        )
        not_json = await client.post(CHAT, content=b"{nope", headers={"content-type": "application/json"})
        unknown_model = await client.post(
            CHAT, json={"model": "../../etc/passwd", "messages": [{"role": "user", "content": "x"}]}
        )
    assert "messages" in assert_error(missing_messages, 422)["message"]
    assert "mcp_servers" in assert_error(unknown_field, 422)["message"]
    assert_error(not_user_last, 400, "invalid_messages")
    assert "defined by the scenario" in assert_error(with_tools, 400, "tools_not_supported")["message"]
    assert_error(too_many, 400, "too_many_messages")
    assert_error(too_big, 413, "request_too_large")
    assert_error(not_json, 422)
    assert_error(unknown_model, 404, "model_not_found")


async def test_model_server_down_is_502_naming_the_url(app_client: AppClient) -> None:
    message = {"model": "down", "messages": [{"role": "user", "content": "x"}]}
    async with app_client() as client:
        plain = await client.post(CHAT, json=message)
        streamed = await client.post(CHAT, json={**message, "stream": True})
    assert DOWN_URL in assert_error(plain, 502, "model_server_unavailable")["message"]
    assert DOWN_URL in assert_error(streamed, 502, "model_server_unavailable")["message"]


async def test_usage_is_recorded_per_user_and_scenario(app_client: AppClient) -> None:
    message = {"model": "echo", "messages": [{"role": "user", "content": "x"}]}
    async with app_client() as client:
        for user in ("alice", "alice", "bob"):
            response = await client.post(CHAT, json=message, headers={"x-user-id": user})
            assert response.status_code == 200
        await client.post(CHAT, json={**message, "user": "carol"})
        everyone = (await client.get("/v1/usage")).json()["data"]
        alice = (await client.get("/v1/usage", params={"user": "alice"})).json()["data"]
        bad_user = await client.post(CHAT, json=message, headers={"x-user-id": "x" * 200})
    assert [(r["user"], r["scenario"], r["runs"], r["total_tokens"]) for r in everyone] == [
        ("alice", "echo", 2, 106),
        ("bob", "echo", 1, 53),
        ("carol", "echo", 1, 53),
    ]
    assert alice == [everyone[0]]
    assert_error(bad_user, 400, "invalid_user_id")
