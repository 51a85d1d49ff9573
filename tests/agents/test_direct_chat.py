"""Our model client sends the very request AutoGen's stock client sends, minus the SDK's CPU.

Each case makes the same `create` / `create_stream` call through AutoGen's own
OpenAIChatCompletionClient and through ours, against the scripted server, and compares the
JSON bodies the server received.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from autogen_core import FunctionCall
from autogen_core.models import (
    AssistantMessage,
    CreateResult,
    FunctionExecutionResult,
    FunctionExecutionResultMessage,
    LLMMessage,
    ModelInfo,
    SystemMessage,
    UserMessage,
)
from autogen_core.tools import FunctionTool
from autogen_ext.models.openai import OpenAIChatCompletionClient

from agents import ResolvedModel, build_model_client
from agents.spec import ModelSpec
from serving.testing import Reply, ScriptedModelServer

INFO = ModelInfo(
    vision=False,
    function_calling=True,
    json_output=True,
    family="unknown",
    structured_output=False,
    multiple_system_messages=True,
)


def days_until(city: str, month: int) -> str:
    """Days until the trip.

    Args:
        city: where to
        month: month of travel, 1-12
    """
    return f"{city}: {month}"


TOOL = FunctionTool(days_until, description="Days until the trip.")
CONVERSATION: list[LLMMessage] = [
    SystemMessage(content="You plan trips."),
    UserMessage(content="Plan 3 days in Nepal.", source="user"),
    AssistantMessage(
        content=[FunctionCall(id="call_1", name="days_until", arguments='{"city": "Kathmandu", "month": 5}')],
        source="planner",
    ),
    FunctionExecutionResultMessage(
        content=[
            FunctionExecutionResult(
                content="Kathmandu: 5", call_id="call_1", name="days_until", is_error=False
            )
        ]
    ),
    AssistantMessage(content="Day 1: Kathmandu.", source="planner", thought="start in the capital"),
    UserMessage(content="Make it shorter.", source="user"),
]
CASES: dict[str, dict[str, Any]] = {
    "text": {"messages": CONVERSATION[:2]},
    "tools and results": {"messages": CONVERSATION, "tools": [TOOL]},
    "json mode and extra args": {
        "messages": CONVERSATION[:2],
        "json_output": True,
        "extra_create_args": {"seed": 7, "max_tokens": 64, "extra_body": {"top_k": 20}},
    },
}


def _clients(server: ScriptedModelServer, **options: Any) -> tuple[OpenAIChatCompletionClient, Any]:
    stock = OpenAIChatCompletionClient(
        model=server.model, base_url=server.base_url, api_key="sk-test", model_info=INFO, **options
    )
    resolved = ResolvedModel("default", server.base_url, server.model, "sk-test", INFO, "shared_prefix")
    spec = ModelSpec.model_validate({"base_url": server.base_url, "model": server.model, "options": options})
    return stock, build_model_client(resolved, spec)


@pytest.fixture
def server() -> Iterator[ScriptedModelServer]:
    """Two replies: one for AutoGen's stock client, one for ours."""
    with ScriptedModelServer([Reply.text("Day 1: Kathmandu.")] * 2, api_key="sk-test") as running:
        yield running


@pytest.mark.parametrize("case", CASES)
async def test_create_sends_the_stock_clients_body(server: ScriptedModelServer, case: str) -> None:
    stock, ours = _clients(server, temperature=0.3)
    try:
        expected = await stock.create(**CASES[case])
        got = await ours.create(**CASES[case])
    finally:
        await stock.close()
        await ours.close()
    server.assert_complete()
    assert server.requests[1] == server.requests[0]
    assert (got.content, got.finish_reason, got.usage) == (
        expected.content,
        expected.finish_reason,
        expected.usage,
    )


async def test_create_stream_sends_the_stock_clients_body(server: ScriptedModelServer) -> None:
    stock, ours = _clients(server)
    try:
        expected = [
            item async for item in stock.create_stream(CONVERSATION, tools=[TOOL], include_usage=True)
        ]
        got = [item async for item in ours.create_stream(CONVERSATION, tools=[TOOL])]
    finally:
        await stock.close()
        await ours.close()
    server.assert_complete()
    assert server.requests[1] == server.requests[0]
    assert server.requests[1]["stream_options"] == {"include_usage": True}
    assert "".join(i for i in got if isinstance(i, str)) == "Day 1: Kathmandu."
    assert isinstance(got[-1], CreateResult) and isinstance(expected[-1], CreateResult)
    assert got[-1].usage == expected[-1].usage


async def test_a_wrong_key_is_the_sdks_authentication_error(server: ScriptedModelServer) -> None:
    resolved = ResolvedModel("default", server.base_url, server.model, "sk-wrong", INFO, "shared_prefix")
    client = build_model_client(resolved, ModelSpec(base_url=server.base_url, model=server.model))
    try:
        with pytest.raises(openai.AuthenticationError, match="invalid api key"):
            await client.create(CONVERSATION[:2])
    finally:
        await client.close()
    assert server.requests == []


async def test_an_unreachable_server_is_the_sdks_connection_error() -> None:
    url = "http://127.0.0.1:9/v1"
    resolved = ResolvedModel("default", url, "m", "k", INFO, "shared_prefix")
    client = build_model_client(resolved, ModelSpec(base_url=url, model="m", max_retries=0))
    try:
        with pytest.raises(openai.APIConnectionError):
            await client.create(CONVERSATION[:2])
    finally:
        await client.close()


@pytest.mark.parametrize("retries", [0, 1])
async def test_a_timeout_is_the_sdks_timeout_error_after_the_sdks_attempts(retries: int) -> None:
    with ScriptedModelServer([Reply.text("late")] * (1 + retries), latency=1.0) as slow:
        resolved = ResolvedModel("default", slow.base_url, slow.model, "k", INFO, "shared_prefix")
        spec = ModelSpec(base_url=slow.base_url, model=slow.model, timeout=0.2, max_retries=retries)
        client = build_model_client(resolved, spec)
        try:
            with pytest.raises(openai.APITimeoutError):
                await client.create(CONVERSATION[:2])
        finally:
            await client.close()
        await asyncio.sleep(1.5)  # the server records a request once its 1 s latency is over
        attempts = len(slow.requests)
    assert attempts == 1 + retries  # as many as the SDK alone would make


async def test_a_proxy_from_the_environment_carries_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """Looked up once per client (not per call in a thread), the proxy is still the one used."""
    from agents._direct_chat import DirectChatOpenAI

    with ScriptedModelServer([Reply.text("via the proxy")]) as proxy:
        for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy.base_url.removesuffix("/v1"))
        # a host that does not resolve: only the proxy can answer
        client = DirectChatOpenAI(base_url="http://model.invalid/v1", api_key="k", max_retries=0, timeout=30)

        async def no_fallback(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("the direct call failed and fell back to the SDK")

        monkeypatch.setattr(client, "post", no_fallback)
        try:
            completion = await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}]
            )
        finally:
            await client.close()
        seen = len(proxy.requests)
    assert completion.choices[0].message.content == "via the proxy"
    assert seen == 1
