"""Turn tool names and import paths into AutoGen FunctionTools."""

from __future__ import annotations

import functools
import importlib
import inspect
import re
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from agentteams import UserError
from tools._builtin import BUILTIN_TOOLS
from tools.spec import PythonToolSpec

if TYPE_CHECKING:
    from autogen_core.tools import FunctionTool


class ToolImportError(UserError):
    """A declared tool's import path does not lead to a callable."""


def import_callable(path: str) -> Callable[..., Any]:
    module_name, _, attribute = path.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ToolImportError(f"cannot import module {module_name!r} ({exc})") from exc
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ToolImportError(f"module {module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ToolImportError(f"{path!r} is not callable")
    found: Callable[..., Any] = target
    return found


_ARG_LINE = re.compile(r"^\s{2,}(\w+)(?:\s*\([^)]*\))?:\s*(.+)$")


def docstring_arguments(doc: str | None) -> dict[str, str]:
    """Parameter descriptions from a Google-style `Args:` section."""
    found: dict[str, str] = {}
    in_args = False
    for line in (doc or "").splitlines():
        stripped = line.strip()
        if stripped in ("Args:", "Arguments:", "Parameters:"):
            in_args = True
            continue
        if in_args:
            match = _ARG_LINE.match(line)
            if match:
                found[match.group(1)] = match.group(2).strip()
            elif stripped.endswith(":") and not line.startswith(" " * 2):
                in_args = False
    return found


def _with_documented_parameters(function: Callable[..., Any]) -> Callable[..., Any]:
    """The same function, its parameters annotated with their docstring descriptions.

    AutoGen's FunctionTool reads parameter descriptions only from `Annotated[...]`, so the
    descriptions in the docstring are moved there to reach the model's tool schema.
    """
    documented = docstring_arguments(function.__doc__)
    if not documented:
        return function
    hints = typing.get_type_hints(function, include_extras=True)
    annotations = {
        name: Annotated[hint, documented[name]] if name in documented else hint
        for name, hint in hints.items()
    }
    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            return await function(*args, **kwargs)

    else:

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return function(*args, **kwargs)

    signature = inspect.signature(function)
    wrapper.__annotations__ = annotations
    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[
            p.replace(annotation=annotations.get(p.name, p.annotation)) for p in signature.parameters.values()
        ],
        return_annotation=annotations.get("return", signature.return_annotation),
    )
    return wrapper


def build_function_tool(name: str, spec: PythonToolSpec) -> FunctionTool:
    from autogen_core.tools import FunctionTool  # not at import: `scenarios validate` starts at once

    function = import_callable(spec.function)
    description = spec.description or (function.__doc__ or "").strip().split("\n\n")[0] or name
    return FunctionTool(_with_documented_parameters(function), description=description, name=name)


def builtin_tool_spec(name: str) -> PythonToolSpec | None:
    path = BUILTIN_TOOLS.get(name)
    return PythonToolSpec(function=path) if path else None
