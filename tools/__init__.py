"""Plain python tools that agents may call, found by name or import path; the code interpreter."""

from tools._builtin import BUILTIN_TOOLS, calculator, days_between
from tools._interpreter import (
    CodeExecution,
    CodeExecutionError,
    CodeSession,
    InputFile,
    ProducedFile,
)
from tools._registry import ToolImportError, build_function_tool, builtin_tool_spec, import_callable
from tools._sandbox import WORKDIR, Execution, Sandbox, SandboxUnavailable
from tools.spec import CODE_TOOL, CodeSpec, PythonToolSpec

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
