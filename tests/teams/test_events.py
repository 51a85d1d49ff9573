"""The run vocabulary: every event survives JSON (a file, a pipe, a database row) unchanged."""

from __future__ import annotations

import json
import typing

from autogen_agentchat.messages import TextMessage

from teams import (
    Message,
    RunEvent,
    RunRequest,
    RunResult,
    SpeakerSelected,
    TokenDelta,
    ToolCall,
    ToolResult,
    Turn,
    Usage,
    event_from_json,
)

EVENTS: list[RunEvent] = [
    TokenDelta("planner", "Day 1: "),
    Message("user", "Plan Nepal."),
    Message("planner", "Day 1: Kathmandu. ✓", Usage(12, 5), raw=TextMessage(content="x", source="planner")),
    ToolCall("clock", "call_1", "get_current_time", '{"timezone": "Asia/Seoul"}', Usage(7, 3)),
    ToolCall("clock", "call_2", "convert_time", "{}"),
    ToolResult("clock", "call_1", "get_current_time", '{"datetime": "2026-01-01T09:00"}'),
    ToolResult("clock", "call_2", "convert_time", "Invalid timezone", is_error=True),
    SpeakerSelected("selector", ("planner", "local")),
    RunResult(
        messages=(Message("user", "Plan Nepal."), Message("planner", "Plan. TERMINATE", Usage(12, 5))),
        final_text="Plan.",
        final_source="planner",
        stop_reason="Text 'TERMINATE' mentioned",
        usage={"planner": Usage(12, 5, turns=1, seconds=0.25), "selector": Usage(3, 1, seconds=0.1)},
        elapsed_s=0.5,
        state={"type": "TeamState", "agent_states": {"planner": {"llm_messages": [1, 2.5, None, "ü"]}}},
    ),
]


def test_every_event_type_round_trips_through_json() -> None:
    assert {type(e) for e in EVENTS} == set(typing.get_args(RunEvent))
    for event in EVENTS:
        wire = json.loads(json.dumps(event.to_json()))
        back = event_from_json(wire)
        assert back == event and type(back) is type(event)
        assert wire["type"] == type(event).__name__
        assert "raw" not in wire


def test_the_raw_agentchat_object_is_kept_but_never_compared() -> None:
    raw = TextMessage(content="x", source="planner")
    with_raw = Message("planner", "x", raw=raw)
    assert with_raw.raw is raw and with_raw == Message("planner", "x")


def test_a_run_request_round_trips_through_json() -> None:
    request = RunRequest(
        "Now 5 days.",
        (Turn("user", "Plan Nepal."), Turn("assistant", "Plan.", "planner")),
        {"turns": 1},
        stream_tokens=False,
    )
    assert RunRequest.from_json(json.loads(json.dumps(request.to_json()))) == request


def test_usage_adds_per_agent_and_in_total() -> None:
    result = EVENTS[-1]
    assert isinstance(result, RunResult)
    assert Usage(1, 2, 1, 0.5) + Usage(10, 20, 2, 1.0) == Usage(11, 22, 3, 1.5)
    assert result.total == Usage(15, 6, turns=1, seconds=0.5)  # seconds: the run's wall time
    assert result.total.total_tokens == 21
