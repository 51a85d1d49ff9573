"""The bundled server's front: one base URL for every model behind it, routed by `model`.

Chat and completions are proxied to the chat backend as they are (streams too). Embeddings,
rerank and score are validated here; a llama.cpp or ONNX Runtime embedding backend gets plain embedding
requests and the front computes rerank and score as the cosine of the embeddings (the seed's
"embedding-based" rerank; the response's `model` is the embedding model that scored), while
a vLLM backend gets the request itself. A backend that died fails only its own model's
requests, with a message naming it.
"""

from __future__ import annotations

import array
import asyncio
import base64
import json
import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from serving._supervise import EXIT_NOTICE, Health, Supervisor
from serving._wire import (
    CAPABILITIES,
    ApiError,
    Capability,
    EmbeddingsRequest,
    RerankRequest,
    ScoreRequest,
    validation_error,
)

log = logging.getLogger(__name__)

Engine = Literal["llama.cpp", "onnxruntime", "vllm", "external"]
# backends that only embed: the front computes rerank and score from their vectors
LOCAL_POOLING: tuple[Engine, ...] = ("llama.cpp", "onnxruntime")
_NOUN: dict[Capability, str] = {
    "chat": "chat",
    "embedding": "embeddings",
    "rerank": "rerank",
    "score": "score",
}


class BackendSpec(BaseModel):
    """One model behind the front (the plan file's entries)."""

    model_config = ConfigDict(extra="forbid")
    model: str  # the id clients send and /v1/models lists
    capabilities: list[Capability]
    engine: Engine
    url: str  # the backend's own base URL, ending with /v1
    command: list[str] | None = None  # how to start it; None: it is already running
    max_input_tokens: int | None = None  # an embedding model's context
    dimensions: int | None = None  # an embedding model's vector size
    log: str | None = None
    start_timeout: float = 120.0


class ProcessHandle(Protocol):
    """What the front needs of a backend process it started."""

    @property
    def pid(self) -> int | None: ...

    def crash_message(self) -> str | None: ...


@dataclass
class Backend:
    spec: BackendSpec
    process: ProcessHandle | None = None
    health: Health = field(default_factory=Health)  # kept by the Supervisor when there is one

    @property
    def model(self) -> str:
        return self.spec.model

    @property
    def start_timeout(self) -> float:
        return self.spec.start_timeout

    def describe(self, pid: bool = True) -> str:
        number = self.process.pid if self.process is not None and pid else None
        where = f"pid {number}, " if number else ""
        return f"the {self.spec.engine} backend of {self.model} ({where}{self.spec.url})"

    def gone(self) -> str | None:
        """Why this backend cannot take a request now, or None."""
        if (why := self.health.unavailable()) is not None:
            return why
        return self.process.crash_message() if self.process is not None else None

    async def lost(self, exc: BaseException, generation: int) -> str:
        """Why a request's connection to this backend broke: its process's end, if it ended.

        `generation`: the backend's when the request was sent (a restart may already be over).
        """
        h = self.health
        if self.process is not None and h.status == "ok" and h.generation == generation:
            try:  # the connection breaks a moment before the exit is reported
                await asyncio.wait_for(h.exited.wait(), EXIT_NOTICE)
            except TimeoutError:
                pass
        if h.status == "ok" and h.generation != generation and h.last_end is not None:
            return (
                f"{h.last_end} during the request; it was restarted (restart {h.restarts}): retry the request"
            )
        why = h.unavailable(during_request=True)
        if why is None and self.process is not None:
            why = self.process.crash_message()
        return why or f"{self.describe()} did not answer: {type(exc).__name__} {exc}".rstrip()


