"""How the shipped scenarios behave on the embedded local model, over repeated runs.

`python -m bench quality [--time-runs 20] [--travel-runs 5] [--variants ...] [--selector-runs 10]
[--code-runs 5]`

- time_assistant: the answer must state the time the MCP tool returned.
- travel_planning: each plan is scored (days covered, lines that appear more than once,
  words, how the run ended) under sampling variants run side by side: the runs of the
  variants alternate, so the shared machine's load falls on all of them alike.
- travel_selector: the speaker order, whether every pick of the model was a valid name on
  its first attempt, how it ended, seconds; `--selector-modes` compares the constrained
  pick (teams/_selector.py) with AutoGen's free-text parsing.
- data_analyst: the seed's "Create a visualization of a sinewave"; the model writes the code
  itself, the sandbox runs it; a run succeeds when a PNG that decodes comes back.

Prints a table per scenario and writes bench/results/quality.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import json
import logging
import re
import statistics
import time
from collections import Counter
from typing import Any

from autogen_agentchat import TRACE_LOGGER_NAME

from bench._report import print_table, write_json
from scenarios import RunResult, Scenario, load_scenario
from serving import open_endpoint
from teams import ToolCall, ToolResult
from teams._selector import SelectorPick

# sampling variants for travel_planning: options laid over the scenario's `models.default.options`
VARIANTS: dict[str, dict[str, float]] = {
    # what every request sent before per-profile defaults: llama.cpp's own defaults
    "none": {"repetition_penalty": 1.0, "presence_penalty": 0.0, "frequency_penalty": 0.0},
    "profile": {},  # serving/profiles.yaml's defaults for the served model and engine
    "rep1.1": {"repetition_penalty": 1.1, "presence_penalty": 0.0, "frequency_penalty": 0.0},
    "rep1.15": {"repetition_penalty": 1.15, "presence_penalty": 0.0, "frequency_penalty": 0.0},
    "pres0.5": {"repetition_penalty": 1.0, "presence_penalty": 0.5, "frequency_penalty": 0.0},
    "freq0.3": {"repetition_penalty": 1.0, "presence_penalty": 0.0, "frequency_penalty": 0.3},
}
SUMMARY = "travel_summary_agent"


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


def _line_key(line: str) -> str:
    """A line as a reader compares it: no list marker, emphasis, case or trailing punctuation."""
    text = re.sub(r"^\s*(?:[-*+•]|\d+[.)])\s*", "", line)
    text = re.sub(r"[*_`#]", "", text).strip().rstrip(".:;!").lower()
    return " ".join(text.split())


def repeated_lines(plan: str) -> list[str]:
    """Every line (of more than two words) that appears more than once in the plan."""
    counts = Counter(k for k in map(_line_key, plan.splitlines()) if len(k.split()) > 2)
    return [line for line, n in counts.items() if n > 1]


def score_plan(result: RunResult) -> dict[str, Any]:
    plan = result.final_text
    days = sorted(set(re.findall(r"Day\s*([1-3])\b", plan, flags=re.IGNORECASE)))
    repeats = repeated_lines(plan)
    return {
        "seconds": result.elapsed_s,
        "stop_reason": result.stop_reason,
        "final_source": result.final_source,
        "speakers": [m.source for m in result.messages],
        "plan_words": len(plan.split()),
        "days_covered": days,
        "repeated_lines": repeats,
        "complete": result.final_source == SUMMARY and days == ["1", "2", "3"],
        "plan": plan,
        "prompt_tokens": result.total.prompt_tokens,
        "completion_tokens": result.total.completion_tokens,
    }


def _with_options(scenario: Scenario, options: dict[str, float]) -> None:
    spec = scenario.spec
    models = {
        name: model.model_copy(update={"options": model.options.model_copy(update=options)})
        for name, model in spec.models.items()
    }
    scenario.spec = spec.model_copy(update={"models": models})


def _with_timeout(scenario: Scenario, timeout: float | None) -> None:
    """The team's wall-clock limit and each model call's timeout raised, for a loaded machine."""
    if timeout is not None:
        team = scenario.spec.effective_team().model_copy(update={"timeout": timeout})
        models = {n: m.model_copy(update={"timeout": timeout}) for n, m in scenario.spec.models.items()}
        scenario.spec = scenario.spec.model_copy(update={"team": team, "models": models})


async def travel_run(
    base_url: str, model: str, options: dict[str, float], team_timeout: float | None = None
) -> dict[str, Any]:
    scenario = load_scenario("travel_planning", base_url=base_url, model=model)
    _with_options(scenario, options)
    _with_timeout(scenario, team_timeout)
    async with scenario:
        result = await scenario.run()
    return score_plan(result)


class _Records(logging.Handler):
    """Collects log records of one run: our selector's picks, AutoGen's selector traces."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


