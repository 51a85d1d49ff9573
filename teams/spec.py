"""YAML models of the `team` section and its termination conditions."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_MAX_MESSAGES = 30
DEFAULT_TIMEOUT_S = 900.0


class TerminationSpec(BaseModel):
    """Exactly one condition: `{text_mention: TERMINATE}`, `{max_messages: 12}`, `{any: [...]}`, ..."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text_mention: str | None = Field(default=None, description="Stop when a message contains this text.")
    source_match: str | list[str] | None = Field(
        default=None, description="Stop once these agents have spoken."
    )
    max_messages: int | None = Field(default=None, ge=1, description="Stop after this many messages.")
    token_budget: int | None = Field(default=None, ge=1, description="Stop once this many tokens were used.")
    timeout: float | None = Field(default=None, gt=0, description="Stop after this many seconds.")
    any: list[TerminationSpec] | None = Field(default=None, description="Stop when any of these holds.")
    all: list[TerminationSpec] | None = Field(default=None, description="Stop when all of these hold.")

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(given) != 1:
            choices = ", ".join(type(self).model_fields)
            got = ", ".join(given) or "nothing"
            raise ValueError(f"a termination condition needs exactly one of {choices} (got {got})")
        return self


class _TeamBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    participants: list[str] = Field(min_length=1, description="Agent names, in speaking order.")
    termination: TerminationSpec | None = None
    max_messages: int = Field(
        default=DEFAULT_MAX_MESSAGES, ge=1, description="Safety cap on agent messages, always applied."
    )
    timeout: float = Field(default=DEFAULT_TIMEOUT_S, gt=0, description="Safety wall-clock limit in seconds.")


class RoundRobinTeamSpec(_TeamBase):
    type: Literal["round_robin"]


class SelectorTeamSpec(_TeamBase):
    type: Literal["selector"]
    model: str = Field(default="default", description="Name of an entry in `models` that picks speakers.")
    selector_prompt: str | None = Field(
        default=None,
        description="May use {roles}, {participants} and {history}; write {{ and }} for a literal brace.",
    )
    allow_repeated_speaker: bool = False
    speaks_after: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Agent -> the agents that must all have spoken (since the latest user "
        "message) before it may be picked, e.g. {summary: [planner, guide]}: a small model then "
        "cannot let the summary speak first and end the run.",
    )
    max_selector_attempts: int = Field(default=3, ge=1)
    constrained_choice: bool | None = Field(
        default=None,
        description="Decode the pick under a JSON schema of the allowed names (needs a server that "
        "supports response_format json_schema: llama.cpp, vLLM). Default: when the model's profile "
        "says structured_output; false keeps AutoGen's free-text parsing.",
    )

    @field_validator("selector_prompt")
    @classmethod
    def _known_placeholders(cls, prompt: str | None) -> str | None:
        if prompt is not None:
            check_placeholders(prompt, SELECTOR_PLACEHOLDERS)
        return prompt


SELECTOR_PLACEHOLDERS = ("roles", "history", "participants")


def check_placeholders(template: str, known: tuple[str, ...]) -> None:
    """Raise ValueError naming the first `{name}` of `template` that `str.format` would not fill."""
    import difflib
    import string

    expected = ", ".join(f"{{{k}}}" for k in known)
    try:
        fields = [f for _, f, spec, conv in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ValueError(
            f"{exc} (write {{{{ and }}}} for a literal brace; placeholders: {expected})"
        ) from None
    for field in fields:
        if field not in known:
            close = difflib.get_close_matches(field, known, n=1, cutoff=0.6)
            hint = f"; did you mean {{{close[0]}}}?" if close else ""
            raise ValueError(f"unknown placeholder {{{field}}} (expected one of {expected}{hint})")


TeamSpec = Annotated[RoundRobinTeamSpec | SelectorTeamSpec, Field(discriminator="type")]