@dataclass
class Router:
    backends: list[Backend]
    created: int = field(default_factory=lambda: int(time.time()))

    def serving(self, capability: Capability) -> list[Backend]:
        return [b for b in self.backends if capability in b.spec.capabilities]

    def pick(self, model: object, capability: Capability) -> Backend:
        able = self.serving(capability)
        names = ", ".join(b.model for b in able) or "none"
        if not able:
            served = "; ".join(f"{b.model} ({', '.join(b.spec.capabilities)})" for b in self.backends)
            raise ApiError(
                404, f"no model here serves {_NOUN[capability]}; models: {served}", code="model_not_found"
            )
        if model is None:
            if len(able) == 1:
                return able[0]
            raise ApiError(
                400, f"model: required; models that serve {_NOUN[capability]}: {names}", param="model"
            )
        if not isinstance(model, str):
            raise ApiError(400, f"model: must be a string; models that serve {_NOUN[capability]}: {names}")
        for b in self.backends:
            if b.model == model:
                if capability in b.spec.capabilities:
                    return b
                raise ApiError(
                    400,
                    f"model {model!r} does not serve {_NOUN[capability]} (it serves "
                    f"{', '.join(b.spec.capabilities)}); models that do: {names}",
                    param="model",
                    code="model_not_capable",
                )
        raise ApiError(
            404,
            f"model {model!r} is not served here; models that serve {_NOUN[capability]}: {names}",
            param="model",
            code="model_not_found",
        )

    def models(self) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {
                    "id": b.model,
                    "object": "model",
                    "created": self.created,
                    "owned_by": "agentteams",
                    "capabilities": list(b.spec.capabilities),
                    "engine": b.spec.engine,
                    **({"max_input_tokens": b.spec.max_input_tokens} if b.spec.max_input_tokens else {}),
                    **({"dimensions": b.spec.dimensions} if b.spec.dimensions else {}),
                }
                for b in self.backends
            ],
        }


