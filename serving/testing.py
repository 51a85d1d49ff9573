"""A scripted OpenAI-compatible model server for testing scenarios without a real model.

It is a real HTTP server on 127.0.0.1 (uvicorn in a background thread), so the code under
test runs its real OpenAI client, real SSE parsing and real tool-call JSON::

    from serving.testing import Reply, ScriptedModelServer

    with ScriptedModelServer([Reply.tool_call("get_current_time", {"timezone": "Asia/Seoul"}),
                              Reply.text("It is noon. TERMINATE")]) as server:
        scenario = load_scenario("time_assistant", base_url=server.base_url, model=server.model)

A script is a list of replies served in order (the last one repeats) or a callable that
receives the request body and returns a reply.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

__all__ = ["Reply", "ScriptedModelServer", "ScriptedToolCall", "Script", "message_text"]


@dataclass(frozen=True)
class ScriptedToolCall:
    name: str
    arguments: Mapping[str, Any] | str  # a str is sent verbatim, to script malformed JSON

    def arguments_json(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(dict(self.arguments))


@dataclass(frozen=True)
class Reply:
    content: str | None = None
    tool_calls: tuple[ScriptedToolCall, ...] = ()
    prompt_tokens: int | None = None  # default: estimated from the request
    completion_tokens: int | None = None  # default: estimated from the reply

    @classmethod
    def text(cls, content: str) -> Reply:
        return cls(content=content)

    @classmethod
    def tool_call(cls, name: str, arguments: Mapping[str, Any] | str) -> Reply:
        return cls(tool_calls=(ScriptedToolCall(name, arguments),))

    @classmethod
    def calls(cls, calls: Sequence[tuple[str, Mapping[str, Any] | str]]) -> Reply:
        return cls(tool_calls=tuple(ScriptedToolCall(n, a) for n, a in calls))


Script = Sequence[Reply] | Callable[[dict[str, Any]], Reply]


def message_text(message: Mapping[str, Any]) -> str:
    """The text of one request message, whether its content is a string or a list of parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _prompt_tokens(body: Mapping[str, Any]) -> int:
    messages = body.get("messages", [])
    text = "".join(message_text(m) for m in messages)
    tools = json.dumps(body.get("tools", [])) if body.get("tools") else ""
    return _estimate_tokens(text + tools) + 4 * len(messages)


@dataclass
class _Completion:
    id: str
    created: int
    model: str
    reply: Reply
    prompt_tokens: int
    completion_tokens: int

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.reply.tool_calls else "stop"

    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }

    def tool_calls_json(self) -> list[dict[str, Any]]:
        return [
            {
                "id": f"call_{self.id[-8:]}_{i}",
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments_json()},
            }
            for i, c in enumerate(self.reply.tool_calls)
        ]

    def response(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.reply.content}
        if self.reply.tool_calls:
            message["tool_calls"] = self.tool_calls_json()
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}],
            "usage": self.usage(),
        }

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }

    def chunks(self, include_usage: bool) -> list[dict[str, Any]]:
        out = [self._chunk({"role": "assistant", "content": ""})]
        if self.reply.content:
            # word-sized pieces, so streaming consumers see several deltas
            for piece in _split_keep_spaces(self.reply.content):
                out.append(self._chunk({"content": piece}))
        for i, call in enumerate(self.tool_calls_json()):
            fn = call["function"]
            out.append(
                self._chunk(
                    {
                        "tool_calls": [
                            {
                                "index": i,
                                "id": call["id"],
                                "type": "function",
                                "function": {"name": fn["name"], "arguments": ""},
                            }
                        ]
                    }
                )
            )
            args = fn["arguments"]
            half = len(args) // 2
            for part in (args[:half], args[half:]):
                if part:
                    out.append(self._chunk({"tool_calls": [{"index": i, "function": {"arguments": part}}]}))
        out.append(self._chunk({}, self.finish_reason))
        if include_usage:
            usage_chunk = self._chunk({})
            usage_chunk["choices"] = []
            usage_chunk["usage"] = self.usage()
            out.append(usage_chunk)
        return out


