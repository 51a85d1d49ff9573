"""The scripted model server is strict, and injects each fault a real server can show."""

from __future__ import annotations

import time

import httpx
import openai
import pytest
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

from serving.testing import Fault, Reply, ScriptedModelServer, ScriptViolation

ASK: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]


def _client(server: ScriptedModelServer, **kw: object) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0, **kw)  # type: ignore[arg-type]


async def test_an_unexpected_extra_call_is_a_500_and_fails_the_test_at_exit() -> None:
    server = ScriptedModelServer([Reply.text("one")])
    with pytest.raises(ScriptViolation) as info:
        async with server:
            async with _client(server) as client:
                first = await client.chat.completions.create(model=server.model, messages=ASK)
                assert first.choices[0].message.content == "one"
                with pytest.raises(openai.InternalServerError) as extra:
                    await client.chat.completions.create(
                        model=server.model, messages=[{"role": "user", "content": "again?"}]
                    )
    message = "unexpected model call #2: all 1 scripted steps were used (its last message: 'again?')"
    assert extra.value.status_code == 500
    assert extra.value.body == {"message": f"scripted model server: {message}", "type": "server_error"}
    assert str(info.value) == f"scripted model server: {message}"
    assert server.violations == [message]


async def test_assert_complete_names_unused_steps() -> None:
    async with ScriptedModelServer([Reply.text("a"), Reply.text("b")]) as server:
        async with _client(server) as client:
            await client.chat.completions.create(model=server.model, messages=ASK)
        with pytest.raises(ScriptViolation) as info:
            server.assert_complete()
        assert str(info.value) == (
            "scripted model server: 1 of 2 scripted steps were not used (the first: "
            "Reply(content='b', tool_calls=(), prompt_tokens=None, completion_tokens=None))"
        )
        async with _client(server) as client:
            await client.chat.completions.create(model=server.model, messages=ASK)
        server.assert_complete()


async def test_repeat_last_is_explicit() -> None:
    async with ScriptedModelServer([Reply.text("again")], when_exhausted="repeat_last") as server:
        async with _client(server) as client:
            for _ in range(3):
                reply = await client.chat.completions.create(model=server.model, messages=ASK)
                assert reply.choices[0].message.content == "again"
        server.assert_complete()


async def test_a_raising_script_callable_is_a_violation() -> None:
    def script(body: dict[str, object]) -> Reply:
        raise KeyError("no reply for this")

    server = ScriptedModelServer(script)
    with pytest.raises(ScriptViolation, match=r"the script raised on model call #1: KeyError\('no reply"):
        async with server:
            async with _client(server) as client:
                with pytest.raises(openai.InternalServerError):
                    await client.chat.completions.create(model=server.model, messages=ASK)


@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        (Fault.status(500), openai.InternalServerError, 500),
        (Fault.status(503, "overloaded"), openai.InternalServerError, 503),
        (Fault.rate_limited(retry_after=2), openai.RateLimitError, 429),
    ],
)
async def test_status_faults(fault: Fault, error: type[openai.APIStatusError], status: int) -> None:
    async with ScriptedModelServer([fault]) as server:
        async with _client(server) as client:
            with pytest.raises(error) as info:
                await client.chat.completions.create(model=server.model, messages=ASK)
    assert info.value.status_code == status
    assert info.value.body == {"message": fault.message, "type": info.value.body["type"], "code": status}  # type: ignore[index]
    if status == 429:
        assert info.value.response.headers["retry-after"] == "2"


async def test_a_status_fault_then_a_reply_is_recovered_by_the_sdks_retry() -> None:
    async with ScriptedModelServer([Fault.status(503), Reply.text("back")]) as server:
        async with AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=1) as client:
            reply = await client.chat.completions.create(model=server.model, messages=ASK)
        assert reply.choices[0].message.content == "back"
        server.assert_complete()


async def test_hang_never_answers_so_the_client_timeout_acts() -> None:
    async with ScriptedModelServer([Fault.hang()]) as server:
        async with _client(server, timeout=0.5) as client:
            started = time.monotonic()
            with pytest.raises(openai.APITimeoutError):
                await client.chat.completions.create(model=server.model, messages=ASK)
            assert time.monotonic() - started < 5
        server.assert_complete()


async def test_disconnect_mid_stream_breaks_the_sse_after_some_chunks() -> None:
    async with ScriptedModelServer([Fault.disconnect()]) as server:
        async with _client(server) as client:
            stream = await client.chat.completions.create(model=server.model, messages=ASK, stream=True)
            got = []
            with pytest.raises((httpx.RemoteProtocolError, openai.APIConnectionError)):
                async for chunk in stream:
                    got.append(chunk)
            assert got and got[0].choices[0].delta.role == "assistant"
        server.assert_complete()


async def test_disconnect_without_streaming_truncates_the_body() -> None:
    async with ScriptedModelServer([Fault.disconnect()]) as server:
        async with _client(server) as client:
            with pytest.raises(openai.APIConnectionError):
                await client.chat.completions.create(model=server.model, messages=ASK)


async def test_empty_reply_and_malformed_tool_arguments_go_out_as_scripted() -> None:
    script = [Reply.empty(), Reply.tool_call("get_time", "{not json"), Reply.tool_call("no_such_tool", {})]
    async with ScriptedModelServer(script) as server:
        async with _client(server) as client:
            replies = [await client.chat.completions.create(model=server.model, messages=ASK) for _ in script]
        server.assert_complete()
    assert replies[0].choices[0].message.content == ""
    assert replies[0].choices[0].message.tool_calls is None
    [bad] = replies[1].choices[0].message.tool_calls or []
    assert bad.function.arguments == "{not json"  # type: ignore[union-attr]
    [unknown] = replies[2].choices[0].message.tool_calls or []
    assert unknown.function.name == "no_such_tool"  # type: ignore[union-attr]
