"""A gateway worker process: runs teams for the gateway over a pipe.

`python -m gateway._worker CONFIG_JSON`, started by `WorkerPool`. It holds its own
`ScenarioPool` (its own model clients and MCP sessions) and speaks `_wire` frames (the
messages are listed there) on the stdout it was given; anything else that writes to stdout
lands on stderr instead.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from typing import Any

from autogen_core import CancellationToken

from agentteams import ModelServerError
from teams import RunRequest

from ._config import configure_logging
from ._pool import ScenarioPool
from ._wire import frame, read_frame

_log = logging.getLogger("gateway.worker")


class _Server:
    def __init__(self, pool: ScenarioPool, writer: asyncio.StreamWriter) -> None:
        self._pool = pool
        self._writer = writer
        self._runs: dict[int, tuple[asyncio.Task[None], CancellationToken]] = {}

    def _send(self, op: str, **fields: Any) -> None:
        self._writer.write(frame({"op": op, **fields}))

    async def serve(self, reader: asyncio.StreamReader) -> None:
        self._send("ready")
        while (message := await read_frame(reader)) is not None:
            op, run_id = message["op"], message["id"]
            if op == "run":
                token = CancellationToken()
                request = RunRequest.from_json(message["request"])
                task = asyncio.create_task(self._run(run_id, token, message["scenario"], request))
                self._runs[run_id] = (task, token)
            elif run_id in self._runs:
                task, token = self._runs[run_id]
                if op == "cancel":
                    token.cancel()
                elif op == "abort":
                    task.cancel()
        # the gateway closed the pipe: it is shutting down or gone
        for task, _ in list(self._runs.values()):
            task.cancel()
        await asyncio.gather(*(task for task, _ in self._runs.values()), return_exceptions=True)

    async def _run(self, run_id: int, token: CancellationToken, scenario: str, request: RunRequest) -> None:
        try:
            async for event in self._pool.stream(scenario, request, token):
                self._send("event", id=run_id, event=event.to_json())
        except asyncio.CancelledError:
            pass  # aborted by the gateway, which no longer listens
        except KeyError:
            self._send("error", id=run_id, kind="unknown", message=scenario, url=None)
        except ModelServerError as exc:
            self._send("error", id=run_id, kind="model_server", message=str(exc), url=exc.url)
        except Exception as exc:
            _log.info("run of %s failed: %s", scenario, exc)
            self._send("error", id=run_id, kind="failed", message=f"{type(exc).__name__}: {exc}", url=None)
        finally:
            self._runs.pop(run_id, None)
            self._send("end", id=run_id)


async def _pipes() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    # the frames get fd 1's pipe to themselves; print() and stray writes go to stderr
    protocol_out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, protocol_out)
    return reader, asyncio.StreamWriter(transport, protocol, None, loop)


async def _main(config: dict[str, Any]) -> None:
    reader, writer = await _pipes()
    pool = ScenarioPool(
        config["scenario_dirs"], base_url=config["base_url"], model=config["model"], api_key=config["api_key"]
    )
    try:
        await _Server(pool, writer).serve(reader)
    finally:
        await pool.aclose()
        writer.close()


def main(argv: list[str]) -> int:
    config = json.loads(argv[0])
    # Ctrl-C reaches the whole process group; the gateway process stops its workers itself
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging(
        config["log_level"], f"%(asctime)s %(levelname)s %(name)s[worker {os.getpid()}]: %(message)s"
    )
    try:
        import uvloop
    except ImportError:
        asyncio.run(_main(config))
    else:
        uvloop.run(_main(config))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
