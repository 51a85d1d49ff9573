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
    """The shared-prefix layout: one dialogue that every agent of a team extends.

    The conversation is rendered as a sequence of turns, each an agent's role instruction
    (system) followed by that agent's reply (assistant), after the user's task; the prompt
    ends with this agent's own instruction. Agent k's prompt is then agent k-1's prompt plus
    the reply the server has just generated for it, so the server's prompt cache (llama.cpp's
    slot cache, vLLM's prefix cache) already holds everything but the newest instruction, and
    prompt processing stays linear in the conversation rather than quadratic.

    `roles` maps every team member's name to its instruction, to render the others' turns.
    Models whose template allows one system message only get the instructions as user
    messages (`system_role=False`).
    """

    def __init__(
        self,
        inner: ChatCompletionContext,
        instruction: str,
        *,
        name: str,
        roles: Mapping[str, str],
        system_role: bool = True,
    ) -> None:
        super().__init__()
        self._inner = inner
        self._name = name
        self._roles = {**roles, name: instruction}
        self._system_role = system_role

    def _instruction(self, agent: str) -> LLMMessage:
        if self._system_role:
            return SystemMessage(content=self._roles[agent])
        return UserMessage(content=self._roles[agent], source="instructions")

    async def add_message(self, message: LLMMessage) -> None:
        await self._inner.add_message(message)

    async def get_messages(self) -> list[LLMMessage]:
        rendered: list[LLMMessage] = []
        speaker: str | None = None
        for message in await self._inner.get_messages():
            source = self._name if isinstance(message, FunctionExecutionResultMessage) else _source(message)
            if source in self._roles:
                if source != speaker:
                    rendered.append(self._instruction(source))
                if isinstance(message, UserMessage):  # another agent's reply, as AutoGen hands it over
                    message = AssistantMessage(content=message.content, source=source)  # type: ignore[arg-type]
            rendered.append(message)
            speaker = source
        if speaker != self._name:
            rendered.append(self._instruction(self._name))
        return rendered

    async def clear(self) -> None:
        await self._inner.clear()

    async def save_state(self) -> Mapping[str, Any]:
        return await self._inner.save_state()

    async def load_state(self, state: Mapping[str, Any]) -> None:
        await self._inner.load_state(state)


def _source(message: LLMMessage) -> str:
    return getattr(message, "source", "") or ""
