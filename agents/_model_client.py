"""The OpenAI-compatible model client an agent talks through."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from autogen_core import CancellationToken
from autogen_core.models import CreateResult, LLMMessage, ModelInfo
from autogen_core.tools import Tool, ToolSchema
from autogen_ext.models.openai import OpenAIChatCompletionClient
from openai import DefaultAioHttpClient

from agents._direct_chat import DirectChatOpenAI
from agents.spec import ModelInfoSpec, ModelOptions, ModelSpec, ResolvedPromptLayout

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResolvedModel:
    """A model spec bound to a live endpoint: what a client is built from."""

    name: str  # the key under `models:`
    base_url: str
    model: str
    api_key: str
    info: ModelInfo
    prompt_layout: ResolvedPromptLayout
    engine: str | None = None  # "llamacpp" | "vllm" | None (another server)
    # the profile's request-body defaults, in the engine's field names
    sampling: Mapping[str, float | int | list[str]] = field(default_factory=dict)


def resolve_model_info(name: str, spec: ModelSpec, model_id: str) -> tuple[ModelInfo, ResolvedPromptLayout]:
    """Capabilities and default prompt layout for a served model id.

    The scenario's `info` wins; else the serving profiles; an unknown id gets family
    "unknown" with function calling assumed and one warning saying how to declare it.
    """
    from serving import model_info_for

    lookup = model_info_for(model_id)
    if spec.info is not None:
        return _model_info(spec.info), lookup.prompt_layout
    if not lookup.known:
        logger.warning(
            "model %r (models.%s) is not in the built-in profiles; assuming function calling. "
            "Declare its capabilities under models.%s.info to silence this.",
            model_id,
            name,
            name,
        )
    return _model_info(ModelInfoSpec(**dict(lookup.info))), lookup.prompt_layout


def _model_info(spec: ModelInfoSpec) -> ModelInfo:
    return ModelInfo(
        family=spec.family,
        function_calling=spec.function_calling,
        vision=spec.vision,
        json_output=spec.json_output,
        structured_output=spec.structured_output,
        multiple_system_messages=spec.multiple_system_messages,
    )


class _ModelClient(OpenAIChatCompletionClient):
    """AutoGen's OpenAI client over a `DirectChatOpenAI`, asking for usage on streams too.

    Usage on streamed replies makes every turn's tokens count; passing stream_options to
    the constructor would send it on non-streamed calls as well, which vLLM rejects.
    """

    def __init__(
        self, *, base_url: str, api_key: str, timeout: float, max_retries: int, **config: Any
    ) -> None:
        super().__init__(
            base_url=base_url, api_key=api_key, timeout=timeout, max_retries=max_retries, **config
        )
        self._client = DirectChatOpenAI(
            base_url=base_url,
            api_key=api_key,
            timeout=timeout,
            max_retries=max_retries,
            http_client=DefaultAioHttpClient(),
        )

    def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],  # noqa: B006 - the base signature
        tool_choice: Any = "auto",
        json_output: bool | type[Any] | None = None,
        extra_create_args: Mapping[str, Any] = {},  # noqa: B006 - the base signature
        cancellation_token: CancellationToken | None = None,
        max_consecutive_empty_chunk_tolerance: int = 0,
        include_usage: bool | None = None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        return super().create_stream(
            messages,
            tools=tools,
            tool_choice=tool_choice,
            json_output=json_output,
            extra_create_args=extra_create_args,
            cancellation_token=cancellation_token,
            max_consecutive_empty_chunk_tolerance=max_consecutive_empty_chunk_tolerance,
            include_usage=True if include_usage is None else include_usage,
        )


# our option name -> the engine's request field, for options OpenAI's API does not have
_ENGINE_FIELDS = {
    "repetition_penalty": {"llamacpp": "repeat_penalty", "vllm": "repetition_penalty"},
    "dry_multiplier": {"llamacpp": "dry_multiplier"},
}


def request_options(resolved: ResolvedModel, spec: ModelSpec) -> dict[str, Any]:
    """The scenario's options over the profile's sampling defaults, in the engine's field names.

    OpenAI's own fields go as create arguments, the engine's extras in `extra_body`; an
    engine-only option on a server that is neither llama.cpp nor vLLM is left out (logged).
    """
    options: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in resolved.sampling.items():
        openai_field = key in ModelOptions.model_fields and key not in _ENGINE_FIELDS
        (options if openai_field else extra)[key] = value
    for key, value in spec.options.model_dump(exclude_none=True).items():
        if key not in _ENGINE_FIELDS:
            options[key] = value
        elif resolved.engine in _ENGINE_FIELDS[key]:
            extra[_ENGINE_FIELDS[key][resolved.engine]] = value
        else:
            logger.info(
                "models.%s.options.%s is not sent: %s is neither llama.cpp nor vLLM",
                resolved.name,
                key,
                resolved.base_url,
            )
    if extra:
        options["extra_body"] = extra
    return options


def build_model_client(resolved: ResolvedModel, spec: ModelSpec) -> OpenAIChatCompletionClient:
    options = request_options(resolved, spec)
    return _ModelClient(
        model=resolved.model,
        base_url=resolved.base_url,
        api_key=resolved.api_key,
        model_info=resolved.info,
        timeout=spec.timeout,
        max_retries=spec.max_retries,
        **options,
    )
