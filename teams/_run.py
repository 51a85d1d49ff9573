"""Run a team as a stream of AgentChat events ending in a RunResult."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Collection, Sequence
from typing import Any

from autogen_agentchat.base import TaskResult
from autogen_agentchat.messages import BaseAgentEvent, BaseChatMessage, StopMessage
from autogen_agentchat.teams import BaseGroupChat
from autogen_core import CancellationToken

from agents import UsageLedger
from teams._result import AgentUsage, RunResult

logger = logging.getLogger(__name__)

RunItem = BaseAgentEvent | BaseChatMessage | RunResult
HARD_TIMEOUT_GRACE_S = 10.0
_TERMINATE = re.compile(r"\s*\bTERMINATE\b[.!]?\s*")


def strip_terminate(text: str) -> str:
    return _TERMINATE.sub(" ", text).strip()


def final_answer(messages: Sequence[BaseChatMessage], agent_names: Collection[str]) -> tuple[str, str]:
    """The last agent message with content once TERMINATE is removed, and its speaker."""
    for message in reversed(messages):
        if message.source in agent_names and not isinstance(message, StopMessage):
            text = strip_terminate(message.to_text())
            if text:
                return text, message.source
    return "", ""


async def stream_team(
    team: BaseGroupChat,
    task: str | Sequence[BaseChatMessage],
    *,
    agent_names: Collection[str],
    ledger: UsageLedger,
    time_limit: float,
    cancellation_token: CancellationToken | None = None,
) -> AsyncIterator[RunItem]:
    """Yield every event of one run, then a RunResult.

    `time_limit` is also enforced while a turn is in flight: the termination condition only
    looks at finished turns, so a model call that never returns would outlive it.
    """
    token = cancellation_token or CancellationToken()
    started = time.perf_counter()
    turn_started = started
    messages: list[BaseChatMessage] = []
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
                    messages.append(item)
                    if item.source in agent_names:
                        now = time.perf_counter()
                        turns[item.source] = turns.get(item.source, 0) + 1
                        seconds[item.source] = seconds.get(item.source, 0.0) + (now - turn_started)
                        turn_started = now
                    else:
                        turn_started = time.perf_counter()
                yield item
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

    usage: dict[str, AgentUsage] = {}
    for label in dict.fromkeys([*agent_names, *ledger.by_label]):
        calls = ledger.by_label.get(label)
        if calls is None and label not in turns:
            continue
        usage[label] = AgentUsage(
            turns=turns.get(label, 0),
            prompt_tokens=calls.prompt_tokens if calls else 0,
            completion_tokens=calls.completion_tokens if calls else 0,
            seconds=round(seconds.get(label, calls.seconds if calls else 0.0), 3),
        )
    text, source = final_answer(messages, agent_names)
    state = {} if timed_out else _json_safe(await team.save_state())
    yield RunResult(
        messages=messages,
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
