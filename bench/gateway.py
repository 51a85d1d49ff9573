"""`python -m bench gateway`: N concurrent runs of travel_planning through the gateway, as chat
completions and as Responses side by side (`--kind`), against a scripted model that waits
200 ms per call, in one run for each layout: one process over SQLite and over PostgreSQL;
`--processes 2` over one SQLite file and over one PostgreSQL (a throwaway cluster from
Debian's binaries, as the tests start it).

Ideal wall time = model calls per run x latency, since all runs overlap. Each batch is
repeated and the median reported, because this machine's speed drifts by a third between
minutes. The gateway's CPU is its whole process tree's, from /proc; PostgreSQL's own CPU is
reported beside it. The load generator
posts raw JSON with aiohttp: the OpenAI SDK client would cost the shared 2 cores three
times as much CPU as the requests themselves (the SDK's own calls are covered by the tests).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx

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
    """utime + stime of a process and its live children, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return own + sum(cpu_seconds(int(child)) for child in children)


def start_gateway(
    model: ScriptedModelServer, db: str, log: Path, extra: list[str]
) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "gateway", "--port", "0", "--db", db, "--base-url", model.base_url]
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


# "chat": POST /v1/chat/completions; "responses": POST /v1/responses (a run of the database's
# queue, answered when it ends); "thread": streamed thread runs (POST /v1/threads/runs, stream: true)
KINDS = ("chat", "responses", "thread")
ROUTES = {"chat": "/v1/chat/completions", "responses": "/v1/responses", "thread": "streamed thread runs"}


async def run_batch(url: str, n: int, kind: str = "chat") -> float:
    body = json.dumps({"model": SCENARIO, "messages": [{"role": "user", "content": TASK}]})
    response_body = json.dumps({"model": SCENARIO, "input": TASK})
    thread_body = json.dumps(
        {
            "assistant_id": SCENARIO,
            "stream": True,
            "thread": {"messages": [{"role": "user", "content": TASK}]},
        }
    )
    headers = {"content-type": "application/json", "authorization": "Bearer bench"}
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:

        async def one() -> None:
            if kind == "responses":
                async with session.post(
                    f"{url}/v1/responses", data=response_body, headers=headers
                ) as response:
                    done = await response.json()
                assert response.status == 200 and done["status"] == "completed", done
                assert done["output"][-1]["content"][0]["text"], done
                return
            if kind == "thread":
                async with session.post(
                    f"{url}/v1/threads/runs", data=thread_body, headers=headers
                ) as response:
                    events = await response.text()
                assert response.status == 200 and "event: thread.run.completed" in events, events[-500:]
                return
            async with session.post(f"{url}/v1/chat/completions", data=body, headers=headers) as response:
                answer = await response.json()
            assert response.status == 200 and answer["choices"][0]["message"]["content"], answer

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return time.perf_counter() - started


def measure(
    url: str,
    pid: int,
    model: ScriptedModelServer,
    n: int,
    repeat: int,
    latency: float,
    db_pid: int | None,
    kind: str = "chat",
) -> dict[str, Any]:
    walls: list[float] = []
    cpus: list[float] = []
    db_cpus: list[float] = []
    own: list[float] = []
    calls = 0
    for _ in range(repeat):
        calls_before = len(model.requests)
        cpu_before, own_before = cpu_seconds(pid), time.process_time()
        db_before = cpu_seconds(db_pid) if db_pid is not None else 0.0
        walls.append(asyncio.run(run_batch(url, n, kind)))
        cpus.append(cpu_seconds(pid) - cpu_before)
        db_cpus.append((cpu_seconds(db_pid) if db_pid is not None else 0.0) - db_before)
        own.append(time.process_time() - own_before)
        calls = len(model.requests) - calls_before
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    ideal = calls / n * latency
    return {
        "n": n,
        "wall_s": round(wall, 3),
        "walls_s": [round(w, 3) for w in walls],
        "ideal_s": round(ideal, 3),
        "ratio": round(wall / ideal, 3),
        "runs_per_s": round(n / wall, 2),
        "model_calls_per_run": calls / n,
        "gateway_cpu_s": round(cpu, 3),
        "gateway_cpu_ms_per_run": round(1000 * cpu / n, 1),
        "postgres_cpu_ms_per_run": round(1000 * statistics.median(db_cpus) / n, 1),
        "bench_process_cpu_s": round(statistics.median(own), 3),  # load generator + scripted model
        "gateway_cores": round(cpu / wall, 2),  # the CPU it got: the machine is shared
    }


