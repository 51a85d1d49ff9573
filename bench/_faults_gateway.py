"""The gateway row of `python -m bench faults`: SIGKILL with thread runs in flight, restart."""

from __future__ import annotations

import re
import select
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from serving.testing import Fault, Reply, ScriptedModelServer, Step, message_text

RUNS = 4  # thread runs in flight when the gateway is killed
# seconds from the restarted process answering to every interrupted run reported failed: it
# does that at start, so the margin (2 s) is the budget. The restart itself (Python and
# the gateway's imports, ~5 s on an idle machine, far longer on a busy one) is shown apart.
RECOVERY_BUDGET = 2.0
FINAL = "Final plan: Day 1 Kathmandu, Day 2 Bhaktapur, Day 3 Pokhara."
_LINES = {  # travel_planning's agents, recognised by their system messages
    "trip planner": ("planner_agent", "Day 1: Kathmandu. Day 2: Bhaktapur. Day 3: Pokhara."),
    "local guide": ("local_agent", "Visit Asan market on day 1."),
    "communicate": ("language_agent", "Namaste = hello."),
    "final travel plan": ("travel_summary_agent", FINAL + "\nTERMINATE"),
}


class _Gated:
    """Every local_agent call hangs until `release` is set; the others answer in character."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.hung = 0
        self.lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Step:
        system = " ".join(message_text(m) for m in body["messages"] if m.get("role") == "system")
        for key, (agent, line) in _LINES.items():
            if key in system:
                if agent == "local_agent" and not self.release.is_set():
                    with self.lock:
                        self.hung += 1
                    return Fault.hang()
                return Reply.text(line)
        raise AssertionError(f"unknown agent prompt: {system[:200]}")


@contextmanager
def _gateway(db: Path, model: ScriptedModelServer, log: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    command = [sys.executable, "-m", "gateway", "--port", "0", "--db", str(db), "--base-url", model.base_url]
    command += ["--model", model.model, "--log-level", "warning"]
    with log.open("a") as errors:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        match = re.search(r"base_url (http://\S+)/v1", proc.stdout.readline() if ready else "")
        assert match, f"no address from the gateway; log:\n{log.read_text()}"
        url = match.group(1)
        _until(lambda: _get(f"{url}/health") == 200, 60, "the gateway to be healthy")
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()


def _get(url: str) -> int:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.TransportError:
        return 0


def _until(check: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {within:g} s waiting for {what}")
        time.sleep(0.05)


def gateway_sigkill() -> Any:
    import openai
    from openai.types.beta import thread_create_params

    from bench.faults import Outcome

    warnings.filterwarnings("ignore", "The Assistants API is deprecated", DeprecationWarning)
    script = _Gated()
    with tempfile.TemporaryDirectory() as tmp, ScriptedModelServer(script) as model:
        db, log = Path(tmp) / "gateway.sqlite3", Path(tmp) / "gateway.log"
        with _gateway(db, model, log) as (proc, url):
            with openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as sdk:
                task: list[thread_create_params.Message] = [
                    {"role": "user", "content": "Plan a 3 day trip to Nepal."}
                ]
                threads = [sdk.beta.threads.create(messages=task) for _ in range(RUNS)]
                runs = [sdk.beta.threads.runs.create(t.id, assistant_id="travel_planning") for t in threads]
                _until(lambda: script.hung >= RUNS, 60, "every run to reach its hanging model call")
                seen = {
                    t.id: [m.id for m in sdk.beta.threads.messages.list(thread_id=t.id).data] for t in threads
                }
            proc.kill()  # SIGKILL: no shutdown code runs
            killed = time.monotonic()
            proc.wait(30)
        script.release.set()
        with _gateway(db, model, log) as (_, url):
            ready = time.monotonic()
            with openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as sdk:
                after = [sdk.beta.threads.runs.retrieve(r.id, thread_id=r.thread_id) for r in runs]
                seconds = time.monotonic() - ready
                kept = {
                    t.id: {m.id for m in sdk.beta.threads.messages.list(thread_id=t.id).data} for t in threads
                }
                started = time.monotonic()
                rerun = sdk.beta.threads.runs.create_and_poll(
                    thread_id=threads[0].id, assistant_id="travel_planning", poll_interval_ms=50
                )
                rerun_s = time.monotonic() - started
                up = _get(f"{url}/health") == 200
    lost = sum(len(set(ids) - kept[tid]) for tid, ids in seen.items())
    failed = [r for r in after if r.status == "failed" and r.last_error is not None]
    reason = (
        failed[0].last_error.message
        if failed and failed[0].last_error
        else f"statuses {[r.status for r in after]}"
    )
    recovered = rerun.status == "completed" and seconds <= RECOVERY_BUDGET
    ok = len(failed) == RUNS and lost == 0 and up and recovered
    return Outcome(
        f"gateway SIGKILL, {RUNS} runs in flight, restart",
        "failed" if len(failed) == RUNS else "?",
        reason,
        up,
        lost,
        round(seconds, 2),
        RECOVERY_BUDGET,
        f"restart {ready - killed:.1f} s; rerun {rerun.status} in {rerun_s:.2f} s",
        ok,
        {"messages_seen": sum(len(v) for v in seen.values()), "runs_failed": len(failed)},
    )
