"""Run one piece of untrusted Python in a bubblewrap sandbox, with limits.

Each execution is a fresh process: `bwrap` with every namespace unshared (no network, own
PID space, no IPC), a read-only view of the system and of this Python installation, a
private /tmp, and one writable working directory mounted at /mnt/data. Inside, a small
launcher sets the rlimits (address space, CPU seconds, file size, processes) before the
cell runs; outside, a wall-clock deadline kills the whole sandbox and output is capped.

Why not AutoGen's code executors: LocalCommandLineCodeExecutor runs code as the user with
the user's environment and offers no seam to wrap its command in bwrap; the Docker one needs
a Docker daemon; the Jupyter one keeps a long-lived kernel that talks ZeroMQ over loopback
TCP, which a no-network namespace forbids. bubblewrap (Flatpak's sandbox, a Debian package)
is the kept mechanism; one short process per execution is the simplest thing it can hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentteams import UserError
from tools.spec import CodeSpec

logger = logging.getLogger(__name__)

WORKDIR = "/mnt/data"  # where the code runs, as OpenAI's code interpreter names it
NOBODY = 65534
_LAUNCHER = Path(__file__).with_name("_sandbox_launch.py")
_FONTS_CONF = Path(__file__).with_name("_sandbox_fonts.conf")
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")
_SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime")
_SYSTEM_DIRS_TRY = ("/etc/ld.so.conf.d", "/etc/fonts", "/etc/alternatives", "/usr/share/fonts")
_OUTPUT_KILL_FACTOR = 16  # output beyond this many times the cap stops the execution
_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
    "LANG": "C.UTF-8",
    "MPLBACKEND": "Agg",  # figures go to files; there is no display
    "MPLCONFIGDIR": "/tmp/matplotlib",
    "FONTCONFIG_FILE": "/sandbox/fonts.conf",  # the host's may be absent: fc-list would complain
    "XDG_CACHE_HOME": "/tmp/cache",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    # one BLAS thread: a thread pool per core would reserve most of the address-space limit
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


class SandboxUnavailable(UserError):
    """The isolation the `code:` section asks for cannot be set up on this machine."""


@dataclass(frozen=True)
class Execution:
    """What one execution did: its exit, its (capped) output, and why it was stopped, if it was."""

    exit_code: int | None
    stdout: str
    stderr: str
    seconds: float
    killed: str = ""  # why the sandbox was killed: a sentence, or "" when the code ended by itself
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.killed


def _bwrap_path() -> str | None:
    return shutil.which("bwrap")


def _prefixes() -> list[str]:
    """The directories this interpreter and its packages live in, outermost first."""
    found: list[str] = []
    executable = Path(sys.executable)
    for raw in (sys.prefix, sys.base_prefix, sys.exec_prefix, executable.resolve().parent.parent):
        path = os.path.realpath(raw)
        if path not in found:
            found.append(path)
        if str(raw) not in found:
            found.append(str(raw))
    kept: list[str] = []
    for path in sorted(found, key=len):
        if os.path.isdir(path) and not any(path == k or path.startswith(k + os.sep) for k in kept):
            kept.append(path)
    return kept


def _ancestors(paths: Sequence[str]) -> list[str]:
    found: list[str] = []
    for path in paths:
        for parent in reversed(Path(path).parents):
            name = str(parent)
            if (
                name != "/"
                and name not in found
                and not any(name == d or name.startswith(d + "/") for d in _SYSTEM_DIRS)
            ):
                found.append(name)
    return found


class Sandbox:
    """Runs cells under the limits of one `code:` section. Cheap to make; holds no process."""

    def __init__(self, spec: CodeSpec, *, python: str | None = None) -> None:
        self.spec = spec
        self.python = python or sys.executable
        self._bwrap = _bwrap_path() if spec.sandbox == "bwrap" else None
        self._drop_root = spec.sandbox == "bwrap" and os.geteuid() == 0

    def check(self) -> None:
        """Refuse to work when the isolation is missing, rather than run unsandboxed."""
        if self.spec.sandbox == "none":
            logger.warning(
                "code.sandbox is none: model-written code runs unsandboxed, with your files, network "
                "and environment; use it only for trusted local work"
            )
            return
        if self._bwrap is None:
            raise SandboxUnavailable(
                "the python tool runs code under bubblewrap, which is not installed: "
                "apt-get install bubblewrap (or set `code: {sandbox: none}` for trusted local use)"
            )

    async def missing_packages(self, packages: Sequence[str]) -> list[str]:
        """Which of `packages` the sandboxed interpreter cannot find."""
        if not packages:
            return []
        probe = (
            "import importlib.util, json\n"
            f"names = {list(packages)!r}\n"
            "print(json.dumps([n for n in names if importlib.util.find_spec(n.split('.')[0]) is None]))\n"
        )
        with tempfile.TemporaryDirectory(prefix="agentteams-probe-") as workdir:
            result = await self.run(probe, Path(workdir))
        if not result.ok:
            raise SandboxUnavailable(
                f"the sandbox does not start: {(result.killed or result.stderr).strip()}"
            )
        missing: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
        return missing

    def prepare(self, workdir: Path) -> None:
        """Make the working directory the sandboxed code's own (it runs as nobody under root)."""
        if not self._drop_root:
            return
        for root, dirs, files in os.walk(workdir):
            for name in [*dirs, *files]:
                os.chown(os.path.join(root, name), NOBODY, NOBODY, follow_symlinks=False)
        os.chown(workdir, NOBODY, NOBODY)
        os.chmod(workdir, 0o755)  # bwrap enters it as root without CAP_DAC_OVERRIDE

    def _command(self, cell: Path, workdir: Path) -> tuple[list[str], str | None]:
        spec = self.spec
        limits = [
            str(int(spec.memory)),
            str(math.ceil(spec.timeout)),
            str(int(spec.max_file_size)),
            str(spec.processes),
            "1" if self._drop_root else "0",
        ]
        if self._bwrap is None:
            return [self.python, "-I", str(_LAUNCHER), str(cell), *limits], str(workdir)
        # --unshare-all, except that root keeps the initial user namespace: in a new one only
        # uid 0 is mapped, and the launcher could not become nobody (see _sandbox_launch.py).
        unshare = (
            ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
            if self._drop_root
            else ["--unshare-all"]
        )
        args = [self._bwrap, *unshare, "--die-with-parent", "--new-session", "--clearenv"]
        for directory in _SYSTEM_DIRS:
            if os.path.islink(directory):
                args += ["--symlink", os.readlink(directory), directory]
            elif os.path.isdir(directory):
                args += ["--ro-bind", directory, directory]
        for file in _SYSTEM_FILES:
            args += ["--ro-bind-try", file, file]
        for directory in _SYSTEM_DIRS_TRY:
            args += ["--ro-bind-try", directory, directory]
        # the private /tmp first: an interpreter installed under /tmp is then bound over it
        args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp"]
        # bwrap makes missing mount points 0700 when run as root; the code runs as nobody
        for directory in _ancestors([*_prefixes(), "/sandbox/x", WORKDIR]):
            if directory != "/tmp":
                args += ["--perms", "0755", "--dir", directory]
        for prefix in _prefixes():
            args += ["--ro-bind", prefix, prefix]
        args += [
            "--ro-bind",
            str(_LAUNCHER),
            "/sandbox/launch.py",
            "--ro-bind",
            str(cell),
            "/sandbox/main.py",
        ]
        args += ["--ro-bind", str(_FONTS_CONF), "/sandbox/fonts.conf"]
        args += ["--bind", str(workdir), WORKDIR, "--chdir", WORKDIR]
        if self._drop_root:
            args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        for key, value in _ENV.items():
            args += ["--setenv", key, value]
        args += [self.python, "-I", "/sandbox/launch.py", "/sandbox/main.py", *limits]
        return args, None

    async def run(self, code: str, workdir: Path) -> Execution:
        """Run `code` with `workdir` as its current (and only writable) directory."""
        self.prepare(workdir)
        with tempfile.TemporaryDirectory(prefix="agentteams-cell-") as cell_dir:
            cell = Path(cell_dir) / "main.py"
            cell.write_text(code, encoding="utf-8")
            os.chmod(cell_dir, 0o755)
            cell.chmod(0o644)
            command, cwd = self._command(cell, workdir)
            env = dict(_ENV) if self._bwrap is None else {"PATH": _ENV["PATH"]}
            if self._bwrap is None:
                env["HOME"] = env["TMPDIR"] = str(workdir)
                for key in ("MPLCONFIGDIR", "XDG_CACHE_HOME", "FONTCONFIG_FILE"):
                    env.pop(key)
            return await self._execute(command, cwd, env)

    async def _execute(self, command: list[str], cwd: str | None, env: dict[str, str]) -> Execution:
        cap = int(self.spec.max_output)
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=cwd,
            env=env,
            start_new_session=True,  # one process group to kill, whatever the code forks
        )
        kept: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
        seen = 0
        killed = ""
        flooded = asyncio.Event()

        async def drain(name: str, stream: asyncio.StreamReader) -> None:
            nonlocal seen
            while chunk := await stream.read(65536):
                room = cap - len(kept["stdout"]) - len(kept["stderr"])
                if room > 0:
                    kept[name] += chunk[:room]
                seen += len(chunk)
                if seen > cap * _OUTPUT_KILL_FACTOR:
                    flooded.set()
                    return

        assert process.stdout is not None and process.stderr is not None
        readers: asyncio.Future[Any] = asyncio.gather(
            drain("stdout", process.stdout), drain("stderr", process.stderr)
        )
        flood: asyncio.Future[Any] = asyncio.ensure_future(flooded.wait())
        try:
            done, _ = await asyncio.wait(
                {readers, flood}, timeout=self.spec.timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if flood in done:
                killed = f"stopped: it printed more than {seen} bytes (output is capped at {cap})"
            elif readers not in done:
                killed = f"killed: still running after the {self.spec.timeout:g} s time limit"
            if killed:
                self._kill(process)
            await process.wait()
        finally:
            flood.cancel()
            if process.returncode is None:
                self._kill(process)
                await process.wait()
            readers.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await readers
        code = process.returncode
        if not killed and code is not None and (code < 0 or code > 128):
            signum = -code if code < 0 else code - 128
            if signum in (signal.SIGXCPU, signal.SIGKILL):
                killed = f"killed: used more than {math.ceil(self.spec.timeout)} s of CPU time"
        return Execution(
            exit_code=code,
            stdout=kept["stdout"].decode("utf-8", "replace"),
            stderr=kept["stderr"].decode("utf-8", "replace"),
            seconds=round(time.perf_counter() - started, 3),
            killed=killed,
            truncated=seen > cap,
        )

    @staticmethod
    def _kill(process: asyncio.subprocess.Process) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
