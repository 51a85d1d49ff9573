"""How the shipped scenarios behave on the embedded local model, over repeated runs.

`python -m bench quality [--time-runs 20] [--travel-runs 3]`: the time assistant must answer
with the time the MCP tool returned; the travel team must end with one complete plan from
the summary agent. Prints a table per scenario and writes bench/results/quality.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import re
import statistics
import time
from typing import Any

from bench._report import print_table, write_json
from scenarios import RunResult, load_scenario
from serving import open_endpoint
from teams import ToolCall, ToolResult


def _time_mentions(answer: str, iso: str) -> bool:
    """Whether the answer states the tool's time, in 24- or 12-hour form."""
    moment = dt.datetime.fromisoformat(iso)
    hour12 = moment.hour % 12 or 12
    forms = {
        f"{moment.hour:02d}:{moment.minute:02d}",
        f"{moment.hour}:{moment.minute:02d}",
        f"{hour12}:{moment.minute:02d}",
    }
    return any(re.search(rf"(?<!\d){re.escape(f)}(?!\d)", answer) for f in forms)


async def time_run(base_url: str, model: str) -> dict[str, Any]:
    started = time.perf_counter()
    calls: list[str] = []
    tool_time = ""
    result: RunResult | None = None
    async with load_scenario("time_assistant", base_url=base_url, model=model) as scenario:
        async for item in scenario.run_stream(stream_tokens=False):
            if isinstance(item, ToolCall):
                calls.append(f"{item.name}({item.arguments})")
            elif isinstance(item, ToolResult) and not item.is_error:
                try:
                    tool_time = json.loads(item.content)["datetime"]
                except (ValueError, KeyError):
                    pass
            elif isinstance(item, RunResult):
                result = item
    assert result is not None
    ok = bool(tool_time) and _time_mentions(result.final_text, tool_time)
    return {
        "ok": ok,
        "seconds": round(time.perf_counter() - started, 2),
        "calls": calls,
        "tool_time": tool_time,
        "answer": result.final_text,
    }


async def travel_run(base_url: str, model: str) -> dict[str, Any]:
    async with load_scenario("travel_planning", base_url=base_url, model=model) as scenario:
        result = await scenario.run()
    plan = result.final_text
    days = sorted(set(re.findall(r"Day\s*([1-3])", plan, flags=re.IGNORECASE)))
    return {
        "seconds": result.elapsed_s,
        "stop_reason": result.stop_reason,
        "final_source": result.final_source,
        "speakers": [m.source for m in result.messages],
        "plan_words": len(plan.split()),
        "days_covered": days,
        "complete": result.final_source == "travel_summary_agent" and days == ["1", "2", "3"],
        "plan": plan,
        "prompt_tokens": result.total.prompt_tokens,
        "completion_tokens": result.total.completion_tokens,
    }


async def run(time_runs: int, travel_runs: int) -> dict[str, Any]:
    async with open_endpoint("auto", "auto") as endpoint:
        times = []
        for i in range(time_runs):
            times.append(await time_run(endpoint.base_url, endpoint.model))
            mark = "ok " if times[-1]["ok"] else "BAD"
            print(f"  time {i + 1}/{time_runs}: {mark} {times[-1]['answer'][:90]!r}")
        travels = []
        for i in range(travel_runs):
            travels.append(await travel_run(endpoint.base_url, endpoint.model))
            t = travels[-1]
            print(
                f"  travel {i + 1}/{travel_runs}: {t['seconds']:.0f} s, {t['stop_reason']}, {t['complete']=}"
            )
    return {"model": endpoint.model, "time_assistant": times, "travel_planning": travels}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench quality")
    parser.add_argument("--time-runs", type=int, default=20)
    parser.add_argument("--travel-runs", type=int, default=3)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    data = asyncio.run(run(args.time_runs, args.travel_runs))
    times = data["time_assistant"]
    if times:
        good = sum(t["ok"] for t in times)
        print_table(
            f"time_assistant on {data['model']}",
            ["runs", "answered with the tool's time", "median s", "max s"],
            [
                [
                    len(times),
                    f"{good}/{len(times)}",
                    statistics.median(t["seconds"] for t in times),
                    max(t["seconds"] for t in times),
                ]
            ],
        )
    travels = data["travel_planning"]
    if travels:
        print_table(
            f"travel_planning on {data['model']}",
            ["run", "seconds", "stopped because", "last speaker", "plan words", "days", "complete"],
            [
                [
                    i + 1,
                    t["seconds"],
                    t["stop_reason"],
                    t["final_source"],
                    t["plan_words"],
                    ",".join(t["days_covered"]),
                    t["complete"],
                ]
                for i, t in enumerate(travels)
            ],
        )
    print(f"wrote {write_json('quality', data)}")
    return 0
