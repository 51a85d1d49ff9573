"""An AsyncOpenAI client whose `chat.completions.create` sends its params as given.

The SDK's `create` first walks the whole request through its type-driven transform
(aliases, dates, base64 fields). AutoGen hands it plain JSON-ready dicts, for which that
walk changes nothing, yet it was a fifth of a team run's CPU in the gateway profile and
grows with every message in the context. tests/agents/test_direct_chat.py checks that the
body sent is the body the transform would have produced.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from openai import AsyncOpenAI, AsyncStream, NotGiven, Omit
from openai._types import RequestOptions
from openai.resources.chat import AsyncChat, AsyncCompletions
from openai.types.chat import ChatCompletion, ChatCompletionChunk

# keywords of the SDK's create() that are request options, not body fields
_OPTION_KEYS = {
    "extra_headers": "headers",
    "extra_query": "params",
    "extra_body": "extra_json",
    "timeout": "timeout",
}


class _DirectCompletions(AsyncCompletions):
    async def create(  # type: ignore[override]  # the SDK's keywords, taken as **params
        self, **params: Any
    ) -> ChatCompletion | AsyncStream[ChatCompletionChunk]:
        options: RequestOptions = {"security": {"bearer_auth": True}}
        body: dict[str, Any] = {}
        for key, value in params.items():
            if isinstance(value, NotGiven | Omit) or (key in _OPTION_KEYS and value is None):
                continue
            if key in _OPTION_KEYS:
                options[_OPTION_KEYS[key]] = value  # type: ignore[literal-required]
            else:
                body[key] = value
        return await self._client.post(
            "/chat/completions",
            body=body,
            options=options,
            cast_to=ChatCompletion,
            stream=bool(body.get("stream")),
            stream_cls=AsyncStream[ChatCompletionChunk],
        )


class _DirectChat(AsyncChat):
    @cached_property
    def completions(self) -> AsyncCompletions:
        return _DirectCompletions(self._client)


class DirectChatOpenAI(AsyncOpenAI):
    @cached_property
    def chat(self) -> AsyncChat:
        return _DirectChat(self)
