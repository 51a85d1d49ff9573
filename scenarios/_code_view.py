"""Console display of the code interpreter: the code highlighted, the files it saved."""

from __future__ import annotations

import json
from collections.abc import Sequence

from rich.console import Console
from rich.syntax import Syntax
from rich.text import Text

from tools import CODE_TOOL, ProducedFile


def code_of(name: str, arguments: str) -> str | None:
    """The program a `python` tool call runs, or None for any other call."""
    if name != CODE_TOOL:
        return None
    try:
        parsed = json.loads(arguments)
    except json.JSONDecodeError:
        return None
    code = parsed.get("code") if isinstance(parsed, dict) else None
    return code if isinstance(code, str) else None


def show_code(console: Console, name: str, arguments: str) -> bool:
    """Print a `python` call as highlighted code; False when the call is not one."""
    code = code_of(name, arguments)
    if code is None:
        return False
    console.print(Text(f"  → {CODE_TOOL}:", style="yellow"))
    console.print(Syntax(code, "python", line_numbers=True, padding=(0, 2), word_wrap=True))
    return True


def files_record(files: Sequence[ProducedFile]) -> list[dict[str, object]]:
    """The produced files as a transcript lists them (no bytes: the path when saved)."""
    return [
        {
            "name": f.name,
            "media_type": f.media_type,
            "bytes": f.size,
            "agent": f.agent,
            "execution": f.execution,
            "path": str(f.path) if f.path is not None else None,
        }
        for f in files
    ]


def show_files(console: Console, files: Sequence[ProducedFile]) -> None:
    if not files:
        return
    console.print()
    console.print(Text("Files written by the code:", style="bold"))
    for f in files:
        where = str(f.path) if f.path is not None else f.name
        console.print(
            Text(f"  {where}  ({f.media_type}, {f.size} bytes, {f.agent}, execution {f.execution})"),
            soft_wrap=True,
        )