async def autogen_alone_ms(runs: int = 100) -> float:
    """CPU per run of the same four-agent round robin with an in-memory model: AutoGen's floor."""
    from autogen_agentchat.agents import AssistantAgent
    from autogen_agentchat.base import ChatAgent, Team
    from autogen_agentchat.conditions import MaxMessageTermination, TextMentionTermination
    from autogen_agentchat.teams import RoundRobinGroupChat
    from autogen_core.models import ModelInfo
    from autogen_ext.models.replay import ReplayChatCompletionClient

    info = ModelInfo(
        vision=False, function_calling=True, json_output=False, family="unknown", structured_output=False
    )
    line = "Day 1: Kathmandu, Asan market. Day 2: Bhaktapur. Day 3: Pokhara. Namaste = hello."

    async def one() -> None:
        agents: list[ChatAgent | Team] = [
            AssistantAgent(
                name,
                model_client=ReplayChatCompletionClient(
                    [line + (" TERMINATE" if name == "summary" else "")], model_info=info
                ),
                system_message=f"You are the {name} agent.",
            )
            for name in ("planner", "local", "language", "summary")
        ]
        stop = TextMentionTermination("TERMINATE") | MaxMessageTermination(30)
        result = await RoundRobinGroupChat(agents, termination_condition=stop).run(task=TASK)
        assert len(result.messages) == 5

    await one()
    started = time.process_time()
    await asyncio.gather(*(one() for _ in range(runs)))
    return 1000 * (time.process_time() - started) / runs


async def scenario_alone_ms(model: ScriptedModelServer, runs: int = 100) -> float:
    """CPU per run of the same scenario run by our `scenarios` package in this process, its
    model over HTTP (the scripted server, whose own thread is not counted): the gateway's
    floor, since a gateway run is exactly this plus HTTP in and the database."""
    from scenarios import list_scenarios, load_scenario

    (info,) = [i for i in list_scenarios(()) if i.name == SCENARIO]
    scenario = load_scenario(str(info.path), base_url=model.base_url, model=model.model)

    async def one(opened: Any) -> None:
        events = [event async for event in opened.run_stream(TASK, stream_tokens=False)]
        assert events

    async with scenario as opened:
        await one(opened)
        started = time.thread_time()  # this thread only: the scripted model runs in its own
        await asyncio.gather(*(one(opened) for _ in range(runs)))
        return 1000 * (time.thread_time() - started) / runs


LAYOUTS = {
    "1": ([], "sqlite"),
    "1-postgres": ([], "postgresql"),
    "processes2-sqlite": (["--processes", "2"], "sqlite"),
    "processes2-postgres": (["--processes", "2"], "postgresql"),
}


