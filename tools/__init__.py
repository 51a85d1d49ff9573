"""Plain python tools that agents may call, found by name or import path."""

from tools._builtin import BUILTIN_TOOLS, calculator, days_between
from tools._registry import ToolImportError, build_function_tool, builtin_tool_spec, import_callable
from tools.spec import PythonToolSpec

__all__ = [
    "BUILTIN_TOOLS",
    "PythonToolSpec",
    "ToolImportError",
    "build_function_tool",
    "builtin_tool_spec",
    "calculator",
    "days_between",
    "import_callable",
]
