"""`python -m bench gateway`: N concurrent chat-completion runs of travel_planning through the
gateway (a real `python -m gateway` process) against a scripted model that waits 200 ms per
call. Ideal wall time = model calls per run x latency, since all runs overlap; the gateway's
own CPU per run comes from /proc for its process."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import openai

from bench._report import print_table, write_json
from serving.testing import Reply, ScriptedModelServer, message_text

SCENARIO = "travel_planning"
TASK = "Plan a 3 day trip to Nepal."
TURNS = 4  # planner, local guide, language, summary: one model call each


def reply(body: dict[str, Any]) -> Reply:
    system = " ".join(message_text(m) for m in body["messages"] if m.get("role") == "system")
    if "final travel plan" in system:
        return Reply.text("Day 1 Kathmandu, day 2 Bhaktapur, day 3 Pokhara. Namaste. TERMINATE")
    return Reply.text("Day 1: Kathmandu, Asan market. Day 2: Bhaktapur. Day 3: Pokhara. Namaste = hello.")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_gateway(
    model: ScriptedModelServer, db: Path, log: Path, extra: list[str]
) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "gateway", "--port", "0", "--db", str(db), "--base-url", model.base_url]
    command += ["--model", model.model, "--max-concurrency", "10000", "--log-level", "warning", *extra]
    with log.open("w") as errors:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    match = re.search(r"base_url (http://\S+)/v1", proc.stdout.readline() if ready else "")
    if not match:
        proc.kill()
        raise SystemExit(f"gateway did not start; see {log}")
    url = match.group(1)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"gateway did not become healthy; see {log}")
        time.sleep(0.05)


async def run_batch(url: str, n: int) -> tuple[float, list[int]]:
    # the SDK's default pool allows 1000 connections: enough for N = 100
    async with openai.AsyncOpenAI(
        base_url=f"{url}/v1", api_key="bench", max_retries=0, timeout=600
    ) as client:

        async def one() -> int:
            completion = await client.chat.completions.create(
                model=SCENARIO, messages=[{"role": "user", "content": TASK}]
            )
            assert completion.choices[0].message.content, "empty answer"
            return completion.usage.total_tokens if completion.usage else 0

        started = time.perf_counter()
        tokens = await asyncio.gather(*(one() for _ in range(n)))
        return time.perf_counter() - started, list(tokens)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench gateway", description=__doc__)
    parser.add_argument("--n", default="1,10,100", help="concurrent runs per batch (default 1,10,100)")
    parser.add_argument("--latency", type=float, default=0.2, help="scripted model latency per call, s")
    parser.add_argument(
        "--scenarios",
        type=Path,
        default=None,
        metavar="DIR",
        help="serve this scenario directory first (e.g. a travel_planning variant)",
    )
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.n.split(",")]
    rows: list[list[Any]] = []
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, ScriptedModelServer(reply, latency=args.latency) as model:
        extra = ["--scenarios", str(args.scenarios)] if args.scenarios else []
        proc, url = start_gateway(model, Path(tmp) / "gateway.sqlite3", Path(tmp) / "gateway.log", extra)
        try:
            asyncio.run(run_batch(url, 1))  # warm-up: opens the scenario once (not measured)
            for n in sizes:
                calls_before = len(model.requests)
                cpu_before, own_before = cpu_seconds(proc.pid), time.process_time()
                wall, _ = asyncio.run(run_batch(url, n))
                cpu = cpu_seconds(proc.pid) - cpu_before
                own = time.process_time() - own_before
                calls = len(model.requests) - calls_before
                turns = calls / n
                ideal = turns * args.latency
                result = {
                    "n": n,
                    "wall_s": round(wall, 3),
                    "ideal_s": round(ideal, 3),
                    "ratio": round(wall / ideal, 3),
                    "runs_per_s": round(n / wall, 2),
                    "model_calls_per_run": turns,
                    "gateway_cpu_s": round(cpu, 3),
                    "gateway_cpu_ms_per_run": round(1000 * cpu / n, 1),
                    "bench_process_cpu_s": round(own, 3),  # clients + scripted model, to show who is busy
                }
                results.append(result)
                rows.append(
                    [
                        n,
                        turns,
                        wall,
                        ideal,
                        f"{wall / ideal:.2f}x",
                        f"{n / wall:.1f}",
                        f"{1000 * cpu / n:.0f} ms",
                    ]
                )
        finally:
            proc.terminate()
            proc.wait(30)
    print_table(
        f"gateway: {SCENARIO} via /v1/chat/completions, scripted model {args.latency * 1000:.0f} ms/call",
        ["N", "calls/run", "wall s", "ideal s", "wall/ideal", "runs/s", "gateway CPU/run"],
        rows,
    )
    path = write_json(
        "gateway",
        {"scenario": SCENARIO, "latency_s": args.latency, "cpus": os.cpu_count(), "results": results},
    )
    print(f"wrote {path}")
    target = next((r for r in results if r["n"] == 100), None)
    if target is not None and target["ratio"] > 1.3:
        print(f"note: N=100 is {target['ratio']:.2f}x ideal (target 1.3x)")
    return 0
