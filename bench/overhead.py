"""What our layer costs per agent turn, against a zero-latency scripted model server.

Compares, per turn: raw OpenAI SDK calls; the travel team built by hand from bare AutoGen
objects; the same team built from YAML. Then the cost per turn at message 10, 100 and 400
of one long conversation (bounded context keeps it flat), and scenario load/open time.
First, the start time of the quick commands (`scenarios list`, `validate`, `serving status`,
...) in fresh interpreters beside `python -c "import pydantic"`, interleaved in one run
(`--starts-only` measures just these). Medians over repeats; the machine is shared, so read
ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import ChatAgent, Team
from autogen_agentchat.messages import BaseChatMessage
from autogen_agentchat.teams import RoundRobinGroupChat
from autogen_core.model_context import HeadAndTailChatCompletionContext
from autogen_core.models import ModelInfo
from autogen_ext.models.openai import OpenAIChatCompletionClient
from openai import AsyncOpenAI

from bench._report import print_table, write_json
from scenarios import ScenarioSpec, load_scenario
from serving.testing import Reply, ScriptedModelServer
from teams import Message

REPLY = Reply.text(" ".join(["word"] * 60))
INFO = ModelInfo(
    family="unknown",
    function_calling=True,
    vision=False,
    json_output=False,
    structured_output=False,
    multiple_system_messages=True,
)
AGENTS = ["planner_agent", "local_agent", "language_agent", "travel_summary_agent"]


async def raw_sdk_ms(server: ScriptedModelServer, calls: int) -> float:
    client = AsyncOpenAI(base_url=server.base_url, api_key="x")
    messages: list[Any] = [
        {"role": "system", "content": "You plan trips."},
        {"role": "user", "content": "Nepal"},
    ]
    started = time.perf_counter()
    for _ in range(calls):
        stream = await client.chat.completions.create(
            model=server.model, messages=messages, stream=True, stream_options={"include_usage": True}
        )
        async for _chunk in stream:
            pass
    elapsed = time.perf_counter() - started
    await client.close()
    return elapsed / calls * 1000


def _bare_team(
    server: ScriptedModelServer, turns: int
) -> tuple[RoundRobinGroupChat, OpenAIChatCompletionClient]:
    """The travel team as a user would write it by hand: same prompts, options and context."""
    spec = load_scenario("travel_planning").spec
    client = OpenAIChatCompletionClient(
        model=server.model,
        base_url=server.base_url,
        api_key="x",
        model_info=INFO,
        temperature=0.3,
        max_tokens=600,
    )
    agents = [
        AssistantAgent(
            agent.name,
            model_client=client,
            description=agent.description,
            system_message=agent.system_message,
            model_client_stream=True,
            model_context=HeadAndTailChatCompletionContext(head_size=1, tail_size=20),
        )
        for agent in spec.agents
    ]
    return RoundRobinGroupChat(list[ChatAgent | Team](agents), max_turns=turns), client


async def bare_autogen_ms(server: ScriptedModelServer, turns: int) -> float:
    team, client = _bare_team(server, turns)
    started = time.perf_counter()
    await team.run(task="Plan a 3 day trip to Nepal.")
    elapsed = time.perf_counter() - started
    await client.close()
    return elapsed / turns * 1000


def _without_termination(spec: ScenarioSpec) -> ScenarioSpec:
    """The same team, stopped only by its message cap, so every run has the same length."""
    team = spec.effective_team().model_copy(update={"termination": None})
    return spec.model_copy(update={"team": team})


async def yaml_team_ms(server: ScriptedModelServer, turns: int) -> float:
    scenario = load_scenario(
        "travel_planning", base_url=server.base_url, model=server.model, max_messages=turns
    )
    scenario.spec = _without_termination(scenario.spec)
    async with scenario:
        result = await scenario.run(stream_tokens=True)
    assert sum(u.turns for u in result.usage.values()) == turns, result.stop_reason
    return result.elapsed_s / turns * 1000


async def long_conversation(
    server: ScriptedModelServer, turns: int, marks: list[int], *, ours: bool
) -> dict[int, float]:
    """ms per turn around each mark (the median of the 9 turns ending there)."""
    stamps: list[float] = []
    if ours:
        scenario = load_scenario(
            "travel_planning", base_url=server.base_url, model=server.model, max_messages=turns
        )
        scenario.spec = _without_termination(scenario.spec)
        async with scenario:
            async for item in scenario.run_stream():
                if isinstance(item, Message):
                    stamps.append(time.perf_counter())
    else:
        client = OpenAIChatCompletionClient(
            model=server.model, base_url=server.base_url, api_key="x", model_info=INFO
        )
        agents: list[ChatAgent | Team] = [
            AssistantAgent(n, model_client=client, model_client_stream=True) for n in AGENTS
        ]
        team = RoundRobinGroupChat(agents, max_turns=turns)
        async for event in team.run_stream(task="Plan a 3 day trip to Nepal."):
            if isinstance(event, BaseChatMessage):
                stamps.append(time.perf_counter())
        await client.close()
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    return {m: statistics.median(gaps[max(0, m - 9) : m]) * 1000 for m in marks if m <= len(gaps)}


async def load_times(server: ScriptedModelServer, repeats: int) -> tuple[float, float]:
    loads, opens = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        scenario = load_scenario("travel_planning", base_url=server.base_url, model=server.model)
        loaded = time.perf_counter()
        async with scenario:
            opened = time.perf_counter()
        loads.append((loaded - started) * 1000)
        opens.append((opened - loaded) * 1000)
    return statistics.median(loads), statistics.median(opens)


async def run(repeats: int, turns: int, long_turns: int) -> dict[str, Any]:
    marks = [m for m in (10, 100, 400) if m <= long_turns]
    async with ScriptedModelServer([REPLY], when_exhausted="repeat_last") as server:
        await yaml_team_ms(server, 4)  # warm imports and connections
        raw: list[float] = []
        bare: list[float] = []
        ours: list[float] = []
        for _ in range(repeats):  # interleaved, so background load hits all three alike
            raw.append(await raw_sdk_ms(server, turns))
            bare.append(await bare_autogen_ms(server, turns))
            ours.append(await yaml_team_ms(server, turns))
        long_ours = await long_conversation(server, long_turns, marks, ours=True)
        long_bare = await long_conversation(server, long_turns, marks, ours=False)
        load_ms, open_ms = await load_times(server, repeats)
    return {
        "turns_per_run": turns,
        "repeats": repeats,
        "ms_per_turn": {
            "raw_sdk": statistics.median(raw),
            "bare_autogen": statistics.median(bare),
            "yaml_team": statistics.median(ours),
        },
        "long_conversation_ms_per_turn": {
            "yaml_team_bounded": long_ours,
            "bare_autogen_unbounded": long_bare,
        },
        "travel_planning_load_ms": load_ms,
        "travel_planning_open_ms": open_ms,
    }


ROOT = Path(__file__).resolve().parents[1]
BASELINE = ("python -c 'import pydantic'", ["-c", "import pydantic"])
START_COMMANDS = [
    ("python -c pass", ["-c", "pass"]),
    BASELINE,
    ("python -m scenarios list", ["-m", "scenarios", "list"]),
    (
        "python -m scenarios validate travel_planning.yaml",
        ["-m", "scenarios", "validate", "scenarios/travel_planning.yaml"],
    ),
    ("python -m scenarios schema", ["-m", "scenarios", "schema"]),
    ("python -m scenarios --help", ["-m", "scenarios", "--help"]),
    ("python -m serving status", ["-m", "serving", "status"]),
    ("python -m serving down", ["-m", "serving", "down"]),
    ("python -m serving --help", ["-m", "serving", "--help"]),
    ("python -m gateway --help", ["-m", "gateway", "--help"]),
]


def start_times(repeats: int) -> dict[str, dict[str, float]]:
    """Median wall and CPU seconds of each command, from exec to exit, in interleaved rounds.

    CPU time (user + system of the child) is the steadier number on a loaded machine: waiting
    for a core does not count. `serving status/down` look at a private state directory, so no
    server of anyone else is touched.
    """
    wall: dict[str, list[float]] = {label: [] for label, _ in START_COMMANDS}
    cpu: dict[str, list[float]] = {label: [] for label, _ in START_COMMANDS}
    with tempfile.TemporaryDirectory() as runtime:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "AGENTTEAMS_RUNTIME_DIR": runtime}
        for _ in range(repeats):
            for label, argv in START_COMMANDS:
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                started = time.perf_counter()
                subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, check=False)
                wall[label].append(time.perf_counter() - started)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu[label].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return {
        label: {"wall_s": statistics.median(wall[label]), "cpu_s": statistics.median(cpu[label])}
        for label in wall
    }


def print_starts(starts: dict[str, dict[str, float]], repeats: int) -> None:
    base = starts[BASELINE[0]]
    print_table(
        f"start time of quick commands (fresh interpreter, median of {repeats}, interleaved)",
        ["command", "wall ms", "vs import pydantic", "CPU ms", "vs import pydantic", "target"],
        [
            [
                label,
                t["wall_s"] * 1000,
                f"{t['wall_s'] / base['wall_s']:.2f}x",
                t["cpu_s"] * 1000,
                f"{t['cpu_s'] / base['cpu_s']:.2f}x",
                "" if label in ("python -c pass", BASELINE[0]) else "<= 3x",
            ]
            for label, t in starts.items()
        ],
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench overhead")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--turns", type=int, default=40, help="agent turns per run")
    parser.add_argument("--long-turns", type=int, default=400, help="length of the long conversation")
    parser.add_argument("--start-repeats", type=int, default=7, help="runs of each quick command")
    parser.add_argument("--starts-only", action="store_true", help="measure only the quick commands")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    starts = start_times(args.start_repeats)
    print_starts(starts, args.start_repeats)
    if args.starts_only:
        print(f"wrote {write_json('overhead_starts', {'start_s': starts, 'repeats': args.start_repeats})}")
        return 0
    data = asyncio.run(run(args.repeats, args.turns, args.long_turns))
    data["start_s"] = starts
    per = data["ms_per_turn"]
    print_table(
        f"ms per agent turn (median of {args.repeats} runs x {args.turns} turns, "
        "scripted server, no latency)",
        ["what", "ms/turn", "vs bare AutoGen"],
        [
            ["raw OpenAI SDK call (streamed)", per["raw_sdk"], "-"],
            ["bare AutoGen team, built by hand", per["bare_autogen"], "1.00x"],
            [
                "same team from YAML (ours)",
                per["yaml_team"],
                f"{per['yaml_team'] / per['bare_autogen']:.2f}x",
            ],
            ["our layer adds (ms/turn)", per["yaml_team"] - per["bare_autogen"], "target < 0.3"],
        ],
    )
    long = data["long_conversation_ms_per_turn"]
    rows = []
    for label, key in (
        ("ours (last_n context)", "yaml_team_bounded"),
        ("bare AutoGen (unbounded)", "bare_autogen_unbounded"),
    ):
        marks = long[key]
        first = marks.get(10)
        rows.append(
            [
                label,
                *(marks.get(m, float("nan")) for m in (10, 100, 400)),
                f"{marks[max(marks)] / first:.2f}x" if first else "-",
            ]
        )
    print_table(
        "ms per turn at message N of one long conversation", ["team", "@10", "@100", "@400", "last/@10"], rows
    )
    print_table(
        "travel_planning scenario",
        ["step", "ms (median)"],
        [
            ["load + validate YAML", data["travel_planning_load_ms"]],
            ["open (endpoint check, clients)", data["travel_planning_open_ms"]],
        ],
    )
    print(f"wrote {write_json('overhead', data)}")
    return 0
