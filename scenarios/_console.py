"""Terminal display of a run: speakers, streamed text, tool calls, and a usage table."""

from __future__ import annotations

import json
import time
from typing import IO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from scenarios._code_view import files_record, show_code, show_files
from teams import Message, RunEvent, RunResult, SpeakerSelected, TokenDelta, ToolCall, ToolResult

_RESULT_PREVIEW = 400


class ConsoleView:
    """Prints each run event as it arrives. Token deltas stream inline under the speaker's name."""

    def __init__(self, console: Console | None = None, *, stream: bool = True) -> None:
        self.console = console or Console(highlight=False)
        self.stream = stream
        self._speaker: str | None = None
        self._streamed: set[str] = set()  # speakers whose current text already streamed
        self._mid_line = False

    def _header(self, speaker: str) -> None:
        if self._speaker == speaker:
            return
        self._end_line()
        self.console.print()
        self.console.print(Text(f"── {speaker} ", style="bold cyan"))
        self._speaker = speaker

    def _end_line(self) -> None:
        if self._mid_line:
            self.console.print()
            self._mid_line = False

    def show(self, item: RunEvent) -> None:
        if isinstance(item, RunResult):
            self._end_line()
            self.summary(item)
        elif isinstance(item, TokenDelta):
            if not self.stream:
                return
            self._header(item.source)
            self.console.print(item.text, end="", markup=False, highlight=False, soft_wrap=True)
            self._mid_line = True
            self._streamed.add(item.source)
        elif isinstance(item, ToolCall):
            self._header(item.source)
            self._end_line()
            self._streamed.discard(item.source)
            if not show_code(self.console, item.name, item.arguments):
                self.console.print(Text(f"  → {item.name}({item.arguments})", style="yellow"))
        elif isinstance(item, ToolResult):
            self._header(item.source)
            text = (
                item.content if len(item.content) <= _RESULT_PREVIEW else item.content[:_RESULT_PREVIEW] + "…"
            )
            style = "red" if item.is_error else "green"
            mark = "✗" if item.is_error else "←"
            self.console.print(Text(f"  {mark} {item.name}: {text}", style=style))
        elif isinstance(item, SpeakerSelected):
            self._end_line()
            self.console.print(Text(f"  (selector chose {', '.join(item.speakers)})", style="dim"))
        elif isinstance(item, Message):
            if item.source in self._streamed:
                self._streamed.discard(item.source)
                self._end_line()
                return
            self._header(item.source)
            self.console.print(item.text, markup=False, highlight=False)

    def summary(self, result: RunResult) -> None:
        table = Table(title="Run summary", title_justify="left")
        table.add_column("agent")
        table.add_column("turns", justify="right")
        table.add_column("prompt tok", justify="right")
        table.add_column("completion tok", justify="right")
        table.add_column("seconds", justify="right")
        for name, usage in result.usage.items():
            table.add_row(
                name,
                str(usage.turns),
                str(usage.prompt_tokens),
                str(usage.completion_tokens),
                f"{usage.seconds:.1f}",
            )
        total = result.total
        table.add_row(
            "total",
            str(total.turns),
            str(total.prompt_tokens),
            str(total.completion_tokens),
            f"{result.elapsed_s:.1f}",
            style="bold",
        )
        self.console.print()
        self.console.print(table)
        self.console.print(f"Stopped: {result.stop_reason}")
        show_files(self.console, result.files)


class TranscriptWriter:
    """Writes every run event as one JSON line (its `to_json()` and the time `t`), flushed as it happens."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._started = time.perf_counter()

    def write(self, item: RunEvent) -> None:
        record = item.to_json()
        if isinstance(item, RunResult):
            record["files"] = files_record(item.files)  # names and paths, not the bytes
        record["t"] = round(time.perf_counter() - self._started, 3)
        self._out.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._out.flush()