def _split_keep_spaces(text: str) -> list[str]:
    pieces: list[str] = []
    current = ""
    for ch in text:
        current += ch
        if ch == " ":
            pieces.append(current)
            current = ""
    if current:
        pieces.append(current)
    return pieces


class ScriptedModelServer:
    """An OpenAI-compatible server on 127.0.0.1 that answers from a script.

    ``latency`` is slept (asynchronously) before each chat completion, so many
    concurrent requests overlap the way they do against a real GPU server.
    """

    def __init__(
        self,
        script: Script,
        *,
        model: str = "scripted-model",
        owned_by: str = "scripted",  # "llamacpp" / "vllm": look like that server in GET /models
        latency: float = 0.0,
        api_key: str | None = None,
    ) -> None:
        self.model = model
        self.owned_by = owned_by
        self.latency = latency
        self.api_key = api_key  # when set, chat requests without `Bearer <api_key>` get 401
        self.requests: list[dict[str, Any]] = []
        self._script = script
        self._position = 0
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._port: int | None = None

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("ScriptedModelServer is not started")
        return f"http://127.0.0.1:{self._port}/v1"

    @property
    def calls(self) -> int:
        return len(self.requests)

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(body)
            if callable(self._script):
                return self._script(body)
            if not self._script:
                raise RuntimeError("empty script")
            reply = self._script[min(self._position, len(self._script) - 1)]
            self._position += 1
            return reply

    def _complete(self, body: dict[str, Any]) -> _Completion:
        reply = self._next_reply(body)
        completion_text = (reply.content or "") + "".join(c.arguments_json() for c in reply.tool_calls)
        return _Completion(
            id=f"chatcmpl-scripted-{next(self._ids)}-{uuid.uuid4().hex[:6]}",
            created=int(time.time()),
            model=str(body.get("model") or self.model),
            reply=reply,
            prompt_tokens=reply.prompt_tokens if reply.prompt_tokens is not None else _prompt_tokens(body),
            completion_tokens=(
                reply.completion_tokens
                if reply.completion_tokens is not None
                else _estimate_tokens(completion_text)
            ),
        )

    def _app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse, Response, StreamingResponse
        from starlette.routing import Route

        async def models(_: Request) -> Response:
            return JSONResponse(
                {"object": "list", "data": [{"id": self.model, "object": "model", "owned_by": self.owned_by}]}
            )

        async def health(_: Request) -> Response:
            return JSONResponse({"status": "ok"})

        async def chat(request: Request) -> Response:
            if self.api_key is not None and request.headers.get("authorization") != f"Bearer {self.api_key}":
                return JSONResponse(
                    {"error": {"message": "invalid api key", "type": "invalid_request_error"}},
                    status_code=401,
                )
            body = await request.json()
            if not isinstance(body.get("messages"), list) or not body["messages"]:
                return JSONResponse(
                    {
                        "error": {
                            "message": "messages must be a non-empty list",
                            "type": "invalid_request_error",
                        }
                    },
                    status_code=400,
                )
            if self.latency:
                await asyncio.sleep(self.latency)
            try:
                completion = self._complete(body)
            except Exception as exc:  # a broken script is reported to the client, like a server error
                return JSONResponse({"error": {"message": str(exc), "type": "server_error"}}, status_code=500)
            if not body.get("stream"):
                return JSONResponse(completion.response())
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

            async def events() -> AsyncIterator[bytes]:
                for chunk in completion.chunks(include_usage):
                    yield f"data: {json.dumps(chunk)}\n\n".encode()
                yield b"data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")

        return Starlette(
            routes=[
                Route("/v1/models", models),
                Route("/health", health),
                Route("/v1/chat/completions", chat, methods=["POST"]),
            ]
        )

    def start(self) -> Self:
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # accepted sockets inherit it: without it, delayed ACKs add ~40 ms to every response
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app(),
            log_level="warning",
            lifespan="off",
            ws="none",
            access_log=False,
            timeout_keep_alive=30,
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="scripted-model-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("scripted model server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)
