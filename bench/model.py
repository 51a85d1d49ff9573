"""The embedded model server: speed, tool-call reliability, and prompt layouts on travel_planning.

`python -m bench model [--parallel 1 4] [--rounds 1 3] [--layouts shared_prefix system_first]
[--tool-calls 30] [--no-travel] [--embeddings | --no-embeddings] [--embedding-threads 1 2]`
starts its own embedded server per --parallel value (with
/metrics on, to count the prompt tokens the server really processed, i.e. not served from its
prompt cache), prints tables and writes bench/results/model.json.
The machine may be shared with other work: read ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from openai import AsyncOpenAI

from bench._embeddings import (
    as_json,
    bench_embeddings,
    bench_single_input,
    print_embedding_rows,
    print_single_input_rows,
)
from bench._report import print_table, write_json
from serving._check import TOOL_NAME, TOOL_PROMPT, TOOLS
from serving._embedded import EmbeddedServer, ServerConfig, free_port
from serving._models import prepare_model_file

ESSAY = "Write a detailed, 300-word essay about the history of the printing press."


@dataclass
class Speed:
    start_s: float
    rss_mib: float
    generation_tok_s: float
    prompt_tok_s: float
    ttft_s: float
    tool_calls_valid: str


@dataclass
class TravelRun:
    layout: str
    rounds: int
    parallel: int
    prompt_tokens_processed: int
    prompt_tokens_sent: int
    completion_tokens: int
    wall_s: float
    stop_reason: str
    final_source: str
    final_text: str


def _rss_mib(pid: int | None) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def prompt_tokens_processed(base_url: str) -> int:
    """llama.cpp's counter of prompt tokens it evaluated (cache hits excluded)."""
    async with httpx.AsyncClient(trust_env=False) as client:
        text = (await client.get(base_url.removesuffix("/v1") + "/metrics")).text
    match = re.search(r"^llamacpp:prompt_tokens_total\s+([0-9.e+]+)", text, re.MULTILINE)
    return int(float(match.group(1))) if match else 0


async def measure_speed(client: AsyncOpenAI, model: str, tool_calls: int) -> dict[str, float | str]:
    gen, prompt, ttft = [], [], []
    for _ in range(3):
        nonce = uuid.uuid4().hex  # a fresh prefix: no prompt-cache hit
        raw = await client.chat.completions.with_raw_response.create(
            model=model,
            temperature=0,
            max_tokens=200,
            messages=[{"role": "user", "content": f"[{nonce}] {ESSAY} " + "Be thorough. " * 60}],
        )
        timings = json.loads(raw.text).get("timings", {})
        gen.append(float(timings.get("predicted_per_second", 0.0)))
        prompt.append(float(timings.get("prompt_per_second", 0.0)))
        started = time.perf_counter()
        stream = await client.chat.completions.create(
            model=model,
            temperature=0,
            max_tokens=16,
            stream=True,
            messages=[{"role": "user", "content": f"[{uuid.uuid4().hex}] Count from 1 to 20."}],
        )
        first = None
        async for chunk in stream:
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter() - started
        ttft.append(first or 0.0)
    valid = 0
    for _ in range(tool_calls):
        r = await client.chat.completions.create(
            model=model, messages=TOOL_PROMPT, tools=TOOLS, temperature=0, max_tokens=96
        )
        for call in r.choices[0].message.tool_calls or []:
            fn = getattr(call, "function", None)
            try:
                args = json.loads(getattr(fn, "arguments", "") or "")
            except ValueError:
                continue
            valid += getattr(fn, "name", None) == TOOL_NAME and isinstance(args.get("timezone"), str)
            break
    return {
        "generation_tok_s": statistics.median(gen),
        "prompt_tok_s": statistics.median(prompt),
        "ttft_s": statistics.median(ttft),
        "tool_calls_valid": f"{valid}/{tool_calls}",
    }


def travel_scenario_file(layout: str, rounds: int, directory: Path) -> Path:
    """travel_planning.yaml with the layout forced, and for several rounds a message-count end."""
    from ruamel.yaml import YAML

    from scenarios import list_scenarios

    source = next(info.path for info in list_scenarios() if info.name == "travel_planning")
    yaml = YAML()
    doc = yaml.load(Path(source).read_text())
    doc["prompt_layout"] = layout
    agents = len(doc["team"]["participants"])
    if rounds > 1:  # the task counts as a message in AutoGen's MaxMessageTermination
        doc["team"]["termination"] = {"max_messages": agents * rounds + 1}
    doc["team"]["max_messages"] = agents * rounds + 1
    out = directory / f"travel_{layout}_{rounds}.yaml"
    with out.open("w") as f:
        yaml.dump(doc, f)
    return out


