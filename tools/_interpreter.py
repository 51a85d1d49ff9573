"""The `python` tool: a code interpreter whose executions share one sandboxed working directory.

One `CodeSession` per run: the files a thread's messages attach are copied into its working
directory first; each execution's new or changed files are collected (and saved under the
run's output directory when there is one) as `ProducedFile`s.
"""

from __future__ import annotations

import base64
import logging
import mimetypes
import os
import shutil
import stat
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autogen_core.tools import FunctionTool

from agentteams import AgentTeamsError
from tools._registry import _with_documented_parameters
from tools._sandbox import WORKDIR, Execution, Sandbox
from tools.spec import CODE_TOOL

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InputFile:
    """A file given to the code: it appears in the working directory under `name`."""

    name: str
    data: bytes

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "data": base64.b64encode(self.data).decode("ascii")}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> InputFile:
        return cls(data["name"], base64.b64decode(data["data"]))


@dataclass(frozen=True)
class ProducedFile:
    """A file the code wrote: its name in the working directory, and who made it when."""

    name: str
    media_type: str
    data: bytes
    agent: str
    execution: int  # 1-based number of the execution within the run
    path: Path | None = None  # where it was saved, when the run has an output directory

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def is_image(self) -> bool:
        return self.media_type.startswith("image/")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "media_type": self.media_type,
            "data": base64.b64encode(self.data).decode("ascii"),
            "agent": self.agent,
            "execution": self.execution,
            "path": None if self.path is None else str(self.path),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProducedFile:
        path = None if data["path"] is None else Path(data["path"])
        return cls(
            data["name"],
            data["media_type"],
            base64.b64decode(data["data"]),
            data["agent"],
            data["execution"],
            path,
        )


@dataclass(frozen=True)
class CodeExecution:
    """One call of the tool: the code, which agent sent it, what happened, what it wrote."""

    number: int
    agent: str
    code: str
    result: Execution
    files: tuple[ProducedFile, ...] = ()


class CodeExecutionError(AgentTeamsError):
    """The code failed or was stopped; the message is what the model reads as the tool result."""


def _safe_name(name: str) -> str:
    parts = [p for p in Path(name).parts if p not in ("", ".", "..", "/")]
    if not parts:
        raise ValueError(f"bad file name {name!r}")
    return str(Path(*parts))


@dataclass
class _Snapshot:
    entries: dict[str, tuple[int, int]] = field(default_factory=dict)

    @classmethod
    def of(cls, root: Path) -> _Snapshot:
        entries: dict[str, tuple[int, int]] = {}
        for directory, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in files:
                full = os.path.join(directory, name)
                info = os.lstat(full)
                if stat.S_ISREG(info.st_mode):  # never a symlink: it could point outside
                    entries[os.path.relpath(full, root)] = (info.st_mtime_ns, info.st_size)
        return cls(entries)

    def changed_since(self, before: _Snapshot) -> list[str]:
        return sorted(n for n, sig in self.entries.items() if before.entries.get(n) != sig)


def _read_regular(path: Path, limit: int) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        return f.read(limit + 1)[:limit]


def _media_type(name: str) -> str:
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


class CodeSession:
    """The interpreter of one run. Use `tool(agent)` for each agent; `close()` at the end."""

    def __init__(
        self, sandbox: Sandbox, *, inputs: Sequence[InputFile] = (), output_dir: Path | None = None
    ) -> None:
        self.sandbox = sandbox
        self.output_dir = output_dir
        self.workdir = Path(tempfile.mkdtemp(prefix="agentteams-code-"))
        self.files: list[ProducedFile] = []
        self.executions: list[CodeExecution] = []
        for item in inputs:
            target = self.workdir / _safe_name(item.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(item.data)
        self._saved: set[Path] = set()

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    def description(self) -> str:
        spec = self.sandbox.spec
        packages = ", ".join(spec.packages) if spec.packages else "the standard library"
        return (
            "Run a Python 3 program in a sandbox and get back its printed output, errors and the names "
            f"of the files it wrote. The current directory ({WORKDIR}) is kept between calls; save "
            "figures and data there (e.g. plt.savefig('plot.png')) and they are given to the user. "
            f"No network. Available: {packages}. Limits: {spec.timeout:g} s, "
            f"{spec.memory.human_readable()} of memory."
        )

    def tool(self, agent: str) -> FunctionTool:
        async def python(code: str) -> str:
            return await self.execute(code, agent)

        python.__doc__ = "Args:\n    code: A complete Python program; print what you want to see."
        return FunctionTool(
            _with_documented_parameters(python), description=self.description(), name=CODE_TOOL
        )

    async def execute(self, code: str, agent: str) -> str:
        """Run one cell; the tool result text, or CodeExecutionError with the failure for the model."""
        number = len(self.executions) + 1
        before = _Snapshot.of(self.workdir)
        result = await self.sandbox.run(code, self.workdir)
        written = _Snapshot.of(self.workdir).changed_since(before)
        limit = self.sandbox.spec.max_files
        produced = tuple(self._collect(name, agent, number) for name in written[:limit])
        self.files.extend(produced)
        self.executions.append(CodeExecution(number, agent, code, result, produced))
        logger.info("execution %d by %s: exit %s in %.2f s", number, agent, result.exit_code, result.seconds)
        text = self._report(result, produced, dropped=len(written) - len(produced))
        if not result.ok:
            raise CodeExecutionError(text)
        return text

    def _collect(self, name: str, agent: str, number: int) -> ProducedFile:
        data = _read_regular(self.workdir / name, int(self.sandbox.spec.max_file_size))
        path = self._save(name, data) if self.output_dir is not None else None
        return ProducedFile(name, _media_type(name), data, agent, number, path)

    def _save(self, name: str, data: bytes) -> Path:
        assert self.output_dir is not None
        target = self.output_dir / _safe_name(name)
        n = 1
        while target in self._saved:  # a later execution rewrote it: keep both versions
            n += 1
            target = target.with_name(f"{Path(name).stem}-{n}{Path(name).suffix}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        self._saved.add(target)
        return target

    def _report(self, result: Execution, produced: Sequence[ProducedFile], *, dropped: int) -> str:
        lines: list[str] = []
        if result.killed:
            lines.append(result.killed)
        elif result.exit_code != 0:
            lines.append(f"the code failed (exit code {result.exit_code})")
        if result.stdout:
            lines += ["stdout:", result.stdout.rstrip("\n")]
        if result.stderr:
            lines += ["stderr:", result.stderr.rstrip("\n")]
        if result.truncated:
            lines.append(f"(output cut at {int(self.sandbox.spec.max_output)} bytes)")
        if produced:
            listed = ", ".join(f"{f.name} ({f.media_type}, {f.size} bytes)" for f in produced)
            lines.append(f"files written: {listed}")
        if dropped:
            lines.append(f"{dropped} more files were not kept (limit {self.sandbox.spec.max_files} per run)")
        if not lines:
            lines.append("(no output; print what you want to see)")
        return "\n".join(lines)
