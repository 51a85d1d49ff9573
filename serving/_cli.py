"""`python -m serving up | status | down | check`."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from serving._embedded import (
    DEFAULT_CTX,
    DEFAULT_PARALLEL,
    SERVER_NAME,
    EmbeddedServer,
    check_port_free,
    stop_pid,
)
from serving._errors import EndpointError
from serving._models import PACKAGED_MODELS, ModelChoice, prepare_model_file
from serving._state import ServerState, clear_state, read_state, state_dir, uptime, write_state

if TYPE_CHECKING:
    from rich.console import Console

    from serving._check import CheckReport

# `status`, `down` and `--help` import neither openai, AutoGen, httpx nor a pydantic model
# beyond the state file's: `check` imports openai when run, `up` the front (serving._bundle)
# and the vLLM profiles when it starts one


class _Lines:
    """Plain lines to stdout or stderr (looked up at each call, so tests can capture them).

    Not rich's Console: its import is a third of `serving status`'s start; rich is imported
    only for the progress bar and the check table.
    """

    def __init__(self, stderr: bool = False) -> None:
        self.stderr = stderr

    def print(self, line: object = "") -> None:
        stream = sys.stderr if self.stderr else sys.stdout
        stream.write(f"{line}\n")
        stream.flush()


out = _Lines()
err = _Lines(stderr=True)


def _rich_console(stderr: bool = False) -> Console:
    from rich.console import Console

    # no markup: messages carry brackets (`pip install -e ".[vllm]"`) and JSON
    return Console(stderr=stderr, highlight=False, markup=False, soft_wrap=True)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m serving", description="The bundled model server.")
    sub = ap.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the bundled server (embedded CPU server, or vLLM)")
    up.add_argument("--engine", choices=["embedded", "vllm"], default="embedded")
    up.add_argument(
        "--model", help=f"packaged model ({', '.join(PACKAGED_MODELS)}) or a path to a .gguf file"
    )
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, help="default 8080 (embedded), 8000 (vllm)")
    up.add_argument("--ctx", type=int, default=DEFAULT_CTX, help="context tokens per slot (embedded)")
    up.add_argument("--parallel", type=int, default=DEFAULT_PARALLEL, help="server slots (embedded)")
    up.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads (embedded)")
    up.add_argument("--detach", action="store_true", help="return once ready; stop with `down`")
    up.add_argument("--timeout", type=float, help="seconds to wait for health (120 embedded, 900 vllm)")
    up.add_argument(
        "--profile",
        action="append",
        help="vLLM profile from serving/profiles.yaml; repeat it to serve several models behind one URL",
    )
    up.add_argument("--no-embeddings", action="store_true", help="serve the chat model only (embedded)")
    up.add_argument(
        "--embedding-threads",
        type=int,
        help="CPU threads of the embedding model (embedded; default: every core; its waiting threads sleep)",
    )
    up.add_argument("--print-command", action="store_true", help="print the vllm command(s), do not run them")
    up.add_argument("--max-model-len", type=int, help="override the profile's (vllm)")
    up.add_argument("--tensor-parallel-size", type=int, help="override the profile's (vllm)")
    up.add_argument("--chat-template-dir", type=Path, help="vLLM's examples/ directory (vllm)")

    sub.add_parser("status", help="show the bundled server started with `up`")
    sub.add_parser("down", help="stop the bundled server started with `up`")

    check = sub.add_parser("check", help="probe an OpenAI-compatible server for what agents need")
    check.add_argument("--base-url", default=os.environ.get("LLM_BASE_URL", "auto"))
    check.add_argument("--model", default=os.environ.get("LLM_MODEL", "auto"))
    check.add_argument("--api-key", default=os.environ.get("LLM_API_KEY", "EMPTY"))
    return ap


def _assemble_with_progress(name: str | None) -> ModelChoice:
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=_rich_console(stderr=True),
        transient=True,
    ) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = int(bar.add_task(f"{stage} the packaged model", total=total))
            bar.update(tasks[stage], completed=done)  # type: ignore[arg-type]

        return prepare_model_file(name, progress)


def _rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _refuse_if_running() -> None:
    state = read_state()
    if state is not None:
        raise EndpointError(
            f"a bundled server is already running at {state.url} (pid {state.pid}, {state.model}); "
            "`python -m serving down` stops it",
            url=state.url,
        )


def _serve_foreground(server: EmbeddedServer, state: ServerState) -> int:
    """Keep the server until Ctrl-C / SIGTERM, or report its crash."""

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        while server.wait(1.0) is None:
            pass
        if read_state() is None:  # `down` stopped it
            return 0
        err.print(f"error: {server.crash_message()}")
        return 1
    except KeyboardInterrupt:
        err.print("stopping ...")
        return 0
    finally:
        server.stop()
        clear_state(server.pid)
        signal.signal(signal.SIGTERM, previous)


def _up(args: argparse.Namespace) -> int:
    from serving._bundle import EmbeddedOptions, bundled_server, embedded_plan, embedding_model_or_none

    if args.engine == "vllm":
        return _up_vllm(args)
    if args.profile or args.print_command:
        raise EndpointError("--profile and --print-command need --engine vllm", url="auto")
    _refuse_if_running()
    choice = _assemble_with_progress(args.model)
    embedding = None if args.no_embeddings else embedding_model_or_none()
    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    options = EmbeddedOptions(
        ctx=args.ctx,
        parallel=args.parallel,
        threads=args.threads,
        embedding_threads=args.embedding_threads or EmbeddedOptions().embedding_threads,
    )
    plan = embedded_plan(
        choice.path,
        choice.alias,
        embedding,
        host=args.host,
        port=args.port or 8080,
        options=options,
        log_dir=directory,
    )
    server = bundled_server(plan, alias=choice.alias, log_path=directory / "server.log", detach=args.detach)
    started = time.perf_counter()
    check_port_free(plan.host, plan.port)
    err.print(f"loading {', '.join(b.model for b in plan.backends)} on {args.threads} threads")
    server.start(timeout=args.timeout or 120.0, status=lambda line: err.print(line))
    assert server.pid is not None
    models = ", ".join(b.model for b in plan.backends)
    state = ServerState(
        server.base_url, server.pid, models, "embedded", time.time(), str(server.config.log_path)
    )
    write_state(state)
    out.print(
        f"{SERVER_NAME} ready at {server.base_url} (pid {server.pid}, models {models}, "
        f"{time.perf_counter() - started:.1f} s)"
    )
    if args.detach:
        out.print("`python -m serving down` stops it")
        return 0
    out.print("Ctrl-C stops it")
    return _serve_foreground(server, state)


def _up_vllm(args: argparse.Namespace) -> int:
    from serving._bundle import bundled_server, vllm_plan

    if not args.profile:
        raise EndpointError("--engine vllm needs --profile NAME (see serving/profiles.yaml)", url="auto")
    port = args.port or 8000
    directory = state_dir()
    plan = vllm_plan(
        args.profile,
        host=args.host,
        port=port,
        log_dir=directory,
        max_model_len=args.max_model_len,
        tensor_parallel_size=args.tensor_parallel_size,
        chat_template_dir=args.chat_template_dir,
    )
    if args.print_command:
        for backend in plan.backends:
            assert backend.command is not None
            out.print(shlex.join(backend.command))
        return 0
    _refuse_if_running()
    for backend in plan.backends:
        assert backend.command is not None
        from serving._vllm import check_launchable

        backend.command = check_launchable(backend.command)
    directory.mkdir(parents=True, exist_ok=True)
    models = ", ".join(b.model for b in plan.backends)
    server = bundled_server(
        plan,
        alias=models,
        log_path=directory / "server.log",
        detach=args.detach,
        name=f"vLLM front ({', '.join(args.profile)})",
    )
    for backend in plan.backends:
        err.print(f"starting: {shlex.join(backend.command or [])}")
    server.start(timeout=args.timeout or 900.0, status=lambda line: err.print(line))
    assert server.pid is not None
    state = ServerState(server.base_url, server.pid, models, "vllm", time.time(), str(server.config.log_path))
    write_state(state)
    out.print(f"vLLM ready at {server.base_url} (pid {server.pid}, models {models})")
    if args.detach:
        return 0
    return _serve_foreground(server, state)


def _backends(url: str) -> dict[str, dict[str, object]]:
    # http.client, not httpx: importing httpx (which imports click and rich's console for its
    # own CLI) doubled the start time of `serving status`
    import http.client
    import json
    from urllib.parse import urlsplit

    parts = urlsplit(url.removesuffix("/v1") + "/health")
    connection = (http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection)(
        parts.hostname or "127.0.0.1", parts.port, timeout=5.0
    )
    try:
        connection.request("GET", parts.path)
        return dict(json.loads(connection.getresponse().read()).get("backends", {}))
    except (OSError, http.client.HTTPException, ValueError, AttributeError):
        return {}
    finally:
        connection.close()


def _status() -> int:
    state = read_state()
    if state is None:
        out.print("no bundled server is running (`python -m serving up` starts one)")
        return 1
    rss = _rss_mib(state.pid)
    out.print(f"running: {state.url}")
    out.print(f"  engine  {state.engine}")
    out.print(f"  model   {state.model}")
    out.print(f"  pid     {state.pid}" + (f" (RSS {rss:.0f} MiB)" if rss is not None else ""))
    out.print(f"  uptime  {uptime(state):.0f} s")
    if state.log:
        out.print(f"  log     {state.log}")
    for model, info in _backends(state.url).items():
        pid = info.get("pid")
        backend_rss = _rss_mib(pid) if isinstance(pid, int) else None
        out.print(
            f"  backend {model}: {info.get('status')}, pid {pid}"
            + (f" (RSS {backend_rss:.0f} MiB)" if backend_rss is not None else "")
        )
    return 0


def _down() -> int:
    state = read_state()
    if state is None:
        out.print("no bundled server is running")
        return 0
    stopped = stop_pid(state.pid)
    clear_state(state.pid)
    if not stopped:
        err.print(f"error: could not stop pid {state.pid}")
        return 1
    out.print(f"stopped the bundled server at {state.url} (pid {state.pid})")
    return 0


def print_report(report: CheckReport) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"{report.base_url}  model {report.model}")
    table.add_column("check")
    table.add_column("result")
    table.add_column("seconds", justify="right")
    table.add_column("detail", overflow="fold")
    for r in report.results:
        mark = Text("ok", "green") if r.ok else (Text("FAIL", "red") if r.required else Text("no", "yellow"))
        table.add_row(r.name, mark, f"{r.seconds:.1f}", r.detail)
    _rich_console().print(table)


async def _check(args: argparse.Namespace) -> int:
    from serving._check import run_check
    from serving._endpoint import open_endpoint

    async with open_endpoint(args.base_url, args.model, args.api_key) as ep:
        if ep.started_server:
            err.print(f"(started the {SERVER_NAME} for this check; it stops afterwards)")
        report = await run_check(ep.base_url, ep.model, ep.api_key)
    print_report(report)
    if not report.ok:
        failed = ", ".join(r.name for r in report.results if r.required and not r.ok)
        err.print(f"error: {report.base_url} failed: {failed}")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "up":
            return _up(args)
        if args.command == "status":
            return _status()
        if args.command == "down":
            return _down()
        import asyncio  # only `check` needs an event loop

        return asyncio.run(_check(args))
    except EndpointError as exc:
        err.print(f"error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
