from __future__ import annotations

import pytest
from autogen_core import CancellationToken

from tools import build_function_tool, builtin_tool_spec, calculator, days_between


def test_calculator_evaluates_arithmetic_and_refuses_code() -> None:
    assert calculator("3 * (120 + 45) / 2") == "247.5"
    with pytest.raises(ValueError, match="unsupported expression"):
        calculator("__import__('os')")


def test_days_between() -> None:
    assert days_between("2026-01-01", "2026-03-01") == 59


async def test_builtin_tool_schema_comes_from_signature_and_docstring() -> None:
    spec = builtin_tool_spec("days_between")
    assert spec is not None
    tool = build_function_tool("days_between", spec)
    params = tool.schema["parameters"]
    assert params["required"] == ["start", "end"]
    assert params["properties"]["start"]["description"] == "First date, YYYY-MM-DD."
    assert tool.schema.get("description") == "Count the days from one date to another."
    assert await tool.run_json({"start": "2026-11-01", "end": "2026-11-22"}, CancellationToken()) == 21
