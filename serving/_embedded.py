"""The embedded CPU server as a child process: start, wait for health, detect a crash, stop."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from serving._errors import ServingError

SERVER_NAME = "embedded model server (llama.cpp via xllamacpp)"
# a travel-planning round re-sends the whole history: 8k tokens per conversation leaves room
DEFAULT_CTX = 8192
# one slot: with the shared_prefix layout all agents extend one cached prompt (see bench.model)
DEFAULT_PARALLEL = 1
START_TIMEOUT = 120.0

Status = Callable[[str], None]


@dataclass(frozen=True)
class ServerConfig:
    model_path: Path
    alias: str
    host: str = "127.0.0.1"
    port: int = 8080
    ctx: int = DEFAULT_CTX
    parallel: int = DEFAULT_PARALLEL
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    log_path: Path | None = None
    detach: bool = False  # survive this process (`up --detach`); otherwise die with it
    metrics: bool = False  # /metrics, e.g. prompt tokens processed (bench.model)
    # SIGTERM when the thread that started it ends (Linux): for commands (vLLM) that have no
    # --parent-pid of their own; start such a process from a thread that lives as long as it
    die_with_parent: bool = False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def check_port_free(host: str, port: int) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is not "in use"
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ServingError(
                    f"port {port} on {host} is already in use; stop what listens there "
                    "(`python -m serving down` if it is the bundled server) or pick another with --port",
                    url=f"http://{host}:{port}/v1",
                ) from None
            raise ServingError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def log_tail(path: Path | None, lines: int = 40) -> str:
    """The most telling line of a server log: the last one mentioning an error, else the last one."""
    if path is None:
        return ""
    try:
        tail = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    tail = [line.strip() for line in tail if line.strip()]
    for line in reversed(tail):
        if "error" in line.lower() or "failed" in line.lower():
            return line
    return tail[-1] if tail else ""


class EmbeddedServer:
    """llama.cpp's OpenAI-compatible server for one GGUF model, in a child process."""

    def __init__(
        self, config: ServerConfig, *, command: Sequence[str] | None = None, name: str = SERVER_NAME
    ) -> None:
        self.config = config
        self.name = name
        self._command = list(command) if command is not None else None  # another server (vLLM, tests)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.config.host}:{self.config.port}/v1"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def command(self) -> list[str]:
        if self._command is not None:
            return self._command
        c = self.config
        argv = [sys.executable, "-m", "serving._child", "--model", str(c.model_path), "--alias", c.alias]
        argv += ["--host", c.host, "--port", str(c.port), "--ctx", str(c.ctx)]
        argv += ["--parallel", str(c.parallel), "--threads", str(c.threads)]
        if c.metrics:
            argv.append("--metrics")
        if not c.detach:
            argv += ["--parent-pid", str(os.getpid())]
        return argv

    def describe(self) -> str:
        return f"the {self.name} (pid {self.pid}, model {self.config.alias}) at {self.base_url}"

    def exit_code(self) -> int | None:
        return self._proc.poll() if self._proc else None

    @property
    def log_path(self) -> Path | None:
        return self.config.log_path

    def wait(self, timeout: float | None) -> int | None:
        """The exit code once the process ends within `timeout` seconds, else None."""
        if self._proc is None:
            return None
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def crash_message(self) -> str | None:
        code = self.exit_code()
        if code is None:
            return None
        detail = log_tail(self.config.log_path)
        where = f"; log {self.config.log_path}" if self.config.log_path else ""
        return (
            f"{self.describe()} exited with code {code} during the run"
            + (f": {detail}" if detail else "")
            + where
        )

    def start(self, timeout: float = START_TIMEOUT, status: Status | None = None) -> None:
        self.launch(status)
        self.wait_ready(timeout, status)

    def launch(self, status: Status | None = None) -> None:
        """Start the process (call from a thread that outlives it: see `die_with_parent`)."""
        c = self.config
        if self._command is None and not c.model_path.is_file():
            raise ServingError(f"model file {c.model_path} does not exist")
        check_port_free(c.host, c.port)
        if status and self._command is None:
            size = c.model_path.stat().st_size / 2**30
            status(f"loading {c.alias} ({size:.1f} GiB) on {c.threads} threads")
        log = open(c.log_path, "wb") if c.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self._proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=c.detach,
                preexec_fn=_die_with_parent if c.die_with_parent else None,
            )
        finally:
            if c.log_path:
                log.close()  # type: ignore[union-attr]

    def wait_ready(self, timeout: float = START_TIMEOUT, status: Status | None = None) -> None:
        self._wait_healthy(timeout)
        if status:
            status(f"ready at {self.base_url}")

    def _wait_healthy(self, timeout: float) -> None:
        import httpx  # here, not at import: `python -m serving status` starts at once

        deadline = time.monotonic() + timeout
        health = self.base_url.removesuffix("/v1") + "/health"
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while True:
                code = self.exit_code()
                if code is not None:
                    detail = log_tail(self.config.log_path)
                    raise ServingError(
                        f"the {self.name} for {self.config.alias} exited with code {code} while starting"
                        + (f": {detail}" if detail else ""),
                        url=self.base_url,
                    )
                try:
                    if client.get(health).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise ServingError(
                        f"the {self.name} did not become healthy within {timeout:.0f} s"
                        + (f"; log {self.config.log_path}" if self.config.log_path else ""),
                        url=self.base_url,
                    )
                time.sleep(0.1)  # polling the child's health endpoint; there is no event to wait on

    def stop(self, timeout: float = 15.0) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def stop_pid(pid: int, timeout: float = 15.0) -> bool:
    """Stop a server this process did not start (from the state file); True if it is gone."""
    from serving._state import pid_alive

    group = pid if _own_group(pid) else None
    try:
        if group is not None:
            os.killpg(group, signal.SIGTERM)
        else:
            os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    try:
        if group is not None:
            os.killpg(group, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    return not pid_alive(pid)


def _own_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except OSError:
        return False