@contextlib.contextmanager
def database(kind: str, tmp: Path, label: str) -> Iterator[tuple[str, int | None]]:
    """A fresh database of `kind`: its URL, and the PostgreSQL server's pid (for its CPU)."""
    if kind == "sqlite":
        yield str(tmp / f"gateway-{label}.sqlite3"), None
        return
    from tests._postgres import debian_bin_dir, postgres_cluster  # the tests' throwaway cluster

    bin_dir = debian_bin_dir()
    if bin_dir is None:
        raise SystemExit("PostgreSQL is not installed: scripts/install-system-packages.sh")
    with postgres_cluster(bin_dir) as cluster:
        pid = int((cluster.data_dir / "postmaster.pid").read_text().split()[0])
        yield cluster.dsn, pid


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench gateway", description=__doc__)
    parser.add_argument("--n", default="10,100", help="concurrent runs per batch (default 10,100)")
    parser.add_argument(
        "--layouts",
        default=",".join(LAYOUTS),
        help=f"gateway layouts to compare, of {', '.join(LAYOUTS)} (default all)",
    )
    parser.add_argument(
        "--kind",
        default="chat,responses",
        help="routes to compare side by side, of chat (chat completions), responses (the Responses"
        " API) and thread (streamed thread runs); default chat,responses",
    )
    parser.add_argument("--repeat", type=int, default=3, help="batches per N; the median is reported")
    parser.add_argument("--latency", type=float, default=0.2, help="scripted model latency per call, s")
    parser.add_argument(
        "--scenarios",
        type=Path,
        default=None,
        metavar="DIR",
        help="serve this scenario directory first (e.g. a travel_planning variant)",
    )
    args = parser.parse_args(argv)
    kinds = args.kind.split(",")
    if unknown := [k for k in kinds if k not in KINDS]:
        parser.error(f"--kind {','.join(unknown)}: choose from {', '.join(KINDS)}")
    sizes = [int(x) for x in args.n.split(",")]
    rows: list[list[Any]] = []
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, ScriptedModelServer(reply, latency=args.latency) as model:
        for label in args.layouts.split(","):
            extra, kind = LAYOUTS[label]
            extra = extra + (["--scenarios", str(args.scenarios)] if args.scenarios else [])
            with database(kind, Path(tmp), label) as (db, db_pid):
                proc, url = start_gateway(model, db, Path(tmp) / f"gateway-{label}.log", extra)
                try:
                    asyncio.run(run_batch(url, 4))  # warm-up: opens the scenario (not measured)
                    for n, route in ((n, route) for n in sizes for route in kinds):
                        load_before = os.getloadavg()[0]
                        result = {
                            "layout": label,
                            "kind": route,
                            **measure(url, proc.pid, model, n, args.repeat, args.latency, db_pid, route),
                            "load_before": load_before,
                            "load_after": os.getloadavg()[0],
                        }
                        results.append(result)
                        rows.append(
                            [
                                label,
                                ROUTES[route],
                                n,
                                result["model_calls_per_run"],
                                result["wall_s"],
                                result["ideal_s"],
                                f"{result['ratio']:.2f}x",
                                f"{result['runs_per_s']:.1f}",
                                f"{result['gateway_cpu_ms_per_run']:.0f} ms",
                                f"{result['postgres_cpu_ms_per_run']:.0f} ms" if db_pid else "-",
                            ]
                        )
                finally:
                    proc.terminate()
                    proc.wait(30)
    print_table(
        f"gateway: {SCENARIO}, scripted model {args.latency * 1000:.0f} ms/call, median of {args.repeat}",
        [
            "layout",
            "route",
            "N",
            "calls/run",
            "wall s",
            "ideal s",
            "wall/ideal",
            "runs/s",
            "gateway CPU/run",
            "PG CPU/run",
        ],
        rows,
    )
    floor = statistics.median(asyncio.run(autogen_alone_ms()) for _ in range(3))
    with ScriptedModelServer(reply, latency=args.latency) as model:
        alone = statistics.median(asyncio.run(scenario_alone_ms(model)) for _ in range(3))
    path = write_json(
        "gateway" if kinds != ["thread"] else "gateway-threads",
        {
            "scenario": SCENARIO,
            "kinds": kinds,
            "latency_s": args.latency,
            "cpus": os.cpu_count(),
            "results": results,
            "autogen_alone_cpu_ms_per_run": round(floor, 1),
            "scenario_alone_cpu_ms_per_run": round(alone, 1),
        },
    )
    print(f"AutoGen alone (same team, in-memory model, no HTTP): {floor:.1f} ms CPU per run")
    print(f"our scenario run alone (same team, model over HTTP, no gateway): {alone:.1f} ms CPU per run")
    for r in results:
        if r["n"] == max(sizes):
            g = r["gateway_cpu_ms_per_run"]
            print(
                f"{r['layout']} {ROUTES[r['kind']]}, N={r['n']}: gateway CPU/run {g / floor:.2f}x AutoGen's"
                f" alone, {g / alone:.2f}x the scenario run alone; it got {r['gateway_cores']:.2f} cores"
                f" (load average {r['load_before']:.1f} -> {r['load_after']:.1f})"
            )
    chat = {(r["layout"], r["n"]): r for r in results if r["kind"] == "chat"}
    for r in results:
        if r["kind"] == "responses" and (r["layout"], r["n"]) in chat:
            c = chat[r["layout"], r["n"]]
            print(
                f"{r['layout']}, N={r['n']}: Responses {r['runs_per_s'] / c['runs_per_s']:.2f}x the runs/s"
                f" and {r['gateway_cpu_ms_per_run'] / c['gateway_cpu_ms_per_run']:.2f}x the gateway CPU/run"
                " of Chat Completions"
            )
    one = {
        (r["n"], r["kind"], LAYOUTS[r["layout"]][1]): r for r in results if r["layout"] in ("1", "1-postgres")
    }
    for r in results:
        base = one.get((r["n"], r["kind"], LAYOUTS[r["layout"]][1]))
        if r["layout"] in ("1", "1-postgres") or base is None:
            continue
        # the ceiling on two idle cores: one process gets at most one core, the load generator
        # and scripted model (this process) and PostgreSQL share the two with the gateway
        b1 = 1000 * base["bench_process_cpu_s"] / base["n"]
        b2 = 1000 * r["bench_process_cpu_s"] / r["n"]
        g1, g2 = base["gateway_cpu_ms_per_run"], r["gateway_cpu_ms_per_run"]
        p1, p2 = base["postgres_cpu_ms_per_run"], r["postgres_cpu_ms_per_run"]
        ceiling = (2000 / (g2 + b2 + p2)) / min(1000 / g1, 2000 / (g1 + b1 + p1))
        print(
            f"{r['layout']} {ROUTES[r['kind']]}, N={r['n']}: {r['runs_per_s'] / base['runs_per_s']:.2f}x"
            " the runs/s of"
            f" {base['layout']} (it got {r['gateway_cores'] / max(base['gateway_cores'], 0.01):.2f}x the"
            f" cores; the ceiling on 2 idle cores is {ceiling:.2f}x)"
        )
    print(f"wrote {path}")
    return 0
