"""One real mcp-server-time session per declared server, shared, restarted after a crash."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest

from mcp_servers import McpSessionPool, McpStartError, StdioServerSpec

TIME = StdioServerSpec(
    type="stdio", command="python", args=["-m", "mcp_server_time", "--local-timezone", "Asia/Seoul"]
)


def _time_servers() -> list[int]:
    """Pids of mcp_server_time processes that are children of this test process."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if b"mcp_server_time" in cmdline and ppid == os.getpid():
            found.append(int(proc.name))
    return found


async def test_one_process_per_server_shared_and_gone_after_close() -> None:
    pool = McpSessionPool({"time": TIME})
    await pool.start()
    try:
        assert len(_time_servers()) == 1
        names = [t["name"] for t in await pool["time"].list_tools()]
        assert names == ["get_current_time", "convert_time"]
        first = await pool["time"].call_tool("get_current_time", {"timezone": "Asia/Seoul"})
        second = await pool["time"].call_tool(
            "convert_time",
            {"source_timezone": "Asia/Seoul", "time": "09:00", "target_timezone": "Europe/Paris"},
        )
        assert json.loads(first.to_text())["timezone"] == "Asia/Seoul"
        assert json.loads(second.to_text())["target"]["timezone"] == "Europe/Paris"
        assert len(_time_servers()) == 1
    finally:
        await pool.close()
    assert _time_servers() == []


async def test_a_crashed_server_is_restarted_on_next_use() -> None:
    pool = McpSessionPool({"time": TIME})
    await pool.start()
    try:
        [pid] = _time_servers()
        os.kill(pid, signal.SIGKILL)
        result = await pool["time"].call_tool("get_current_time", {"timezone": "Asia/Tokyo"})
        assert not result.is_error, result.to_text()
        assert json.loads(result.to_text())["timezone"] == "Asia/Tokyo"
        assert pool["time"].restarts == 1
        assert len(_time_servers()) == 1 and _time_servers() != [pid]
    finally:
        await pool.close()


async def test_a_tool_error_is_a_result_not_an_exception() -> None:
    pool = McpSessionPool({"time": TIME})
    await pool.start()
    try:
        result = await pool["time"].call_tool("get_current_time", {"timezone": "South Korea"})
    finally:
        await pool.close()
    assert result.is_error
    assert "Invalid timezone" in result.to_text()


async def test_a_server_that_exits_at_start_is_named() -> None:
    pool = McpSessionPool(
        {"broken": StdioServerSpec(type="stdio", command=sys.executable, args=["-c", "pass"])}
    )
    with pytest.raises(McpStartError) as info:
        await pool.start()
    assert str(info.value).startswith(f"MCP server 'broken': could not start `{sys.executable} -c pass` (")
