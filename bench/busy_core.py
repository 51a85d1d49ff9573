"""The chat backend's reply time on a quiet machine and with one core kept busy, for each way
its OpenMP threads may wait at a barrier.

`python -m bench busy_core [--rounds 1] [--replies 2] [--max-tokens 32] [--load python|stress-ng]`
starts the packaged chat model once per setting and round (settings interleaved, so drift
hits all alike), times the same chat completions with the machine quiet and again while a
busy-loop process (or `stress-ng --cpu 1`) keeps one core busy, prints the medians and
writes bench/results/busy_core.json. "ours" is what `serving._child` sets when the user sets
neither variable.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from bench._report import print_table, write_json
from serving._embedded import EmbeddedServer, ServerConfig, free_port
from serving._models import prepare_model_file

SETTINGS: dict[str, dict[str, str]] = {
    # an empty value is invalid to libgomp, which then uses its default; serving._child keeps
    # a variable the user set, so this is the backend as it ran before it set one
    "unset (before)": {"GOMP_SPINCOUNT": ""},
    "GOMP_SPINCOUNT=300000": {"GOMP_SPINCOUNT": "300000"},
    "ours": {},
    "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
}
_WAIT_VARS = ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")
PROMPT = "You are planning a trip for a traveller who likes mountains and markets. " * 6


@dataclass
class Timing:
    setting: str
    busy: bool
    seconds: float
    decode_tok_s: float


@contextlib.contextmanager
def _wait_env(extra: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.pop(k) for k in _WAIT_VARS if k in os.environ}
    os.environ.update(extra)
    try:
        yield
    finally:
        for k in _WAIT_VARS:
            os.environ.pop(k, None)
        os.environ.update(saved)


@contextlib.contextmanager
def _busy_core(on: bool, load: str) -> Iterator[None]:
    if not on:
        yield
        return
    command = (
        ["stress-ng", "--cpu", "1", "--quiet"]
        if load == "stress-ng"
        else [sys.executable, "-c", "while True: pass"]
    )
    proc = subprocess.Popen(command)
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


def _replies(base_url: str, alias: str, n: int, max_tokens: int) -> list[tuple[float, float]]:
    out = []
    with httpx.Client(timeout=900, trust_env=False) as client:
        warm_up = {"model": alias, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
        client.post(f"{base_url}/chat/completions", json=warm_up).raise_for_status()
        for i in range(n):
            body = {
                "model": alias,
                "messages": [{"role": "user", "content": f"{PROMPT}Plan day {i + 1} of a trip to Nepal."}],
                "max_tokens": max_tokens,
                "temperature": 0,
            }
            start = time.perf_counter()
            reply = client.post(f"{base_url}/chat/completions", json=body).raise_for_status().json()
            out.append((time.perf_counter() - start, float(reply["timings"]["predicted_per_second"])))
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench busy_core", description=__doc__)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--replies", type=int, default=2, help="timed replies per server start")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument(
        "--load", choices=["python", "stress-ng"], default="python", help="what keeps a core busy"
    )
    args = ap.parse_args(argv)
    model = prepare_model_file(None)
    timings: list[Timing] = []
    for _ in range(args.rounds):
        for busy in (False, True):
            for name, extra in SETTINGS.items():
                with _wait_env(extra):
                    server = EmbeddedServer(ServerConfig(model.path, model.alias, port=free_port(), ctx=4096))
                    server.start()
                try:
                    with _busy_core(busy, args.load):
                        replies = _replies(server.base_url, model.alias, args.replies, args.max_tokens)
                    timings += [Timing(name, busy, seconds, tok_s) for seconds, tok_s in replies]
                finally:
                    server.stop()
                print(f"{name:32} {'one core busy' if busy else 'quiet':14} done", file=sys.stderr)

    def p50(name: str, busy: bool, field: str = "seconds") -> float:
        picked = [t for t in timings if t.setting == name and t.busy == busy]
        return statistics.median(float(getattr(t, field)) for t in picked)

    rows = [
        [
            name,
            p50(name, False),
            p50(name, True),
            f"{p50(name, True) / p50(name, False):.1f}x",
            f"{p50(name, False) / p50('ours', False):.2f}x",
            f"{p50(name, True) / p50('ours', True):.2f}x",
            f"{p50(name, False, 'decode_tok_s'):.1f} / {p50(name, True, 'decode_tok_s'):.1f}",
        ]
        for name in SETTINGS
    ]
    print_table(
        f"chat reply ({args.max_tokens} tokens), {os.cpu_count()} threads, busy core: {args.load}, median of "
        f"{args.rounds * args.replies}, load {os.getloadavg()[0]:.1f} at the end",
        ["OpenMP wait", "quiet s", "busy core s", "busy/quiet", "quiet vs ours", "busy vs ours"]
        + ["decode tok/s quiet / busy"],
        rows,
    )
    write_json("busy_core", {"timings": [t.__dict__ for t in timings]})
    return 0
