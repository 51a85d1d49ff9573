"""An AsyncOpenAI client whose `chat.completions.create` costs a team run far less CPU.

Two shortcuts, both measured in the gateway at 100 concurrent runs:

- The params go out as given. The SDK's `create` first walks the whole request through
  its type-driven transform (aliases, dates, base64 fields); AutoGen hands it plain
  JSON-ready dicts, for which that walk changes nothing, yet it was a fifth of a run's CPU
  and grows with every message in the context.
- A non-streamed call is one aiohttp POST whose 200 reply becomes a ChatCompletion: about
  0.5 ms of CPU against 2 ms through the SDK's request machinery. Anything but a 200 (an
  error status, a refused connection, a timeout) counts as the first attempt and is sent
  again through the SDK with one retry fewer, so callers get the SDK's attempts and its
  typed errors.

tests/agents/test_direct_chat.py checks that the server receives the very body AutoGen's
stock client sends, and that errors and attempts are the SDK's.
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any

import aiohttp
import aiohttp.helpers
import pydantic
import yarl
from openai import APITimeoutError, AsyncOpenAI, AsyncStream, NotGiven, Omit
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
    _client: DirectChatOpenAI

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
        stream = bool(body.get("stream"))
        if not stream:
            if (completion := await self._client.post_completion(body, options)) is not None:
                return completion
            options["max_retries"] = max(self._client.max_retries - 1, 0)  # that was the first attempt
        return await self._client.post(
            "/chat/completions",
            body=body,
            options=options,
            cast_to=ChatCompletion,
            stream=stream,
            stream_cls=AsyncStream[ChatCompletionChunk],
        )


class _DirectChat(AsyncChat):
    @cached_property
    def completions(self) -> AsyncCompletions:
        return _DirectCompletions(self._client)


class DirectChatOpenAI(AsyncOpenAI):
    _session: aiohttp.ClientSession | None = None
    _proxy: yarl.URL | None = None
    _proxy_auth: aiohttp.BasicAuth | None = None

    @cached_property
    def chat(self) -> AsyncChat:
        return _DirectChat(self)

    async def post_completion(self, body: dict[str, Any], options: RequestOptions) -> ChatCompletion | None:
        """The server's 200 reply to a non-streamed chat completion, or None for the SDK to redo."""
        timeout = options.get("timeout", self.timeout)
        if set(options) - {"security", "timeout", "extra_json"} or not isinstance(timeout, int | float):
            return None  # headers or query of the caller's own: the SDK's business
        url = f"{str(self.base_url).rstrip('/')}/chat/completions"
        if self._session is None:
            # the environment's proxy for this URL, looked up once: trust_env=True would read
            # the environment and ~/.netrc in a thread on every call (a tenth of a gateway
            # run's CPU); the key is ours, so .netrc has nothing to add
            try:
                self._proxy, self._proxy_auth = aiohttp.helpers.get_env_proxy_for_url(yarl.URL(url))
            except LookupError:
                self._proxy, self._proxy_auth = None, None
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        headers = {"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"}
        data = json.dumps({**body, **options.get("extra_json", {})})
        try:
            async with self._session.post(
                url,
                data=data,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
                proxy=self._proxy,
                proxy_auth=self._proxy_auth,
            ) as response:
                if response.status != 200:
                    return None
                reply = await response.json(content_type=None)
        except aiohttp.ClientError:
            return None
        except TimeoutError:
            if self.max_retries > 0:
                return None
            raise APITimeoutError(request=self._client.build_request("POST", url)) from None
        try:
            return ChatCompletion.model_validate(reply)
        except pydantic.ValidationError:
            return ChatCompletion.construct(**reply)  # the SDK's own leniency with odd servers

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        await super().close()
