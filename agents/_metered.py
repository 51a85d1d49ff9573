"""A per-run view of a shared model client that records who used how many tokens."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from autogen_core import CancellationToken
from autogen_core.models import (
    ChatCompletionClient,
    CreateResult,
    LLMMessage,
    ModelCapabilities,
    ModelInfo,
    RequestUsage,
)
from autogen_core.tools import Tool, ToolSchema

from agents._usage import Usage


@dataclass
class UsageLedger:
    """Token use per label (agent name, or "selector") for one run."""

    by_label: dict[str, Usage] = field(default_factory=dict)

    def record(self, label: str, usage: RequestUsage, seconds: float) -> None:
        call = Usage(usage.prompt_tokens, usage.completion_tokens, seconds=seconds)
        self.by_label[label] = self.by_label.get(label, Usage()) + call


class MeteredClient(ChatCompletionClient):
    """Delegates to a shared client and books each call's usage under one label."""

    def __init__(self, inner: ChatCompletionClient, ledger: UsageLedger, label: str) -> None:
        self._inner = inner
        self._ledger = ledger
        self._label = label

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],  # noqa: B006 - the base signature
        tool_choice: Any = "auto",
        json_output: bool | type[Any] | None = None,
        extra_create_args: Mapping[str, Any] = {},  # noqa: B006 - the base signature
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        started = time.perf_counter()
        result = await self._inner.create(
            messages,
            tools=tools,
            tool_choice=tool_choice,
            json_output=json_output,
            extra_create_args=extra_create_args,
            cancellation_token=cancellation_token,
        )
        self._ledger.record(self._label, result.usage, time.perf_counter() - started)
        return result

    async def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],  # noqa: B006 - the base signature
        tool_choice: Any = "auto",
        json_output: bool | type[Any] | None = None,
        extra_create_args: Mapping[str, Any] = {},  # noqa: B006 - the base signature
        cancellation_token: CancellationToken | None = None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        started = time.perf_counter()
        async for item in self._inner.create_stream(
            messages,
            tools=tools,
            tool_choice=tool_choice,
            json_output=json_output,
            extra_create_args=extra_create_args,
            cancellation_token=cancellation_token,
        ):
            if isinstance(item, CreateResult):
                self._ledger.record(self._label, item.usage, time.perf_counter() - started)
            yield item

    async def close(self) -> None:
        """The shared client outlives the run; its owner closes it."""

    def actual_usage(self) -> RequestUsage:
        return self._inner.actual_usage()

    def total_usage(self) -> RequestUsage:
        return self._inner.total_usage()

    def count_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []) -> int:  # noqa: B006
        return self._inner.count_tokens(messages, tools=tools)

    def remaining_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []
    ) -> int:  # noqa: B006
        return self._inner.remaining_tokens(messages, tools=tools)

    @property
    def capabilities(self) -> ModelCapabilities:
        return self._inner.capabilities

    @property
    def model_info(self) -> ModelInfo:
        return self._inner.model_info
