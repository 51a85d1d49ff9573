"""Plain python tools that agents may call, found by name or import path; the code interpreter."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentteams._lazy import lazy_exports

if TYPE_CHECKING:
    from tools._builtin import BUILTIN_TOOLS, calculator, days_between
    from tools._interpreter import CodeExecution, CodeExecutionError, CodeSession, InputFile, ProducedFile
    from tools._registry import ToolImportError, build_function_tool, builtin_tool_spec, import_callable
    from tools._sandbox import WORKDIR, Execution, Sandbox, SandboxUnavailable
    from tools.spec import CODE_TOOL, CodeSpec, PythonToolSpec

# name -> module: imported on first use, so that `import tools.spec` (and the CLI's
# quick commands) need none of the heavy libraries the builders use
_EXPORTS = {
    "BUILTIN_TOOLS": "tools._builtin",
    "calculator": "tools._builtin",
    "days_between": "tools._builtin",
    "ToolImportError": "tools._registry",
    "build_function_tool": "tools._registry",
    "builtin_tool_spec": "tools._registry",
    "import_callable": "tools._registry",
    "PythonToolSpec": "tools.spec",
    "CODE_TOOL": "tools.spec",
    "CodeSpec": "tools.spec",
    "CodeExecution": "tools._interpreter",
    "CodeExecutionError": "tools._interpreter",
    "CodeSession": "tools._interpreter",
    "InputFile": "tools._interpreter",
    "ProducedFile": "tools._interpreter",
    "WORKDIR": "tools._sandbox",
    "Execution": "tools._sandbox",
    "Sandbox": "tools._sandbox",
    "SandboxUnavailable": "tools._sandbox",
}

__all__ = [
    "BUILTIN_TOOLS",
    "CODE_TOOL",
    "WORKDIR",
    "CodeExecution",
    "CodeExecutionError",
    "CodeSession",
    "CodeSpec",
    "Execution",
    "InputFile",
    "ProducedFile",
    "PythonToolSpec",
    "Sandbox",
    "SandboxUnavailable",
    "ToolImportError",
    "build_function_tool",
    "builtin_tool_spec",
    "calculator",
    "days_between",
    "import_callable",
]


__getattr__ = lazy_exports(__name__, _EXPORTS)
