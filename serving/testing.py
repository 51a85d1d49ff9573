"""A scripted OpenAI-compatible model server for testing scenarios without a real model.

It is a real HTTP server on 127.0.0.1 (uvicorn in a background thread), so the code under
test runs its real OpenAI client, real SSE parsing and real tool-call JSON::

    from serving.testing import Fault, Reply, ScriptedModelServer

    with ScriptedModelServer([Reply.tool_call("get_current_time", {"timezone": "Asia/Seoul"}),
                              Reply.text("It is noon. TERMINATE")]) as server:
        scenario = load_scenario("time_assistant", base_url=server.base_url, model=server.model)
        ...
        server.assert_complete()        # every scripted step was used, and nothing more

A script is a list of steps served in order, one per chat completion request, or a
callable that receives the request body and returns a step. The server is strict: a
request after the last step is answered with HTTP 500 naming the problem and recorded, and
leaving the ``with`` block (or ``assert_complete()``) then fails the test with it. Load
benchmarks that want the last reply forever say so: ``when_exhausted="repeat_last"``.

A step is a ``Reply`` or a ``Fault``. Faults, to see how a scenario copes:

========================================  ============================================
``Fault.status(500)`` / ``(503)``         that HTTP status with an OpenAI error body
``Fault.rate_limited(retry_after=2)``     429 with a ``Retry-After`` header
``Fault.hang()``                          never answers (the client's timeout must act)
``Fault.disconnect()``                    sends part of the reply, then drops the
                                          connection (mid-SSE when streaming)
``Reply.tool_call("f", "{not json")``     malformed tool-call arguments (a str is sent
                                          verbatim)
``Reply.tool_call("no_such_tool", {})``   a call to a tool the agent does not have
``Reply.empty()``                         an empty reply: no text, no tool call
``when_exhausted="repeat_last"`` with     a model that never says TERMINATE (the team's
``[Reply.text("still thinking")]``        safety limits must stop it)
========================================  ============================================

Each fault consumes one step, so a retry by the client gets the next one: ``[Fault.status(
503), Reply.text("ok")]`` is a server that recovers; ``mcp_servers.testing`` has the MCP
side (a server that crashes mid-call, exits at start, or whose tool raises).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self

from agentteams import AgentTeamsError

if TYPE_CHECKING:
    from starlette.responses import Response

__all__ = [
    "Fault",
    "Reply",
    "Script",
    "ScriptViolation",
    "ScriptedModelServer",
    "ScriptedToolCall",
    "Step",
    "message_text",
]


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

    @classmethod
    def empty(cls) -> Reply:
        """A reply with no text and no tool call (``content: ""``)."""
        return cls(content="")


FaultKind = Literal["status", "hang", "disconnect"]


@dataclass(frozen=True)
class Fault:
    """A step that misbehaves instead of answering; build one with the classmethods."""

    kind: FaultKind
    status_code: int = 500
    message: str = ""
    retry_after: float | None = None

    @classmethod
    def status(cls, status_code: int, message: str | None = None) -> Fault:
        """Answer with this HTTP status and an OpenAI-style error body."""
        return cls("status", status_code, message or f"scripted fault: HTTP {status_code}")

    @classmethod
    def rate_limited(cls, retry_after: float = 1.0, message: str = "scripted fault: rate limited") -> Fault:
        """429 with ``Retry-After: <seconds>``."""
        return cls("status", 429, message, retry_after)

    @classmethod
    def hang(cls) -> Fault:
        """Accept the request and never answer (until the server stops)."""
        return cls("hang")

    @classmethod
    def disconnect(cls) -> Fault:
        """Start the reply, then drop the connection: mid-SSE for a streamed request."""
        return cls("disconnect")


Step = Reply | Fault
Script = Sequence[Step] | Callable[[dict[str, Any]], Step]


class ScriptViolation(AgentTeamsError, AssertionError):
    """The code under test made a model call the script did not expect, or left steps unused."""


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


class _ScriptedDisconnect(AgentTeamsError):
    """Raised inside a response to make uvicorn drop the connection (Fault.disconnect)."""


class _QuietDisconnects(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], _ScriptedDisconnect))


def _fault_response(fault: Fault) -> Response:
    from starlette.responses import JSONResponse

    kind = {429: "rate_limit_error", 503: "service_unavailable"}.get(fault.status_code, "server_error")
    headers = {"retry-after": f"{fault.retry_after:g}"} if fault.retry_after is not None else None
    return JSONResponse(
        {"error": {"message": fault.message, "type": kind, "code": fault.status_code}},
        status_code=fault.status_code,
        headers=headers,
    )


def _dropped(part: bytes, media_type: str, *, chunked: bool = False) -> Response:
    """A response that sends ``part`` and then drops the connection without finishing."""
    from starlette.responses import StreamingResponse

    async def body() -> AsyncIterator[bytes]:
        yield part
        raise _ScriptedDisconnect("scripted fault: connection dropped")

    # a Content-Length the body never reaches, so the client sees a truncated reply
    headers = None if chunked else {"content-length": str(2 * len(part) + 1)}
    return StreamingResponse(body(), media_type=media_type, headers=headers)


class ScriptedModelServer:
    """An OpenAI-compatible server on 127.0.0.1 that answers from a script.

    ``latency`` is slept (asynchronously) before each chat completion, so many
    concurrent requests overlap the way they do against a real GPU server.
    ``when_exhausted``: ``"fail"`` (the default) answers a request past the script's last
    step with HTTP 500 and records it in ``violations``; ``"repeat_last"`` serves the last
    step again, for load benchmarks and for a model that never stops.
    """

    def __init__(
        self,
        script: Script,
        *,
        model: str = "scripted-model",
        owned_by: str = "scripted",  # "llamacpp" / "vllm": look like that server in GET /models
        latency: float = 0.0,
        api_key: str | None = None,
        when_exhausted: Literal["fail", "repeat_last"] = "fail",
        embeddings: Any = None,  # serving._scripted_embeddings.ScriptedEmbeddings: /v1/embeddings etc.
    ) -> None:
        if not callable(script) and not script:
            raise ValueError("a script needs at least one step")
        self.model = model
        self.embeddings = embeddings
        self.owned_by = owned_by
        self.latency = latency
        self.api_key = api_key  # when set, chat requests without `Bearer <api_key>` get 401
        self.when_exhausted = when_exhausted
        self.requests: list[dict[str, Any]] = []
        self.violations: list[str] = []  # unexpected calls; raised when the server is left
        self._script = script
        self._position = 0
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._port: int | None = None
        self._stopping: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("ScriptedModelServer is not started")
        return f"http://127.0.0.1:{self._port}/v1"

    @property
    def calls(self) -> int:
        return len(self.requests)

    def _next_step(self, body: dict[str, Any]) -> Step:
        with self._lock:
            self.requests.append(body)
            if callable(self._script):
                try:
                    return self._script(body)
                except Exception as exc:
                    violation = f"the script raised on model call #{len(self.requests)}: {exc!r}"
                    self.violations.append(violation)
                    raise ScriptViolation(violation) from exc
            if self._position < len(self._script):
                self._position += 1
                return self._script[self._position - 1]
            if self.when_exhausted == "repeat_last":
                return self._script[-1]
            messages = body.get("messages") or [{}]
            violation = (
                f"unexpected model call #{len(self.requests)}: all {len(self._script)} scripted steps "
                f"were used (its last message: {message_text(messages[-1])[:200]!r})"
            )
            self.violations.append(violation)
            raise ScriptViolation(violation)

    def assert_complete(self) -> None:
        """Fail unless every scripted step was used and no unexpected call was made."""
        problems = list(self.violations)
        if not callable(self._script) and self._position < len(self._script):
            unused = len(self._script) - self._position
            problems.append(
                f"{unused} of {len(self._script)} scripted steps were not used "
                f"(the first: {self._script[self._position]!r})"
            )
        if problems:
            raise ScriptViolation("scripted model server: " + "; ".join(problems))

    def _raise_violations(self) -> None:
        if self.violations:
            raise ScriptViolation("scripted model server: " + "; ".join(self.violations))

    def _complete(self, body: dict[str, Any], reply: Reply) -> _Completion:
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
        from starlette.requests import Request
        from starlette.responses import JSONResponse, StreamingResponse
        from starlette.routing import Route

        async def models(_: Request) -> Response:
            data: list[dict[str, Any]] = [{"id": self.model, "object": "model", "owned_by": self.owned_by}]
            if self.embeddings is not None:
                data = [{**data[0], "capabilities": ["chat"]}, *self.embeddings.model_entries()]
            return JSONResponse({"object": "list", "data": data})

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
                step = self._next_step(body)
            except ScriptViolation as exc:  # the test fails at exit; the client sees why now
                return JSONResponse(
                    {"error": {"message": f"scripted model server: {exc}", "type": "server_error"}},
                    status_code=500,
                )
            if isinstance(step, Fault) and step.kind == "status":
                return _fault_response(step)
            if isinstance(step, Fault) and step.kind == "hang":
                await self._stop_event().wait()
                return _fault_response(Fault.status(503, "scripted model server: stopping"))
            reply = step if isinstance(step, Reply) else Reply.text("(the connection drops before this)")
            completion = self._complete(body, reply)
            drop = isinstance(step, Fault) and step.kind == "disconnect"
            if not body.get("stream"):
                if drop:
                    return _dropped(json.dumps(completion.response()).encode(), "application/json")
                return JSONResponse(completion.response())
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            events = [f"data: {json.dumps(c)}\n\n".encode() for c in completion.chunks(include_usage)]
            events.append(b"data: [DONE]\n\n")
            if drop:
                return _dropped(
                    b"".join(events[: max(1, len(events) // 2)]), "text/event-stream", chunked=True
                )

            async def stream() -> AsyncIterator[bytes]:
                for event in events:
                    yield event

            return StreamingResponse(stream(), media_type="text/event-stream")

        return self._routes_app(
            [
                Route("/v1/models", models),
                Route("/health", health),
                Route("/v1/chat/completions", chat, methods=["POST"]),
                *(self.embeddings.routes() if self.embeddings is not None else ()),
            ]
        )

    def _routes_app(self, routes: list[Any]) -> Any:
        """The Starlette app over ``routes``; a subclass may add routes (embeddings, ...) here."""
        from starlette.applications import Starlette

        return Starlette(routes=routes)

    def start(self) -> Self:
        import uvicorn

        error_log = logging.getLogger("uvicorn.error")
        if not any(isinstance(f, _QuietDisconnects) for f in error_log.filters):
            error_log.addFilter(_QuietDisconnects())

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
        self._stopping = None
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

    def _stop_event(self) -> asyncio.Event:
        """Set when stop() is called (from another thread): hanging requests then end."""
        if self._stopping is None:
            self._stopping = (asyncio.get_running_loop(), asyncio.Event())
        return self._stopping[1]

    def stop(self) -> None:
        if self._stopping is not None:
            loop, event = self._stopping
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(event.set)
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        if exc_type is None:
            self._raise_violations()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)
        if exc_type is None:
            self._raise_violations()
