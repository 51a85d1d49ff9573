"""Scenario runs against the scripted model server: what a user sees happen."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import teams._run
from scenarios import RunResult, load_scenario
from serving.testing import Reply, ScriptedModelServer, message_text
from teams import TokenDelta, ToolCall, ToolResult

TRAVEL = ["planner_agent", "local_agent", "language_agent", "travel_summary_agent"]


def _system_text(body: dict[str, Any]) -> str:
    return " ".join(message_text(m) for m in body["messages"] if m["role"] == "system")


async def test_travel_planning_speaks_in_order_and_stops_at_the_summary() -> None:
    replies = [
        Reply.text("Day 1: Kathmandu. Day 2: Bhaktapur. Day 3: Nagarkot."),
        Reply.text("Try momo at Asan market on day 1."),
        Reply.text("Say namaste to greet people."),
        Reply.text("Final plan: Kathmandu, Bhaktapur, Nagarkot, momo, namaste.\nTERMINATE"),
    ]
    async with ScriptedModelServer(replies) as server:
        async with load_scenario("travel_planning", base_url=server.base_url, model=server.model) as scenario:
            result = await scenario.run()
    server.assert_complete()  # every scripted reply was used, no more
    assert [m.source for m in result.messages] == ["user", *TRAVEL]
    assert result.messages[0].text == "Plan a 3 day trip to Nepal."
    assert result.final_source == "travel_summary_agent"
    assert result.final_text == "Final plan: Kathmandu, Bhaktapur, Nagarkot, momo, namaste."
    assert "TERMINATE" in result.stop_reason
    assert set(result.usage) == set(TRAVEL)
    assert all(
        u.turns == 1 and u.prompt_tokens > 0 and u.completion_tokens > 0 for u in result.usage.values()
    )
    assert result.total.prompt_tokens == sum(u.prompt_tokens for u in result.usage.values())
    assert server.calls == 4


async def test_terminate_from_any_agent_stops_the_team() -> None:
    replies = [Reply.text("plan"), Reply.text("That is all. TERMINATE"), Reply.text("never sent")]
    async with ScriptedModelServer(replies) as server:
        async with load_scenario("travel_planning", base_url=server.base_url, model=server.model) as scenario:
            result = await scenario.run("Plan a day in Pokhara.")
    assert [m.source for m in result.messages] == ["user", "planner_agent", "local_agent"]
    assert result.stop_reason == "Text 'TERMINATE' mentioned"
    assert result.final_text == "That is all."
    assert server.calls == 2


async def test_safety_cap_stops_a_team_whose_model_never_terminates(
    write_scenario: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_scenario(
        """\
        name: chatty
        {MODELS}
        agents:
          - {name: a}
          - {name: b}
        team: {type: round_robin, participants: [a, b]}
        """
    )
    # a model that never stops: the one place where repeating the last reply is the point
    async with ScriptedModelServer([Reply.text("and another thing")], when_exhausted="repeat_last") as server:
        monkeypatch.setenv("TEST_BASE_URL", server.base_url)
        async with load_scenario(path) as scenario:
            result = await scenario.run("talk")
        assert result.stop_reason == "Maximum number of turns 30 reached."
        assert len(result.messages) == 31
        async with load_scenario(path, max_messages=5) as scenario:
            capped = await scenario.run("talk")
        assert server.calls == 30 + 5  # one model call per turn, none after the cap
    assert [m.source for m in capped.messages] == ["user", "a", "b", "a", "b", "a"]
    assert capped.stop_reason == "Maximum number of turns 5 reached."


async def test_wall_clock_timeout_stops_a_turn_that_never_ends(
    write_scenario: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(teams._run, "HARD_TIMEOUT_GRACE_S", 0.2)
    path = write_scenario(
        """\
        name: slow
        {MODELS}
        agents: [{name: a}]
        team: {type: round_robin, participants: [a], timeout: 0.5}
        """
    )
    async with ScriptedModelServer([Reply.text("late")], latency=30) as server:
        monkeypatch.setenv("TEST_BASE_URL", server.base_url)
        async with load_scenario(path) as scenario:
            result = await asyncio.wait_for(scenario.run("hurry"), timeout=20)
    assert result.stop_reason == "Timed out after 0.5 s with a turn still running."
    assert [m.source for m in result.messages] == ["user"]


async def test_selector_team_lets_the_model_choose_who_speaks() -> None:
    # planner_agent first: speaks_after leaves no one else (no model call for that pick)
    chosen = ["language_agent", "local_agent", "travel_summary_agent"]
    picks = iter(chosen)

    def script(body: dict[str, Any]) -> Reply:
        if "choose who speaks next" in _system_text(body) + message_text(body["messages"][-1]):
            return Reply.text(next(picks))
        summary = "You write the final travel plan" in json.dumps(body["messages"])
        return Reply.text("my part of the plan. TERMINATE" if summary else "my part")

    async with ScriptedModelServer(script) as server:
        async with load_scenario("travel_selector", base_url=server.base_url, model=server.model) as scenario:
            result = await scenario.run()
    assert [m.source for m in result.messages] == ["user", "planner_agent", *chosen]
    assert result.usage["selector"].prompt_tokens > 0
    assert result.usage["selector"].turns == 0


def _time_script(body: dict[str, Any]) -> Reply:
    last = body["messages"][-1]
    if last["role"] == "tool":
        reported = json.loads(message_text(last))
        return Reply.text(f"It is {reported['datetime']} in Seoul. TERMINATE")
    return Reply.tool_call("get_current_time", {"timezone": "Asia/Seoul"})


async def test_time_assistant_answers_with_the_real_mcp_tool_result() -> None:
    async with ScriptedModelServer(_time_script) as server:
        async with load_scenario("time_assistant", base_url=server.base_url, model=server.model) as scenario:
            events = [item async for item in scenario.run_stream()]
    result = events[-1]
    assert isinstance(result, RunResult)
    calls = [e for e in events if isinstance(e, ToolCall)]
    outputs = [e for e in events if isinstance(e, ToolResult)]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("get_current_time", {"timezone": "Asia/Seoul"})
    ]
    tool_time = json.loads(outputs[0].content)["datetime"]
    seoul_now = dt.datetime.now(ZoneInfo("Asia/Seoul"))
    assert abs(dt.datetime.fromisoformat(tool_time) - seoul_now) < dt.timedelta(minutes=2)
    assert result.final_text == f"It is {tool_time} in Seoul."
    tools_offered = {t["function"]["name"] for t in server.requests[0]["tools"]}
    assert tools_offered == {"get_current_time", "convert_time"}
    assert any(isinstance(e, TokenDelta) for e in events)


async def test_a_tool_the_model_invents_reaches_it_as_an_error_not_a_crash() -> None:
    replies = [
        Reply.tool_call("get_weather", {"city": "Seoul"}),
        Reply.text("Sorry, I cannot check that. TERMINATE"),
    ]
    async with ScriptedModelServer(replies) as server:
        async with load_scenario("time_assistant", base_url=server.base_url, model=server.model) as scenario:
            events = [item async for item in scenario.run_stream()]
    server.assert_complete()  # every scripted reply was used, no more
    outputs = [e for e in events if isinstance(e, ToolResult)]
    assert outputs[0].is_error
    assert "get_weather" in outputs[0].content
    tool_message = server.requests[1]["messages"][-1]
    assert tool_message["role"] == "tool" and "not found" in message_text(tool_message)
    assert isinstance(events[-1], RunResult) and events[-1].final_text == "Sorry, I cannot check that."


async def test_malformed_tool_arguments_reach_the_model_as_an_error() -> None:
    replies = [
        Reply.tool_call("get_current_time", '{"timezone": "Asia/Seoul"'),
        Reply.text("Oops. TERMINATE"),
    ]
    async with ScriptedModelServer(replies) as server:
        async with load_scenario("time_assistant", base_url=server.base_url, model=server.model) as scenario:
            events = [item async for item in scenario.run_stream()]
    server.assert_complete()  # every scripted reply was used, no more
    outputs = [e for e in events if isinstance(e, ToolResult)]
    assert outputs[0].is_error
    assert isinstance(events[-1], RunResult) and events[-1].final_text == "Oops."


async def test_python_tools_are_called_with_schemas_from_their_docstrings(
    write_scenario: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_scenario(
        """\
        name: maths
        {MODELS}
        agents:
          - name: calc
            tools: [calculator]
            reflect_on_tool_use: true
        """
    )

    def script(body: dict[str, Any]) -> Reply:
        last = body["messages"][-1]
        if last["role"] == "tool":
            return Reply.text(f"The answer is {message_text(last)}.")
        return Reply.tool_call("calculator", {"expression": "3 * (120 + 45) / 2"})

    async with ScriptedModelServer(script) as server:
        monkeypatch.setenv("TEST_BASE_URL", server.base_url)
        async with load_scenario(path) as scenario:
            result = await scenario.run("What is 3 * (120 + 45) / 2?")
    assert result.final_text == "The answer is 247.5."
    schema = server.requests[0]["tools"][0]["function"]
    assert schema["parameters"]["properties"]["expression"]["description"] == (
        "Numbers with + - * / // % ** and parentheses."
    )


async def test_a_thread_continues_from_saved_state() -> None:
    replies = [Reply.text("plan"), Reply.text("x"), Reply.text("y"), Reply.text("z")]
    again = [Reply.text("plan 5"), Reply.text("x5"), Reply.text("y5"), Reply.text("z5")]
    async with ScriptedModelServer(replies + again) as server:
        async with load_scenario("travel_planning", base_url=server.base_url, model=server.model) as scenario:
            one = await scenario.run("Plan Nepal.")
            await scenario.run("Now make it 5 days.", state=one.state)
        server.assert_complete()  # one call per agent in each run
    second_run_prompt = " ".join(message_text(m) for m in server.requests[4]["messages"])
    assert "Plan Nepal." in second_run_prompt and "Now make it 5 days." in second_run_prompt
