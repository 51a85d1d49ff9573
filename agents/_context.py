"""Model contexts: what an agent sends the model each turn."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autogen_core.model_context import (
    BufferedChatCompletionContext,
    ChatCompletionContext,
    HeadAndTailChatCompletionContext,
    UnboundedChatCompletionContext,
)
from autogen_core.models import (
    AssistantMessage,
    FunctionExecutionResultMessage,
    LLMMessage,
    SystemMessage,
    UserMessage,
)

from agents.spec import ContextSpec, LastNContext


def bounded_context(spec: ContextSpec) -> ChatCompletionContext:
    if isinstance(spec, LastNContext):
        if spec.keep_task:
            return HeadAndTailChatCompletionContext(head_size=1, tail_size=spec.size)
        return BufferedChatCompletionContext(buffer_size=spec.size)
    return UnboundedChatCompletionContext()


class RoleLastContext(ChatCompletionContext):
    """The shared-prefix layout: the conversation first, the agent's role instruction last.

    Every agent of a team then sends the same transcript as the start of its prompt, so
    the server's prompt cache (llama.cpp's slot cache, vLLM's prefix cache) reuses it and
    only the newest turn and the instruction are read. For the transcript to be identical
    across agents, an agent's own earlier replies are shown as transcript entries (user
    role, like everyone else's) and every entry is labelled with its speaker. The current
    turn's tool calls and results stay after the instruction, in their protocol roles.
    """

    def __init__(self, inner: ChatCompletionContext, instruction: str) -> None:
        super().__init__()
        self._inner = inner
        self._instruction = instruction

    async def add_message(self, message: LLMMessage) -> None:
        await self._inner.add_message(message)

    async def get_messages(self) -> list[LLMMessage]:
        messages = await self._inner.get_messages()
        split = len(messages)
        while split > 0 and _is_tool_exchange(messages[split - 1]):
            split -= 1
        transcript = [_as_transcript_entry(m) for m in messages[:split]]
        return [*transcript, SystemMessage(content=self._instruction), *messages[split:]]

    async def clear(self) -> None:
        await self._inner.clear()

    async def save_state(self) -> Mapping[str, Any]:
        return await self._inner.save_state()

    async def load_state(self, state: Mapping[str, Any]) -> None:
        await self._inner.load_state(state)


def _is_tool_exchange(message: LLMMessage) -> bool:
    if isinstance(message, FunctionExecutionResultMessage):
        return True
    return isinstance(message, AssistantMessage) and not isinstance(message.content, str)


def _as_transcript_entry(message: LLMMessage) -> LLMMessage:
    if isinstance(message, AssistantMessage) and isinstance(message.content, str):
        return UserMessage(content=f"[{message.source}]\n{message.content}", source=message.source)
    if isinstance(message, UserMessage) and isinstance(message.content, str):
        return UserMessage(content=f"[{message.source}]\n{message.content}", source=message.source)
    return message