# AutoGen's trace lines for one attempt of its free-text selection
_AUTOGEN_ATTEMPT = re.compile(
    r"Model (selected a valid name|failed to select a valid name|selected multiple names|"
    r"selected the previous speaker).*\(attempt (\d+)\)"
)


def _picks(records: list[logging.LogRecord]) -> list[dict[str, Any]]:
    """One entry per model selection: valid on the first attempt or not, and the answer."""
    picks: list[dict[str, Any]] = []
    for record in records:
        pick: SelectorPick | None = getattr(record, "selector_pick", None)
        if pick is not None:
            picks.append({"first_attempt_valid": pick.speaker is not None, "answer": pick.answer})
            continue
        match = _AUTOGEN_ATTEMPT.search(record.getMessage())
        if match and match.group(2) == "1":
            picks.append({"first_attempt_valid": match.group(1) == "selected a valid name", "answer": ""})
    return picks


async def selector_run(
    base_url: str, model: str, constrained: bool, team_timeout: float | None = None
) -> dict[str, Any]:
    scenario = load_scenario("travel_selector", base_url=base_url, model=model)
    team = scenario.spec.effective_team().model_copy(update={"constrained_choice": constrained})
    scenario.spec = scenario.spec.model_copy(update={"team": team})
    _with_timeout(scenario, team_timeout)
    handler = _Records()
    loggers = [logging.getLogger("teams._selector"), logging.getLogger(TRACE_LOGGER_NAME)]
    saved = [(lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
        lg.propagate = False  # the picks go to the table, not the terminal
    try:
        async with scenario:
            result = await scenario.run()
    finally:
        for lg, (level, propagate) in zip(loggers, saved, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)
            lg.propagate = propagate
    picks = _picks(handler.records)
    agents = scenario.spec.effective_team().participants
    speakers = [m.source for m in result.messages if m.source in agents]
    return {
        "mode": "constrained" if constrained else "autogen",
        "seconds": result.elapsed_s,
        "speakers": speakers,
        "picks": picks,
        "all_first_attempt_valid": all(p["first_attempt_valid"] for p in picks),
        "repeats": sum(a == b for a, b in zip(speakers, speakers[1:], strict=False)),
        "stop_reason": result.stop_reason,
        "final_source": result.final_source,
        "ended_with_plan": result.final_source == SUMMARY and speakers[-1:] == [SUMMARY],
        # a plan the summary wrote alone (picked first, its turn ends the run) is no team's plan
        "all_spoke": set(agents) <= set(speakers),
        "plan_words": len(result.final_text.split()),
    }


def _png_size(data: bytes) -> tuple[int, int] | None:
    try:
        from PIL import Image
    except ImportError:  # the PNG header then: width and height are its IHDR's first fields
        ok = data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
        return (int.from_bytes(data[16:20]), int.from_bytes(data[20:24])) if ok else None
    try:
        with Image.open(io.BytesIO(data)) as image:
            return (image.width, image.height) if image.format == "PNG" else None
    except OSError:
        return None


async def code_run(base_url: str, model: str, team_timeout: float | None = None) -> dict[str, Any]:
    scenario = load_scenario("data_analyst", base_url=base_url, model=model)
    _with_timeout(scenario, team_timeout)
    outcomes: list[ToolResult] = []
    result: RunResult | None = None
    async with scenario:
        async for item in scenario.run_stream("Create a visualization of a sinewave", stream_tokens=False):
            if isinstance(item, ToolResult):
                outcomes.append(item)
            elif isinstance(item, RunResult):
                result = item
    assert result is not None
    sizes = [_png_size(f.data) for f in result.files if f.media_type == "image/png"]
    png = next((size for size in sizes if size is not None and min(size) > 0), None)
    return {
        "seconds": result.elapsed_s,
        "code_runs": len(outcomes),
        "code_errors": sum(o.is_error or "Traceback" in o.content for o in outcomes),
        "files": [f.name for f in result.files],
        "png": list(png) if png else None,
        "ok": png is not None,
        "stop_reason": result.stop_reason,
        "answer": result.final_text[:200],
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with open_endpoint(args.base_url, "auto") as endpoint:
        url, model = endpoint.base_url, endpoint.model
        times = []
        for i in range(args.time_runs):
            times.append(await time_run(url, model))
            mark = "ok " if times[-1]["ok"] else "BAD"
            print(f"  time {i + 1}/{args.time_runs}: {mark} {times[-1]['answer'][:90]!r}", flush=True)
        travels: dict[str, list[dict[str, Any]]] = {v: [] for v in args.variants}
        selectors: dict[str, list[dict[str, Any]]] = {m: [] for m in args.selector_modes}
        failures: list[dict[str, str]] = []
        codes: list[dict[str, Any]] = []
        data = {
            "model": model,
            "time_assistant": times,
            "travel_planning": travels,
            "travel_selector": selectors,
            "data_analyst": codes,
            "failed_runs": failures,
        }
        # interleaved: each round runs the selector modes and the sampling variants, so background
        # load falls on all alike and a run cut short still compares them
        rounds = max(args.travel_runs, args.selector_runs, args.code_runs)
        for i in range(rounds):
            if i < args.code_runs:
                try:
                    c = await code_run(url, model, args.timeout)
                except Exception as exc:
                    print(f"  code {i + 1}: failed: {type(exc).__name__}: {exc}"[:300], flush=True)
                    failures.append({"what": "code", "error": f"{type(exc).__name__}: {exc}"[:500]})
                else:
                    codes.append(c)
                    print(
                        f"  code {i + 1}/{args.code_runs}: {c['seconds']:.0f} s, {c['code_runs']} code runs "
                        f"({c['code_errors']} failed), png={c['png']}",
                        flush=True,
                    )
                write_json("quality", data)
            for mode in args.selector_modes if i < args.selector_runs else []:
                try:
                    s = await selector_run(url, model, mode == "constrained", args.timeout)
                except Exception as exc:  # a failed run is a result too (e.g. a model call timed out)
                    print(f"  selector {mode} {i + 1}: failed: {type(exc).__name__}: {exc}"[:300], flush=True)
                    failures.append(
                        {"what": f"selector {mode}", "error": f"{type(exc).__name__}: {exc}"[:500]}
                    )
                    write_json("quality", data)
                    continue
                selectors[mode].append(s)
                print(
                    f"  selector {mode} {i + 1}/{args.selector_runs}: {s['seconds']:.0f} s, "
                    f"{' > '.join(s['speakers'])}, valid={s['all_first_attempt_valid']}",
                    flush=True,
                )
                write_json("quality", data)
            for variant in args.variants if i < args.travel_runs else []:
                try:
                    t = await travel_run(url, model, VARIANTS[variant], args.timeout)
                except Exception as exc:
                    print(
                        f"  travel {variant} {i + 1}: failed: {type(exc).__name__}: {exc}"[:300], flush=True
                    )
                    failures.append(
                        {"what": f"travel {variant}", "error": f"{type(exc).__name__}: {exc}"[:500]}
                    )
                    write_json("quality", data)
                    continue
                travels[variant].append(t)
                print(
                    f"  travel {variant} {i + 1}/{args.travel_runs}: {t['seconds']:.0f} s, "
                    f"{len(t['repeated_lines'])} repeated lines, complete={t['complete']}",
                    flush=True,
                )
                write_json("quality", data)
    return data


def _short(name: str) -> str:
    return name.removesuffix("_agent").replace("travel_summary", "summary")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench quality")
    parser.add_argument("--base-url", default="auto", help="default: the bundled server (started if needed)")
    parser.add_argument("--time-runs", type=int, default=20)
    parser.add_argument(
        "--timeout",
        type=float,
        help="override the teams' wall-clock limit and the model-call timeout (s), e.g. on a loaded machine",
    )
    parser.add_argument("--travel-runs", type=int, default=5, help="runs per sampling variant")
    parser.add_argument(
        "--variants", nargs="+", default=["none", "profile"], choices=list(VARIANTS), help="sampling variants"
    )
    parser.add_argument("--selector-runs", type=int, default=10, help="runs per selector mode")
    parser.add_argument(
        "--selector-modes", nargs="+", default=["constrained"], choices=["constrained", "autogen"]
    )
    parser.add_argument("--code-runs", type=int, default=5, help="data_analyst sine-wave runs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    data = asyncio.run(run(args))
    data["variants"] = {v: VARIANTS[v] for v in args.variants}
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
    for variant, travels in data["travel_planning"].items():
        if not travels:
            continue
        rows: list[list[Any]] = [
            [
                i + 1,
                t["seconds"],
                t["stop_reason"],
                t["final_source"],
                t["plan_words"],
                ",".join(t["days_covered"]),
                len(t["repeated_lines"]),
                t["complete"],
            ]
            for i, t in enumerate(travels)
        ]
        rows.append(
            [
                "all",
                f"median {statistics.median(t['seconds'] for t in travels):.1f}",
                "",
                "",
                f"median {statistics.median(t['plan_words'] for t in travels):.0f}",
                "",
                f"{sum(not t['repeated_lines'] for t in travels)}/{len(travels)} none",
                f"{sum(t['complete'] for t in travels)}/{len(travels)}",
            ]
        )
        print_table(
            f"travel_planning on {data['model']}, sampling {variant}: {VARIANTS[variant] or 'profile'}",
            [
                "run",
                "seconds",
                "stopped because",
                "last speaker",
                "plan words",
                "days",
                "repeated lines",
                "complete",
            ],
            rows,
        )
    for mode, runs in data["travel_selector"].items():
        if not runs:
            continue
        rows = [
            [
                i + 1,
                " > ".join(_short(s) for s in r["speakers"]),
                f"{sum(p['first_attempt_valid'] for p in r['picks'])}/{len(r['picks'])}",
                r["repeats"],
                r["stop_reason"],
                r["ended_with_plan"],
                r.get("all_spoke", "-"),
                r["seconds"],
            ]
            for i, r in enumerate(runs)
        ]
        picks = [p for r in runs for p in r["picks"]]
        rows.append(
            [
                "all",
                "",
                f"{sum(p['first_attempt_valid'] for p in picks)}/{len(picks)}",
                sum(r["repeats"] for r in runs),
                "",
                f"{sum(r['ended_with_plan'] for r in runs)}/{len(runs)}",
                f"{sum(r.get('all_spoke') is True for r in runs)}/{len(runs)}",
                f"median {statistics.median(r['seconds'] for r in runs):.1f}",
            ]
        )
        print_table(
            f"travel_selector on {data['model']}, {mode} speaker selection",
            [
                "run",
                "speakers",
                "model picks valid 1st try",
                "repeats",
                "stopped because",
                "ended with plan",
                "all four spoke",
                "seconds",
            ],
            rows,
        )
    codes = data["data_analyst"]
    if codes:
        rows = [
            [
                i + 1,
                c["code_runs"],
                c["code_errors"],
                ", ".join(c["files"]),
                "x".join(map(str, c["png"])) if c["png"] else "none",
                c["stop_reason"],
                c["seconds"],
            ]
            for i, c in enumerate(codes)
        ]
        rows.append(
            [
                "all",
                sum(c["code_runs"] for c in codes),
                sum(c["code_errors"] for c in codes),
                "",
                f"{sum(c['ok'] for c in codes)}/{len(codes)} with a PNG",
                "",
                f"median {statistics.median(c['seconds'] for c in codes):.1f}",
            ]
        )
        print_table(
            f"data_analyst on {data['model']}: the sine-wave request",
            ["run", "code runs", "failed", "files", "PNG", "stopped because", "seconds"],
            rows,
        )
    for failure in data["failed_runs"]:
        print(f"failed run: {failure['what']}: {failure['error'][:200]}")
    print(f"wrote {write_json('quality', data)}")
    return 0
