"""YAML models of the `models` and `agents` sections."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$", max_length=64)]
PromptLayout = Literal["auto", "shared_prefix", "system_first"]
# what "auto" becomes once the served model is known (serving's profiles say which)
ResolvedPromptLayout = Literal["shared_prefix", "system_first"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelOptions(_Spec):
    """Sampling options sent with every request to this endpoint."""

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, gt=0, description="Cap on tokens per model call (per turn).")
    seed: int | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    repetition_penalty: float | None = Field(
        default=None,
        gt=0,
        le=2,
        description="1: off; above 1 discourages repeating recent tokens. Sent as llama.cpp's "
        "repeat_penalty or vLLM's repetition_penalty. Unset: the served model's profile default.",
    )
    dry_multiplier: float | None = Field(
        default=None,
        ge=0,
        description="llama.cpp's DRY sampler strength (0: off); not sent to other servers. Unset: "
        "the served model's profile default.",
    )
    stop: list[str] | None = None


class ModelInfoSpec(_Spec):
    """What the model can do. Optional: derived from the served model's profile when absent."""

    family: str = "unknown"
    function_calling: bool = True
    vision: bool = False
    json_output: bool = False
    structured_output: bool = False
    multiple_system_messages: bool = True


class ModelSpec(_Spec):
    """One OpenAI-compatible endpoint and model."""

    base_url: str = Field(
        default="auto", description="`auto`: LLM_BASE_URL, else the bundled server (started if needed)."
    )
    model: str = Field(default="auto", description="`auto`: the one model the server lists.")
    api_key: str = "EMPTY"
    options: ModelOptions = ModelOptions()
    info: ModelInfoSpec | None = None
    timeout: float = Field(default=600.0, gt=0, description="Seconds to wait for one model call.")
    max_retries: int = Field(default=1, ge=0)


class LastNContext(_Spec):
    """Send the model only the last `size` messages (plus the task when keep_task)."""

    type: Literal["last_n"] = "last_n"
    size: int = Field(default=20, ge=1)
    keep_task: bool = True


class UnboundedContext(_Spec):
    """Send the whole conversation every turn."""

    type: Literal["unbounded"]


ContextSpec = Annotated[LastNContext | UnboundedContext, Field(discriminator="type")]


class AgentSpec(_Spec):
    """One AssistantAgent."""

    name: Identifier
    description: str = Field(default="", description="What the agent does; selectors read it.")
    system_message: str | None = None
    model: str = Field(default="default", description="Name of an entry in `models`.")
    tools: list[str] = Field(default_factory=list, description="MCP server names and/or python tool names.")
    reflect_on_tool_use: bool | None = None
    max_tool_iterations: int = Field(default=1, ge=1)
    streaming: bool = True
    context: ContextSpec = LastNContext()
    prompt_layout: PromptLayout | None = Field(
        default=None, description="Overrides the scenario's prompt_layout for this agent."
    )
