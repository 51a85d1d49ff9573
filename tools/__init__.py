"""Plain python tools that agents may call, found by name or import path."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tools._builtin import BUILTIN_TOOLS, calculator, days_between
    from tools._registry import ToolImportError, build_function_tool, builtin_tool_spec, import_callable
    from tools.spec import PythonToolSpec

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
}

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


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
