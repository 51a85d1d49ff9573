"""`python -m bench faults`: inject each fault into a real run and print how the run ended.

Every row runs one scenario (one agent, the `mcp_servers.testing` MCP server over stdio, a
`serving.testing.ScriptedModelServer` that serves the fault) with a healthy control run
on the same Scenario (same model server, same MCP session) at the same time. A row shows
how the faulty run ended, whether the process stayed up (it answers after the fault),
how many messages the caller had been shown but the run's end lost, the time to the
outcome against the budget (the configured timeout + 2 s), and what the control run paid.

The gateway row SIGKILLs a real gateway process with thread runs in flight, restarts it
on the same database and counts what survived (`bench/_faults_gateway.py`); its time is
from the new process answering to every interrupted run reported failed, and its "other
run" is the restart's duration and a new run on the same thread.

Budgets: a model fault's is (1 + max_retries) x the model timeout + 2 s (each attempt may
wait its timeout out), an MCP fault's the MCP read timeout + 2 s, a start fault's the
startup timeout + 2 s, a runaway team's its wall-clock limit + 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench._report import print_table, write_json
from serving.testing import Fault, Reply, ScriptedModelServer, Step, message_text

MODEL_TIMEOUT = 5.0  # the model call timeout the fault scenarios configure (seconds); 3 s was
# too tight on a machine starved by other work: a timed-out first attempt consumed its step
TEAM_TIMEOUT = 20.0
MCP_READ_TIMEOUT = 5.0
MARGIN = 2.0  # the bound: every failure reported within its timeout + 2 s
CONTROL_TASK = "CONTROL: say ok"
CONTROL_REPLY = "control ok TERMINATE"


@dataclass
class FaultCase:
    name: str
    steps: list[Step]
    expect: str  # "recovered", "failed" or "stopped": what a correct product does
    cause: str  # text the one-line reason must contain (the cause, named)
    budget: float  # seconds: the timeout that governs this fault, + MARGIN
    mcp_args: list[str] = field(default_factory=list)
    stream: bool = False
    repeat_last: bool = False


@dataclass
class Outcome:
    fault: str
    ended: str  # recovered | failed | stopped
    reason: str
    process_up: bool
    lost: int
    seconds: float
    budget: float
    control: str
    ok: bool
    detail: dict[str, Any] = field(default_factory=dict)


def _echo(text: str) -> Reply:
    return Reply.tool_call("echo", {"text": text})


CASES: list[FaultCase] = [
    FaultCase("no fault (baseline)", [Reply.text("fine TERMINATE")], "recovered", "", MODEL_TIMEOUT + MARGIN),
    FaultCase(
        "no fault, streamed (baseline)",
        [Reply.text("fine TERMINATE")],
        "recovered",
        "",
        MODEL_TIMEOUT + MARGIN,
        stream=True,
    ),
    FaultCase("model 500 (every attempt)", [Fault.status(500)] * 2, "failed", "500", MODEL_TIMEOUT + MARGIN),
    FaultCase(
        "model 503 once",
        [Fault.status(503), Reply.text("fine TERMINATE")],
        "recovered",
        "",
        MODEL_TIMEOUT + MARGIN,
    ),
    FaultCase(
        "model 429 Retry-After 1 s once",
        [Fault.rate_limited(retry_after=1), Reply.text("fine TERMINATE")],
        "recovered",
        "",
        1 + MODEL_TIMEOUT + MARGIN,
    ),
    FaultCase(
        "model never answers",
        [Fault.hang()] * 2,
        "failed",
        "timed out",
        2 * MODEL_TIMEOUT + MARGIN,  # the first attempt and the SDK's one retry each wait it out
    ),
    FaultCase(
        "model drops the connection mid-SSE",
        [Fault.disconnect()] * 2,
        "failed",
        "connection",
        MODEL_TIMEOUT + MARGIN,
        stream=True,
    ),
    FaultCase(
        "malformed tool-call JSON",
        [Reply.tool_call("echo", "{not json"), Reply.text("sorry TERMINATE")],
        "recovered",
        "",
        MODEL_TIMEOUT + MARGIN,
    ),
    FaultCase(
        "call to a tool that does not exist",
        [Reply.tool_call("no_such_tool", {}), Reply.text("sorry TERMINATE")],
        "recovered",
        "",
        MODEL_TIMEOUT + MARGIN,
    ),
    FaultCase(
        "empty reply", [Reply.empty(), Reply.text("now TERMINATE")], "recovered", "", MODEL_TIMEOUT + MARGIN
    ),
    FaultCase(
        "model never says TERMINATE",
        [Reply.text("still thinking")],
        "stopped",
        "Maximum number of turns",
        TEAM_TIMEOUT + MARGIN,
        repeat_last=True,
    ),
    FaultCase(
        "MCP server killed mid-call",
        [Reply.tool_call("crash", {"kill": True}), _echo("retry"), Reply.text("retried TERMINATE")],
        "recovered",
        "",
        MCP_READ_TIMEOUT + MARGIN,
    ),
    FaultCase(
        "MCP server exits at start",
        [Reply.text("unused")],
        "failed",
        "refusing to start",
        30 + MARGIN,  # the startup timeout
        mcp_args=["--exit-at-start"],
    ),
    FaultCase(
        "MCP tool raises",
        [Reply.tool_call("fail", {"message": "disk full"}), Reply.text("noted TERMINATE")],
        "recovered",
        "",
        MCP_READ_TIMEOUT + MARGIN,
    ),
]


def scenario_yaml(base_url: str, case: FaultCase) -> str:
    args = ", ".join(["-m", "mcp_servers.testing", *case.mcp_args])
    return textwrap.dedent(
        f"""\
        name: fault
        task: FAULT
        models:
          default:
            base_url: {base_url}
            model: scripted-model
            timeout: {MODEL_TIMEOUT}
            info: {{family: unknown, function_calling: true}}
        mcp_servers:
          flaky: {{type: stdio, command: python, args: [{args}], read_timeout: {MCP_READ_TIMEOUT}}}
        agents:
          - name: worker
            system_message: Use the tools.
            tools: [flaky]
            streaming: {str(case.stream).lower()}
        team:
          type: round_robin
          participants: [worker]
          termination: {{text_mention: TERMINATE}}
          max_messages: 6
          timeout: {TEAM_TIMEOUT}
        """
    )


class Router:
    """One scripted server for both runs: the control run always gets its reply."""

    def __init__(self, case: FaultCase) -> None:
        self.case = case
        self.position = 0
        self.control_calls = 0

    def __call__(self, body: dict[str, Any]) -> Step:
        first_user: dict[str, Any] = next((m for m in body["messages"] if m.get("role") == "user"), {})
        if message_text(first_user).startswith("CONTROL"):
            self.control_calls += 1
            return Reply.text(CONTROL_REPLY)
        steps = self.case.steps
        if self.position >= len(steps):
            if not self.case.repeat_last:
                raise RuntimeError(f"the fault script for {self.case.name!r} has no step {self.position + 1}")
            return steps[-1]
        self.position += 1
        return steps[self.position - 1]


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


async def _control(scenario: Any) -> tuple[str, float]:
    started = time.monotonic()
    result = await scenario.run(CONTROL_TASK)
    return result.final_text, time.monotonic() - started


async def run_case(case: FaultCase, workdir: Path) -> Outcome:
    from scenarios import RunResult, load_scenario
    from teams import Message

    router = Router(case)
    async with ScriptedModelServer(router, latency=0.05) as server:
        path = workdir / f"fault_{CASES.index(case)}.yaml"
        path.write_text(scenario_yaml(server.base_url, case), encoding="utf-8")
        started = time.monotonic()
        seen: list[str] = []  # every agent message the caller was shown while the run went on
        ended, reason, kept = "failed", "", None
        control_text, control_s = "", 0.0
        try:
            async with load_scenario(path) as scenario:
                started = time.monotonic()  # the time to the outcome counts from the run's start
                control = asyncio.create_task(_control(scenario))
                try:
                    async for item in scenario.run_stream():
                        if isinstance(item, RunResult):
                            kept = [m.text for m in item.messages]
                            ended = (
                                "recovered" if item.stop_reason.startswith("Text 'TERMINATE'") else "stopped"
                            )
                            reason = item.stop_reason
                        elif isinstance(item, Message) and item.source != "user":
                            seen.append(item.text)
                except Exception as exc:
                    ended, reason = "failed", _one_line(exc)
                seconds = time.monotonic() - started
                control_text, control_s = await control
        except Exception as exc:  # the scenario did not open: a start fault
            ended, reason = "failed", _one_line(exc)
            seconds = time.monotonic() - started
        up = await _still_answers(server.base_url)
    lost = 0 if kept is None else sum(1 for text in seen if text not in kept)
    cause_named = case.cause.lower() in reason.lower()
    opened = case.mcp_args != ["--exit-at-start"]
    control_ok = control_text == "control ok" or not opened
    other = f"ok in {control_s:.2f} s" if control_text == "control ok" else "none (scenario did not open)"
    ok = ended == case.expect and cause_named and up and lost == 0 and seconds <= case.budget and control_ok
    return Outcome(
        case.name,
        ended,
        reason,
        up,
        lost,
        round(seconds, 2),
        case.budget,
        other,
        ok,
        {"model_calls": server.calls, "control_calls": router.control_calls},
    )


async def _still_answers(base_url: str) -> bool:
    import httpx

    try:
        async with httpx.AsyncClient(timeout=5) as client:
            return (await client.get(f"{base_url}/models")).status_code == 200
    except httpx.HTTPError:
        return False


async def run_all(selected: Callable[[FaultCase], bool] = lambda c: True) -> list[Outcome]:
    with tempfile.TemporaryDirectory() as tmp:
        return [await run_case(case, Path(tmp)) for case in CASES if selected(case)]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench faults", description=__doc__)
    parser.add_argument("--no-gateway", action="store_true", help="skip the gateway SIGKILL row")
    args = parser.parse_args(argv)
    # AutoGen logs each failed model call with its traceback; the table says what happened
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("autogen_core").setLevel(logging.CRITICAL)
    outcomes = asyncio.run(run_all())
    if not args.no_gateway:
        from bench._faults_gateway import gateway_sigkill

        outcomes.append(gateway_sigkill())
    rows = [
        [
            o.fault,
            o.ended if not o.reason or o.ended == "recovered" else f"{o.ended}: {o.reason[:90]}",
            "yes" if o.process_up else "NO",
            str(o.lost),
            f"{o.seconds:.2f} / {o.budget:g}",
            o.control,
            "ok" if o.ok else "NOT OK",
        ]
        for o in outcomes
    ]
    print_table(
        "faults: one run per fault, with a healthy run beside it",
        ["fault", "how the run ended", "process up", "lost", "s / budget", "other run", "verdict"],
        rows,
    )
    crashes = sum(not o.process_up for o in outcomes)
    lost = sum(o.lost for o in outcomes)
    late = sum(o.seconds > o.budget for o in outcomes)
    print(
        f"\n{len(outcomes)} faults: {crashes} crashes, {lost} lost messages, {late} past budget, "
        f"{sum(not o.ok for o in outcomes)} not as expected"
    )
    write_json("faults", {"python": sys.version.split()[0], "rows": [asdict(o) for o in outcomes]})
    return 0 if all(o.ok for o in outcomes) else 1