def _error(exc: ApiError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        raise ApiError(400, "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body


def _unavailable(message: str) -> ApiError:
    return ApiError(503, message, code="backend_unavailable", type="server_error")


async def _check(backend: Backend) -> int:
    """The backend's generation, when it can take a request now (else a 503 saying why)."""
    if (why := backend.gone()) is not None:
        raise _unavailable(why)
    return backend.health.generation


async def _lost(backend: Backend, exc: BaseException, generation: int) -> ApiError:
    return _unavailable(await backend.lost(exc, generation))


def _backend_error(backend: Backend, resp: httpx.Response) -> ApiError:
    try:
        detail = resp.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        detail = resp.text[:200]
    status = resp.status_code if resp.status_code < 500 else 502
    return ApiError(status, f"{backend.describe()} answered HTTP {resp.status_code}: {detail}")


class Front:
    """The ASGI app and the HTTP client it shares across requests."""

    def __init__(
        self, router: Router, client: httpx.AsyncClient | None = None, supervisor: Supervisor | None = None
    ) -> None:
        self.router = router
        # no timeout: a long generation is the chat backend's business, not the front's
        self.client = client or httpx.AsyncClient(timeout=None, trust_env=False)
        self.supervisor = supervisor  # restarts the backends it started; None: tests, external

    def app(self) -> Starlette:
        routes = [
            Route("/health", self.health, methods=["GET"]),
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/v1/chat/completions", self._proxy("chat"), methods=["POST"]),
            Route("/v1/completions", self._proxy("chat"), methods=["POST"]),
            Route("/v1/embeddings", self._handler(self.embeddings), methods=["POST"]),
            # the seed's own curl example posts to /v1/embedding
            Route("/v1/embedding", self._handler(self.embeddings), methods=["POST"]),
        ]
        routes += [
            Route(p, self._handler(self.rerank), methods=["POST"])
            for p in ("/rerank", "/v1/rerank", "/v2/rerank")
        ]
        routes += [Route(p, self._handler(self.score), methods=["POST"]) for p in ("/score", "/v1/score")]
        return Starlette(routes=routes, lifespan=self._lifespan)

    @asynccontextmanager
    async def _lifespan(self, _: Starlette) -> AsyncIterator[None]:
        if self.supervisor is not None:
            self.supervisor.start()
        try:
            yield
        finally:
            if self.supervisor is not None:
                await self.supervisor.stop()
            await self.client.aclose()

    async def health(self, _: Request) -> Response:
        backends = {
            b.model: {
                "status": "exited" if b.health.status == "ok" and b.gone() else b.health.status,
                "pid": b.process.pid if b.process else None,
                "restarts": b.health.restarts,
                **({"problem": b.gone()} if b.gone() else {}),
            }
            for b in self.router.backends
        }
        return JSONResponse({"status": "ok", "backends": backends})

    async def models(self, _: Request) -> Response:
        return JSONResponse(self.router.models())

    def _handler(
        self, fn: Callable[[dict[str, Any], Request], Awaitable[dict[str, Any]]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            try:
                return JSONResponse(await fn(await _json_body(request), request))
            except ApiError as exc:
                return _error(exc)

        return handle

    def _proxy(self, capability: Capability) -> Callable[[Request], Awaitable[Response]]:
        async def proxy(request: Request) -> Response:
            raw = await request.body()
            try:
                body = await _json_body(request)
                backend = self.router.pick(body.get("model"), capability)
                generation = await _check(backend)
                url = backend.spec.url + request.url.path.removeprefix("/v1")
                headers = {"content-type": "application/json"}
                if auth := request.headers.get("authorization"):
                    headers["authorization"] = auth
                upstream = self.client.build_request("POST", url, content=raw, headers=headers)
                try:
                    resp = await self.client.send(upstream, stream=True)
                except httpx.TransportError as exc:
                    raise await _lost(backend, exc, generation) from exc
            except ApiError as exc:
                return _error(exc)
            return StreamingResponse(
                _relay(resp, backend, generation),
                status_code=resp.status_code,
                media_type=resp.headers.get("content-type"),
                background=BackgroundTask(resp.aclose),
            )

        return proxy

    # embeddings, rerank, score

    async def _post(self, backend: Backend, path: str, body: dict[str, Any]) -> dict[str, Any]:
        generation = await _check(backend)
        try:
            resp = await self.client.post(backend.spec.url + path, json=body)
        except httpx.TransportError as exc:
            raise await _lost(backend, exc, generation) from exc
        if resp.status_code != 200:
            raise _backend_error(backend, resp)
        data: dict[str, Any] = resp.json()
        return data

    async def _tokens(self, backend: Backend, text: str) -> list[int]:
        root = backend.spec.url.removesuffix("/v1")
        generation = await _check(backend)
        try:
            resp = await self.client.post(root + "/tokenize", json={"content": text, "add_special": True})
        except httpx.TransportError as exc:
            raise await _lost(backend, exc, generation) from exc
        if resp.status_code != 200:
            raise _backend_error(backend, resp)
        return list(resp.json()["tokens"])

    async def embed(
        self, backend: Backend, texts: Sequence[str], truncate: int | None, field_name: str
    ) -> tuple[list[list[float]], int]:
        """Vectors (unit length) and prompt tokens from a llama.cpp or ONNX Runtime embedding backend."""
        limit = backend.spec.max_input_tokens
        if truncate is not None and limit is not None and truncate > limit:
            raise ApiError(
                400,
                f"truncate_prompt_tokens: {truncate} is more than {backend.model}'s limit of {limit} tokens",
                param="truncate_prompt_tokens",
            )
        inputs: list[Any] = list(texts)
        if truncate is not None:
            inputs = []
            for text in texts:
                ids = await self._tokens(backend, text)
                # keep the closing [SEP]-style token, as a tokenizer truncating on the right does
                inputs.append(ids if len(ids) <= truncate else ids[: truncate - 1] + ids[-1:])
        generation = await _check(backend)
        try:
            resp = await self.client.post(backend.spec.url + "/embeddings", json={"input": inputs})
        except httpx.TransportError as exc:
            raise await _lost(backend, exc, generation) from exc
        if resp.status_code == 400 and "exceed_context_size" in resp.text:
            raise await self._too_long(backend, texts, field_name)
        if resp.status_code != 200:
            raise _backend_error(backend, resp)
        data = resp.json()
        rows = sorted(data["data"], key=lambda d: d["index"])
        return [r["embedding"] for r in rows], int(data["usage"]["prompt_tokens"])

    async def _too_long(self, backend: Backend, texts: Sequence[str], field_name: str) -> ApiError:
        limit = backend.spec.max_input_tokens
        for i, text in enumerate(texts):
            n = len(await self._tokens(backend, text))
            if limit is not None and n > limit:
                where = field_name if len(texts) == 1 else f"{field_name}[{i}]"
                return ApiError(
                    400,
                    f"{where}: {n} tokens, more than {backend.model}'s limit of {limit}; shorten it "
                    "or pass truncate_prompt_tokens",
                    param=field_name,
                    code="context_length_exceeded",
                )
        return ApiError(400, f"{field_name}: longer than {backend.model} takes", param=field_name)

    async def embeddings(self, body: dict[str, Any], _: Request) -> dict[str, Any]:
        backend = self.router.pick(body.get("model"), "embedding")
        req = _parse(EmbeddingsRequest, body)
        texts = req.texts()
        if backend.spec.engine not in LOCAL_POOLING:
            return await self._post(backend, "/embeddings", body)
        if req.dimensions is not None and req.dimensions != backend.spec.dimensions:
            raise ApiError(
                400,
                f"dimensions: {backend.model} returns {backend.spec.dimensions}-dimensional vectors only",
                param="dimensions",
            )
        vectors, tokens = await self.embed(backend, texts, req.truncate_prompt_tokens, "input")
        data = [
            {"object": "embedding", "index": i, "embedding": _encode(v, req.encoding_format)}
            for i, v in enumerate(vectors)
        ]
        return {
            "id": f"embd-{uuid.uuid4().hex}",
            "object": "list",
            "created": int(time.time()),
            "model": backend.model,
            "data": data,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    async def rerank(self, body: dict[str, Any], request: Request) -> dict[str, Any]:
        backend = self.router.pick(body.get("model"), "rerank")
        req = _parse(RerankRequest, body).checked()
        if backend.spec.engine not in LOCAL_POOLING:
            return await self._post(backend, request.url.path.removeprefix("/v1").removeprefix("/v2"), body)
        vectors, tokens = await self.embed(
            backend, [req.query, *req.documents], req.truncate_prompt_tokens, "documents"
        )
        query, docs = vectors[0], vectors[1:]
        scores = [_cosine(query, d) for d in docs]
        order = sorted(range(len(docs)), key=lambda i: scores[i], reverse=True)
        results = [
            {
                "index": i,
                **({"document": {"text": req.documents[i]}} if req.return_documents else {}),
                "relevance_score": _unit(scores[i]),
            }
            for i in order[: req.top_n or None]
        ]
        return {
            "id": f"rerank-{uuid.uuid4().hex}",
            "model": backend.model,
            "usage": {"total_tokens": tokens},
            "results": results,
        }

    async def score(self, body: dict[str, Any], request: Request) -> dict[str, Any]:
        backend = self.router.pick(body.get("model"), "score")
        req = _parse(ScoreRequest, body)
        pairs = req.pairs()
        if backend.spec.engine not in LOCAL_POOLING:
            return await self._post(backend, request.url.path.removeprefix("/v1"), body)
        unique = list(dict.fromkeys(t for pair in pairs for t in pair))
        vectors, tokens = await self.embed(backend, unique, req.truncate_prompt_tokens, "text_2")
        by_text = dict(zip(unique, vectors, strict=True))
        data = [
            {"index": i, "object": "score", "score": _unit(_cosine(by_text[a], by_text[b]))}
            for i, (a, b) in enumerate(pairs)
        ]
        return {
            "id": f"score-{uuid.uuid4().hex}",
            "object": "list",
            "created": int(time.time()),
            "model": backend.model,
            "data": data,
            "usage": {
                "prompt_tokens": tokens,
                "total_tokens": tokens,
                "completion_tokens": 0,
                "prompt_tokens_details": None,
            },
        }


async def _relay(resp: httpx.Response, backend: Backend, generation: int) -> AsyncIterator[bytes]:
    try:
        async for chunk in resp.aiter_raw():
            yield chunk
    except httpx.TransportError as exc:
        # the backend died mid-stream: the status line is sent, so a stream ends with an error
        # event (the OpenAI SDK raises it as an APIError); other bodies just end early
        why = await backend.lost(exc, generation)
        log.warning("%s", why)
        if "text/event-stream" in resp.headers.get("content-type", ""):
            error = _unavailable(why).body()
            yield b"\n\ndata: " + json.dumps(error).encode() + b"\n\n"


_T = TypeVar("_T", bound=BaseModel)


def _parse(model: type[_T], body: dict[str, Any]) -> _T:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise validation_error(exc, model) from None


def _encode(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "float":
        return vector
    packed = array.array("f", vector)  # float32, as the OpenAI SDK decodes it
    if sys.byteorder == "big":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    # llama.cpp returns unit vectors (embd_normalize 2): the dot product is the cosine
    return float(sum(x * y for x, y in zip(a, b, strict=True)))


def _unit(cosine: float) -> float:
    """Relevance in 0..1 as the seed's API defines it: the cosine, below 0 reported as 0."""
    return min(1.0, max(0.0, cosine))


__all__ = ["CAPABILITIES", "Backend", "BackendSpec", "Front", "Router"]
