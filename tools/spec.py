"""YAML models of the `tools` section (python callables agents may call) and the `code` section."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ByteSize, ConfigDict, Field


class PythonToolSpec(BaseModel):
    """A python function wrapped as a tool; its schema comes from its signature and docstring."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["python"] = "python"
    function: str = Field(pattern=r"^[\w.]+:[\w.]+$", description="Import path, `package.module:function`.")
    description: str | None = Field(default=None, description="Defaults to the function's docstring.")


CODE_TOOL = "python"  # the code interpreter's tool name, backed by the `code:` section


class CodeSpec(BaseModel):
    """The `code:` section: how the `python` tool (the sandboxed code interpreter) runs code."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sandbox: Literal["bwrap", "none"] = Field(
        default="bwrap",
        description="bwrap: each execution in a bubblewrap sandbox (no network, own working directory, "
        "limits). none: run unsandboxed, for trusted local use only (a warning is printed).",
    )
    packages: list[Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*$")]] = Field(
        default_factory=list,
        description="Modules the code may import; checked inside the sandbox when the scenario opens.",
    )
    timeout: float = Field(
        default=30.0, gt=0, le=3600, description="Wall-clock and CPU seconds per execution."
    )
    memory: ByteSize = Field(
        default=ByteSize(1 << 30), ge=64 << 20, description="Address-space limit, e.g. 1GiB."
    )
    network: Literal[False] = Field(default=False, description="Fixed: sandboxed code has no network.")
    max_output: ByteSize = Field(
        default=ByteSize(16 << 10), ge=256, description="stdout+stderr kept per execution; the rest is cut."
    )
    max_files: int = Field(default=20, ge=1, le=1000, description="Files one execution may write.")
    max_file_size: ByteSize = Field(default=ByteSize(20 << 20), ge=1024, description="Largest file written.")
    processes: int = Field(
        default=64, ge=1, le=4096, description="Processes and threads at once (fork bombs)."
    )
