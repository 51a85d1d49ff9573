"""Pydantic models of the Responses and Conversations requests (the HTTP edge).

Requests forbid unknown fields. A team's agents own their model settings, so the sampling
parameters are accepted and ignored, as for chat completions. Input items a client echoes
back from an earlier response (reasoning items, function calls and their outputs, with our
extra `agent` field) are accepted: reasoning and messages become the team's history, tool
calls are dropped because their results are already in the agents' messages.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from ._schemas import Metadata

__all__ = [
    "ConversationCreate",
    "ConversationUpdate",
    "InputItem",
    "ItemsCreate",
    "MessageItem",
    "ReasoningItem",
    "ResponseCreate",
    "item_text",
]

_NAME = Annotated[str, Field(min_length=1, max_length=128)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextPart(_Request):
    type: Literal["input_text", "output_text", "refusal"]
    text: str = ""
    refusal: str | None = None
    annotations: list[Any] | None = None
    logprobs: list[Any] | None = None


class ReasoningPart(_Request):
    type: Literal["summary_text", "reasoning_text"]
    text: str


class MessageItem(_Request):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[TextPart]
    id: str | None = None
    status: str | None = None
    phase: Literal["commentary", "final_answer"] | None = None
    agent: str | None = None  # ours: the agent that wrote it


class ReasoningItem(_Request):
    type: Literal["reasoning"]
    id: str | None = None
    summary: list[ReasoningPart] = Field(default_factory=list)
    content: list[ReasoningPart] | None = None
    encrypted_content: str | None = None
    status: str | None = None
    agent: str | None = None


class FunctionCallItem(_Request):
    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str
    id: str | None = None
    status: str | None = None
    namespace: str | None = None
    agent: str | None = None


class FunctionCallOutputItem(_Request):
    type: Literal["function_call_output"]
    call_id: str
    output: str | list[Any]
    id: str | None = None
    status: str | None = None
    name: str | None = None
    is_error: bool | None = None
    agent: str | None = None


def _item_type(value: Any) -> str:
    kind = value.get("type", "message") if isinstance(value, dict) else getattr(value, "type", "message")
    return str(kind)


InputItem = Annotated[
    Annotated[MessageItem, Tag("message")]
    | Annotated[ReasoningItem, Tag("reasoning")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")],
    Discriminator(_item_type),
]


def item_text(item: MessageItem | ReasoningItem) -> str:
    if isinstance(item, ReasoningItem):
        parts = item.content or item.summary
        return "\n".join(p.text for p in parts)
    if isinstance(item.content, str):
        return item.content
    return "".join(p.text if p.type != "refusal" else (p.refusal or "") for p in item.content)


class ConversationRef(_Request):
    id: str


class ResponseCreate(_Request):
    model: _NAME
    input: str | list[InputItem]
    instructions: str | None = None
    conversation: str | ConversationRef | None = None
    previous_response_id: str | None = None
    background: bool | None = None
    stream: bool | None = None
    stream_options: dict[str, Any] | None = None
    metadata: Metadata | None = None
    user: str | None = None
    safety_identifier: str | None = None
    store: bool | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    max_tool_calls: int | None = None
    include: list[str] | None = None
    # accepted and ignored: the scenario's agents own their sampling settings
    temperature: float | None = None
    top_p: float | None = None
    top_logprobs: int | None = None
    max_output_tokens: int | None = None
    reasoning: dict[str, Any] | None = None
    text: dict[str, Any] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    service_tier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None

    @property
    def conversation_id(self) -> str | None:
        c = self.conversation
        return c.id if isinstance(c, ConversationRef) else c


class ConversationCreate(_Request):
    items: list[InputItem] | None = None
    metadata: Metadata | None = None


class ConversationUpdate(_Request):
    metadata: Metadata


class ItemsCreate(_Request):
    items: list[InputItem] = Field(min_length=1)
