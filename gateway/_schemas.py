"""Pydantic models of the HTTP edge (OpenAI-compatible shapes).

Requests forbid unknown fields; the common OpenAI sampling parameters are accepted and
ignored because a team's agents own their model settings.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from openai.types import CompletionUsage
from pydantic import BaseModel, ConfigDict, Field

from ._states import LastErrorCode, RunStatus

_NAME = Annotated[str, Field(min_length=1, max_length=128)]
Metadata = Annotated[
    dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=512)]], Field(max_length=16)
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextPart(_Request):
    type: Literal["text"]
    text: str


Content = str | list[TextPart]


def content_text(content: Content | None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p.text for p in content)


class ChatMessageIn(_Request):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Content | None = None
    name: str | None = None
    # accepted so that a client may echo back what it received; ignored
    reasoning_content: str | None = None
    refusal: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class StreamOptions(_Request):
    include_usage: bool = False
    include_obfuscation: bool | None = None


class ChatCompletionRequest(_Request):
    model: _NAME
    messages: list[ChatMessageIn] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    n: Literal[1] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    functions: list[dict[str, Any]] | None = None
    function_call: Any = None
    # accepted and ignored: the scenario's agents own their sampling settings
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    metadata: Metadata | None = None
    store: bool | None = None
    parallel_tool_calls: bool | None = None
    reasoning_effort: str | None = None
    response_format: dict[str, Any] | None = None
    service_tier: str | None = None


class ModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "gateway"
    description: str = ""
    default_task: str | None = None


# ---- Assistants-shaped threads, messages, runs ---------------------------------------


class MessageCreate(_Request):
    role: Literal["user", "assistant"]
    content: Content
    metadata: Metadata | None = None
    attachments: list[Any] | None = None


class ThreadCreate(_Request):
    messages: list[MessageCreate] = Field(default_factory=list)
    metadata: Metadata | None = None
    tool_resources: dict[str, Any] | None = None


class ThreadModify(_Request):
    metadata: Metadata | None = None
    tool_resources: dict[str, Any] | None = None


class RunCreate(_Request):
    assistant_id: _NAME
    model: str | None = None
    instructions: str | None = None
    additional_instructions: str | None = None
    additional_messages: list[MessageCreate] | None = None
    tools: list[dict[str, Any]] | None = None
    metadata: Metadata | None = None
    stream: bool | None = None
    include: list[str] | None = None
    # accepted and ignored, as for chat completions
    temperature: float | None = None
    top_p: float | None = None
    max_prompt_tokens: int | None = None
    max_completion_tokens: int | None = None
    truncation_strategy: dict[str, Any] | None = None
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    response_format: Any = None
    reasoning_effort: str | None = None


class ThreadAndRunCreate(RunCreate):
    thread: ThreadCreate | None = None
    tool_resources: dict[str, Any] | None = None


class TextValue(BaseModel):
    value: str
    annotations: list[Any] = Field(default_factory=list)


class TextContentOut(BaseModel):
    type: Literal["text"] = "text"
    text: TextValue


class ImageFileOut(BaseModel):
    file_id: str
    detail: Literal["auto", "low", "high"] | None = None


class ImageFileContentOut(BaseModel):
    """An image the run's code made; download it with GET /v1/files/{file_id}/content."""

    type: Literal["image_file"] = "image_file"
    image_file: ImageFileOut


class ThreadOut(BaseModel):
    id: str
    object: Literal["thread"] = "thread"
    created_at: int
    metadata: dict[str, str]
    tool_resources: dict[str, Any] = Field(default_factory=dict)


class MessageOut(BaseModel):
    id: str
    object: Literal["thread.message"] = "thread.message"
    created_at: int
    thread_id: str
    role: Literal["user", "assistant"]
    content: list[TextContentOut | ImageFileContentOut]
    assistant_id: str | None
    run_id: str | None
    attachments: list[Any] = Field(default_factory=list)
    metadata: dict[str, str]
    status: Literal["completed"] = "completed"
    completed_at: int | None = None
    incomplete_at: int | None = None
    incomplete_details: None = None


class LastErrorOut(BaseModel):
    code: LastErrorCode
    message: str


class RunOut(BaseModel):
    id: str
    object: Literal["thread.run"] = "thread.run"
    created_at: int
    thread_id: str
    assistant_id: str
    model: str
    instructions: str = ""
    status: RunStatus
    started_at: int | None
    expires_at: int | None
    cancelled_at: int | None
    failed_at: int | None
    completed_at: int | None
    last_error: LastErrorOut | None
    usage: CompletionUsage | None
    metadata: dict[str, str]
    tools: list[Any] = Field(default_factory=list)
    parallel_tool_calls: bool = False
    required_action: None = None
    incomplete_details: None = None
    max_prompt_tokens: int | None = None
    max_completion_tokens: int | None = None
    response_format: str = "auto"
    tool_choice: str = "auto"
    truncation_strategy: dict[str, Any] = Field(
        default_factory=lambda: {"type": "auto", "last_messages": None}
    )
    temperature: float | None = None
    top_p: float | None = None


class DeletedOut(BaseModel):
    id: str
    object: str
    deleted: bool = True


class UsageRowOut(BaseModel):
    user: str
    scenario: str
    runs: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class UsageListOut(BaseModel):
    object: Literal["list"] = "list"
    data: list[UsageRowOut]
