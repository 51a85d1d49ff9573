"""Run a team: AgentChat's events converted, once, into the run events of `teams.events`."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Collection, Sequence
from typing import Any

from autogen_agentchat.base import TaskResult
from autogen_agentchat.messages import (
    BaseAgentEvent,
    BaseChatMessage,
    ModelClientStreamingChunkEvent,
    SelectSpeakerEvent,
    StopMessage,
    ToolCallExecutionEvent,
    ToolCallRequestEvent,
)
from autogen_agentchat.teams import BaseGroupChat
from autogen_core import CancellationToken
from autogen_core.models import RequestUsage

from agents import Usage, UsageLedger
from teams.events import Message, RunEvent, RunResult, SpeakerSelected, TokenDelta, ToolCall, ToolResult

logger = logging.getLogger(__name__)

HARD_TIMEOUT_GRACE_S = 10.0
_TERMINATE = re.compile(r"\s*\bTERMINATE\b[.!]?\s*")


def strip_terminate(text: str) -> str:
    return _TERMINATE.sub(" ", text).strip()


def final_answer(messages: Sequence[Message], agent_names: Collection[str]) -> tuple[str, str]:
    """The last agent message with content once TERMINATE is removed, and its speaker."""
    for message in reversed(messages):
        if message.source in agent_names:
            text = strip_terminate(message.text)
            if text:
                return text, message.source
    return "", ""


def _usage(usage: RequestUsage | None) -> Usage | None:
    return None if usage is None else Usage(usage.prompt_tokens, usage.completion_tokens)


def convert(item: BaseAgentEvent | BaseChatMessage) -> list[RunEvent]:
    """One AgentChat event or message as run events (none for those nobody reads)."""
    if isinstance(item, ModelClientStreamingChunkEvent):
        return [TokenDelta(item.source, item.content, item)] if item.content else []
    if isinstance(item, ToolCallRequestEvent):
        usage = _usage(item.models_usage)
        return [
            ToolCall(item.source, call.id, call.name, call.arguments, usage if i == 0 else None, item)
            for i, call in enumerate(item.content)
        ]
    if isinstance(item, ToolCallExecutionEvent):
        return [
            ToolResult(item.source, r.call_id, r.name, r.content, bool(r.is_error), item)
            for r in item.content
        ]
    if isinstance(item, SelectSpeakerEvent):
        return [SpeakerSelected(item.source, tuple(item.content), item)]
    if isinstance(item, BaseChatMessage) and not isinstance(item, StopMessage):
        return [Message(item.source, item.to_text(), _usage(item.models_usage), item)]
    return []  # the termination notice (its reason ends the run), thoughts, memory queries


async def stream_team(
    team: BaseGroupChat,
    task: str | Sequence[BaseChatMessage],
    *,
    agent_names: Collection[str],
    ledger: UsageLedger,
    time_limit: float,
    cancellation_token: CancellationToken | None = None,
) -> AsyncIterator[RunEvent]:
    """Yield every event of one run, then a RunResult.

    `time_limit` is also enforced while a turn is in flight: the termination condition only
    looks at finished turns, so a model call that never returns would outlive it.
    """
    token = cancellation_token or CancellationToken()
    started = time.perf_counter()
    turn_started = started
    messages: list[Message] = []
    turns: dict[str, int] = {}
    seconds: dict[str, float] = {}
    stop_reason = ""
    timed_out = False

    def hard_timeout() -> None:
        nonlocal timed_out
        timed_out = True
        token.cancel()

    watchdog = asyncio.get_running_loop().call_later(time_limit + HARD_TIMEOUT_GRACE_S, hard_timeout)
    stream = team.run_stream(task=task, cancellation_token=token)
    finished = False
    try:
        try:
            async for item in stream:
                if isinstance(item, TaskResult):
                    stop_reason = item.stop_reason or ""
                    continue
                if isinstance(item, BaseChatMessage):
                    if item.source in agent_names:
                        now = time.perf_counter()
                        turns[item.source] = turns.get(item.source, 0) + 1
                        seconds[item.source] = seconds.get(item.source, 0.0) + (now - turn_started)
                        turn_started = now
                    else:
                        turn_started = time.perf_counter()
                for event in convert(item):
                    if isinstance(event, Message):
                        messages.append(event)
                    yield event
        except asyncio.CancelledError:
            if not timed_out:
                raise
            stop_reason = f"Timed out after {time_limit:g} s with a turn still running."
        finished = True
    finally:
        watchdog.cancel()
        if not finished:
            token.cancel()
            await stream.aclose()

    usage: dict[str, Usage] = {}
    for label in dict.fromkeys([*agent_names, *ledger.by_label]):
        calls = ledger.by_label.get(label)
        if calls is None and label not in turns:
            continue
        usage[label] = Usage(
            prompt_tokens=calls.prompt_tokens if calls else 0,
            completion_tokens=calls.completion_tokens if calls else 0,
            turns=turns.get(label, 0),
            seconds=round(seconds.get(label, calls.seconds if calls else 0.0), 3),
        )
    text, source = final_answer(messages, agent_names)
    state = {} if timed_out else _json_safe(await team.save_state())
    yield RunResult(
        messages=tuple(messages),
        final_text=text,
        final_source=source,
        stop_reason=stop_reason,
        usage=usage,
        elapsed_s=round(time.perf_counter() - started, 3),
        state=state,
    )


def _json_safe(state: Any) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(state, default=str))
    return result
