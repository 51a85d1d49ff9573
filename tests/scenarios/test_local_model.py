"""The shipped scenarios end to end on the real embedded server and its packaged model."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from scenarios import RunResult, load_scenario
from teams import ToolCall, ToolResult

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _embedded_server(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("xllamacpp", reason="the embedded server needs `pip install -e .[local]`")
    monkeypatch.delenv("LLM_BASE_URL", raising=False)
    monkeypatch.delenv("LLM_MODEL", raising=False)


async def test_time_assistant_answers_with_the_mcp_tool_time_on_the_local_model() -> None:
    async with load_scenario("time_assistant") as scenario:
        assert scenario.endpoints["default"].model.startswith("qwen2.5-coder-1.5b")
        events = [item async for item in scenario.run_stream()]
    calls = [e for e in events if isinstance(e, ToolCall)]
    outputs = [e for e in events if isinstance(e, ToolResult)]
    result = events[-1]
    assert isinstance(result, RunResult)
    assert calls[0].name == "get_current_time"
    assert json.loads(calls[0].arguments) == {"timezone": "Asia/Seoul"}
    moment = dt.datetime.fromisoformat(json.loads(outputs[0].content)["datetime"])
    hour12 = moment.hour % 12 or 12
    stated = {f"{moment.hour:02d}:{moment.minute:02d}", f"{hour12}:{moment.minute:02d}"}
    assert any(re.search(rf"(?<!\d){s}(?!\d)", result.final_text) for s in stated), result.final_text


async def test_travel_planning_ends_with_the_summary_agents_plan_on_the_local_model() -> None:
    async with load_scenario("travel_planning") as scenario:
        result = await scenario.run()
    assert [m.source for m in result.messages] == [
        "user",
        "planner_agent",
        "local_agent",
        "language_agent",
        "travel_summary_agent",
    ]
    assert result.final_source == "travel_summary_agent"
    assert len(result.final_text.split()) >= 80, result.final_text
    assert "Day 1" in result.final_text or "day 1" in result.final_text.lower(), result.final_text
