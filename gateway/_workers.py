"""Run teams in worker processes, so a gateway uses more than one core.

One Python process runs one AutoGen runtime at a time on one core; with `--workers N` the
gateway process keeps HTTP, keys, limits and the database, and hands each run to the least
busy of N `gateway._worker` processes. A worker that dies fails only its own runs, and a
new one is started for the next run.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AsyncExitStack
from typing import Any

from autogen_core import CancellationToken

from agentteams import ModelServerUnavailable
from scenarios import ScenarioInfo, list_scenarios, load_scenario
from serving import open_endpoint
from teams import RunEvent, RunRequest, event_from_json

from ._runner import RemoteRunError
from ._wire import frame, read_frame

__all__ = ["WorkerPool"]

_log = logging.getLogger(__name__)

_START_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 15.0


class _Worker:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.runs: dict[int, asyncio.Queue[dict[str, Any]]] = {}
        self.alive = True
        assert proc.stdin is not None and proc.stdout is not None
        self._stdin = proc.stdin
        self._stdout = proc.stdout
        self._reader: asyncio.Task[None] | None = None

    async def wait_ready(self) -> None:
        message = await asyncio.wait_for(read_frame(self._stdout), _START_TIMEOUT_S)
        if message != {"op": "ready"}:
            code = await self.proc.wait()
            raise RuntimeError(f"gateway worker (pid {self.proc.pid}) exited at start with status {code}")
        self._reader = asyncio.create_task(self._read(), name=f"worker:{self.proc.pid}")

    def send(self, op: str, run_id: int, **fields: Any) -> None:
        if self.alive:
            self._stdin.write(frame({"op": op, "id": run_id, **fields}))

    async def _read(self) -> None:
        while (message := await read_frame(self._stdout)) is not None:
            queue = self.runs.get(message["id"])
            if queue is not None:
                queue.put_nowait(message)
        self.alive = False
        code = await self.proc.wait()
        if self.runs:
            _log.error(
                "gateway worker (pid %d) exited with status %s during %d run(s)",
                self.proc.pid,
                code,
                len(self.runs),
            )
        reason = (
            f"the gateway worker process running this team (pid {self.proc.pid}) exited with status {code}"
        )
        for run_id, queue in self.runs.items():
            queue.put_nowait({"op": "error", "id": run_id, "kind": "failed", "message": reason, "url": None})
            queue.put_nowait({"op": "end", "id": run_id})

    async def stop(self) -> None:
        self.alive = False
        self._stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), _STOP_TIMEOUT_S)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        if self._reader is not None:
            await self._reader


class WorkerPool:
    """Implements ScenarioRunner over `workers` processes, each with its own ScenarioPool."""

    def __init__(
        self,
        scenario_dirs: Iterable[str | os.PathLike[str]] = (),
        *,
        workers: int,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        log_level: str = "warning",
    ) -> None:
        self._dirs = [str(d) for d in scenario_dirs]
        self._size = workers
        self._config: dict[str, Any] = {
            "scenario_dirs": self._dirs,
            "base_url": base_url,
            "model": model,
            "api_key": api_key,
            "log_level": log_level,
        }
        self._infos = list_scenarios(self._dirs)
        self._names = {info.name for info in self._infos}
        self._workers: list[_Worker] = []
        self._env = dict(os.environ)
        self._stack = AsyncExitStack()
        self._ids = itertools.count(1)
        self._spawn_lock = asyncio.Lock()

    def scenarios(self) -> Sequence[ScenarioInfo]:
        return self._infos

    def load(self) -> dict[int, int]:
        """Runs in progress per live worker process id."""
        return {w.proc.pid: len(w.runs) for w in self._workers if w.alive}

    async def start(self) -> None:
        await self._share_bundled_server()
        self._workers = list(await asyncio.gather(*(self._spawn() for _ in range(self._size))))
        _log.info("%d gateway workers running: pids %s", self._size, ", ".join(map(str, self.load())))

    async def _share_bundled_server(self) -> None:
        """Open `auto` here, once, so that the workers do not each start a model server."""
        if self._config["base_url"] is not None or os.environ.get("LLM_BASE_URL", "auto").strip() != "auto":
            return
        specs = [load_scenario(info.path).spec for info in self._infos]
        if not any(
            spec.models[m].base_url.strip() == "auto" for spec in specs for m in spec.used_model_names()
        ):
            return
        endpoint = await self._stack.enter_async_context(open_endpoint("auto", "auto"))
        self._env["LLM_BASE_URL"] = endpoint.base_url
        _log.info("workers share the bundled model server at %s", endpoint.base_url)

    async def _spawn(self) -> _Worker:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway._worker",
            json.dumps(self._config),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=self._env,
        )
        worker = _Worker(proc)
        try:
            await worker.wait_ready()
        except BaseException:
            if proc.returncode is None:
                proc.kill()
            raise
        return worker

    async def _least_busy(self) -> _Worker:
        async with self._spawn_lock:
            for i, worker in enumerate(self._workers):
                if not worker.alive:
                    _log.warning("starting a gateway worker in place of pid %d", worker.proc.pid)
                    self._workers[i] = await self._spawn()
        return min((w for w in self._workers if w.alive), key=lambda w: len(w.runs))

    async def stream(
        self, name: str, request: RunRequest, cancel: CancellationToken
    ) -> AsyncIterator[RunEvent]:
        if name not in self._names:
            raise KeyError(name)
        worker = await self._least_busy()
        run_id = next(self._ids)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        worker.runs[run_id] = queue
        worker.send("run", run_id, scenario=name, request=request.to_json())
        cancel.add_callback(lambda: worker.send("cancel", run_id))
        ended = False  # the worker is done with the run: no abort to send
        try:
            while True:
                message = await queue.get()
                if message["op"] == "event":
                    yield event_from_json(message["event"])
                elif message["op"] == "error":
                    ended = True
                    raise _error(message["kind"], message["message"], message["url"])
                elif message["op"] == "end":
                    ended = True
                    return
        finally:
            worker.runs.pop(run_id, None)
            if not ended:
                worker.send("abort", run_id)

    async def aclose(self) -> None:
        workers, self._workers = self._workers, []
        await asyncio.gather(*(w.stop() for w in workers))
        await self._stack.aclose()


def _error(kind: str, message: str, url: str | None) -> Exception:
    if kind == "unknown":
        return KeyError(message)
    if kind == "model_server":
        return ModelServerUnavailable(message, url=url or "the model server")
    return RemoteRunError(message)