async def run_travel_layouts(
    base_url: str, model: str, layouts: list[str], rounds_list: list[int], parallel: int
) -> list[TravelRun]:
    """travel_planning for each layout and round count; needs the scenarios package."""
    from scenarios import load_scenario

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for rounds in rounds_list:
            for layout in layouts:
                path = travel_scenario_file(layout, rounds, Path(tmp))
                before = await prompt_tokens_processed(base_url)
                async with load_scenario(path, base_url=base_url, model=model) as scenario:
                    result = await scenario.run()
                processed = await prompt_tokens_processed(base_url) - before
                runs.append(
                    TravelRun(
                        layout=layout,
                        rounds=rounds,
                        parallel=parallel,
                        prompt_tokens_processed=processed,
                        prompt_tokens_sent=result.total.prompt_tokens,
                        completion_tokens=result.total.completion_tokens,
                        wall_s=result.elapsed_s,
                        stop_reason=result.stop_reason,
                        final_source=result.final_source,
                        final_text=result.final_text,
                    )
                )
                print(
                    f"  travel {layout} x{rounds} parallel={parallel}: {processed} prompt tokens processed, "
                    f"{result.elapsed_s:.0f} s, {result.stop_reason}",
                    flush=True,
                )
    return runs


async def bench_one_server(
    args: argparse.Namespace, parallel: int, speed: bool
) -> tuple[Speed | None, list[TravelRun]]:
    choice = prepare_model_file(args.model)
    config = ServerConfig(
        choice.path, choice.alias, port=free_port(), ctx=args.ctx, parallel=parallel, metrics=True
    )
    server = EmbeddedServer(config)
    started = time.perf_counter()
    await asyncio.to_thread(server.start)
    start_s = time.perf_counter() - started
    try:
        measured = None
        if speed:
            async with AsyncOpenAI(base_url=server.base_url, api_key="x") as client:
                numbers = await measure_speed(client, choice.alias, args.tool_calls)
            measured = Speed(start_s=start_s, rss_mib=_rss_mib(server.pid), **numbers)  # type: ignore[arg-type]
        runs: list[TravelRun] = []
        if not args.no_travel:
            runs = await run_travel_layouts(
                server.base_url, choice.alias, args.layouts, args.rounds, parallel
            )
        if measured:
            measured.rss_mib = max(measured.rss_mib, _rss_mib(server.pid))
        return measured, runs
    finally:
        await asyncio.to_thread(server.stop)


async def _main(args: argparse.Namespace) -> int:
    speed: Speed | None = None
    runs: list[TravelRun] = []
    embeddings: dict[str, Any] = {}
    if not args.no_embeddings:
        for threads in args.embedding_threads:
            rows = await bench_embeddings(threads=threads)
            print_embedding_rows(rows, threads)
            single = await bench_single_input(threads=threads)
            if single:
                print_single_input_rows(single, threads)
            embeddings[f"threads_{threads}"] = as_json(rows)
            embeddings[f"single_input_threads_{threads}"] = as_json(single)
    if args.embeddings:
        path = write_json("model_embeddings", {"embeddings": embeddings, "args": vars(args)})
        print(f"wrote {path}")
        return 0
    for i, parallel in enumerate(args.parallel):
        measured, more = await bench_one_server(args, parallel, speed=i == 0)
        speed = speed or measured
        runs += more
    if speed:
        print_table(
            "embedded server (llama.cpp via xllamacpp), " + (args.model or "default model"),
            ["start s", "RSS MiB", "generation tok/s", "prompt tok/s", "TTFT s", "valid tool calls"],
            [
                [
                    speed.start_s,
                    f"{speed.rss_mib:.0f}",
                    speed.generation_tok_s,
                    speed.prompt_tok_s,
                    speed.ttft_s,
                    speed.tool_calls_valid,
                ]
            ],
        )
    if runs:
        print_table(
            "travel_planning: prompt tokens the server processed, per layout",
            [
                "layout",
                "rounds",
                "parallel",
                "processed",
                "sent",
                "processed/sent",
                "completion",
                "wall s",
                "ended",
                "final by",
            ],
            [
                [
                    r.layout,
                    r.rounds,
                    r.parallel,
                    r.prompt_tokens_processed,
                    r.prompt_tokens_sent,
                    f"{r.prompt_tokens_processed / max(r.prompt_tokens_sent, 1):.0%}",
                    r.completion_tokens,
                    r.wall_s,
                    r.stop_reason,
                    r.final_source,
                ]
                for r in runs
            ],
        )
    path = write_json(
        "model",
        {
            "speed": asdict(speed) if speed else None,
            "travel": [asdict(r) for r in runs],
            "embeddings": embeddings,
            "args": vars(args),
        },
    )
    print(f"wrote {path}")
    return 0


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench model", description=__doc__)
    ap.add_argument("--model", help="packaged model name or .gguf path (default: the 1.5B)")
    ap.add_argument("--ctx", type=int, default=8192)
    ap.add_argument("--parallel", type=int, nargs="+", default=[1])
    ap.add_argument("--rounds", type=int, nargs="+", default=[1, 3])
    ap.add_argument("--layouts", nargs="+", default=["shared_prefix", "system_first"])
    ap.add_argument("--tool-calls", type=int, default=30)
    ap.add_argument("--no-travel", action="store_true", help="speed only (no scenarios package needed)")
    ap.add_argument("--embeddings", action="store_true", help="only the embedding rows (no chat model)")
    ap.add_argument("--no-embeddings", action="store_true", help="skip the embedding rows")
    ap.add_argument("--embedding-threads", type=int, nargs="+", default=[1, 2], help="one run per value")
    return asyncio.run(_main(ap.parse_args(argv)))
