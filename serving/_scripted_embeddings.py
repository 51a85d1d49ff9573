"""A deterministic embeddings/rerank/score endpoint for tests (a test double, not a model).

Vectors are hashed bags of words: each lower-cased word adds +-1 at a position its hash
picks, so texts sharing words are near and the same text always gives the same vector.
Rerank and score default to the share of the query's words found in the document; a test
may script its own `relevance(query, document)`. Mounted on the scripted model server::

    ScriptedModelServer(script, embeddings=ScriptedEmbeddings())

It answers the seed's shapes: POST /v1/embeddings, /rerank (/v1, /v2), /score (/v1); its
models appear in GET /v1/models with their `capabilities`.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["ScriptedEmbeddings", "hashed_vector", "words"]

_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def hashed_vector(text: str, dimension: int) -> list[float]:
    vector = [0.0] * dimension
    for word in words(text):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        slot = int.from_bytes(digest[:4], "little") % dimension
        vector[slot] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def word_overlap(query: str, document: str) -> float:
    wanted = set(words(query))
    return len(wanted & set(words(document))) / len(wanted) if wanted else 0.0


class ScriptedEmbeddings:
    def __init__(
        self,
        *,
        model: str = "scripted-embed",
        rerank_model: str | None = "scripted-rerank",
        dimension: int = 256,
        relevance: Callable[[str, str], float] = word_overlap,
    ) -> None:
        self.model = model
        self.rerank_model = rerank_model
        self.dimension = dimension
        self.relevance = relevance
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def model_entries(self) -> list[dict[str, Any]]:
        if self.rerank_model == self.model:  # one bi-encoder for all three, like the bundled server
            capabilities = ["embedding", "rerank", "score"]
            return [
                {"id": self.model, "object": "model", "owned_by": "scripted", "capabilities": capabilities}
            ]
        entries: list[dict[str, Any]] = [
            {"id": self.model, "object": "model", "owned_by": "scripted", "capabilities": ["embedding"]}
        ]
        if self.rerank_model:
            entries.append(
                {
                    "id": self.rerank_model,
                    "object": "model",
                    "owned_by": "scripted",
                    "capabilities": ["rerank", "score"],
                }
            )
        return entries

    def embedded_texts(self) -> list[str]:
        """Every text embedded so far, in order (tests count what an index run sent)."""
        out: list[str] = []
        for path, body in self.requests:
            if path == "embeddings":
                value = body["input"]
                out += [value] if isinstance(value, str) else list(value)
        return out

    def routes(self) -> list[Any]:
        from starlette.requests import Request
        from starlette.responses import JSONResponse, Response
        from starlette.routing import Route

        def error(message: str, status: int) -> Response:
            return JSONResponse({"error": {"message": message, "type": "invalid_request_error"}}, status)

        async def embeddings(request: Request) -> Response:
            body = await request.json()
            with self._lock:
                self.requests.append(("embeddings", body))
            if body.get("model") != self.model:
                return error(f"model {body.get('model')!r} is not an embedding model here", 404)
            texts = body.get("input")
            texts = [texts] if isinstance(texts, str) else texts
            if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
                return error("input must be a non-empty string or list of non-empty strings", 400)
            tokens = sum(len(words(t)) for t in texts)
            return JSONResponse(
                {
                    "object": "list",
                    "model": self.model,
                    "data": [
                        {"object": "embedding", "index": i, "embedding": hashed_vector(t, self.dimension)}
                        for i, t in enumerate(texts)
                    ],
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                }
            )

        def _pairs_model(body: dict[str, Any]) -> Response | None:
            if not self.rerank_model or body.get("model") not in (self.rerank_model, self.model):
                return error(f"model {body.get('model')!r} cannot rerank here", 404)
            return None

        async def rerank(request: Request) -> Response:
            body = await request.json()
            with self._lock:
                self.requests.append(("rerank", body))
            if (bad := _pairs_model(body)) is not None:
                return bad
            query, documents = body.get("query"), body.get("documents")
            if not isinstance(query, str) or not isinstance(documents, list):
                return error("rerank needs a query string and a documents list", 400)
            scored = sorted(
                ((i, self.relevance(query, d)) for i, d in enumerate(documents)), key=lambda p: -p[1]
            )
            top_n = int(body.get("top_n") or 0) or len(scored)
            return JSONResponse(
                {
                    "id": "rerank-scripted",
                    "model": body["model"],
                    "usage": {"total_tokens": len(words(query)) + sum(len(words(d)) for d in documents)},
                    "results": [
                        {"index": i, "document": {"text": documents[i]}, "relevance_score": s}
                        for i, s in scored[:top_n]
                    ],
                }
            )

        async def score(request: Request) -> Response:
            body = await request.json()
            with self._lock:
                self.requests.append(("score", body))
            if (bad := _pairs_model(body)) is not None:
                return bad
            left, right = _as_list(body.get("text_1")), _as_list(body.get("text_2"))
            if len(left) == 1:
                left = [left[0]] * len(right)
            if not right or len(left) != len(right):
                return error("text_1 and text_2 must be strings or lists of one length", 400)
            return JSONResponse(
                {
                    "id": "score-scripted",
                    "object": "list",
                    "model": body["model"],
                    "data": [
                        {"index": i, "object": "score", "score": self.relevance(a, b)}
                        for i, (a, b) in enumerate(zip(left, right, strict=True))
                    ],
                    "usage": {},
                }
            )

        return [
            Route("/v1/embeddings", embeddings, methods=["POST"]),
            *(Route(p, rerank, methods=["POST"]) for p in ("/rerank", "/v1/rerank", "/v2/rerank")),
            *(Route(p, score, methods=["POST"]) for p in ("/score", "/v1/score")),
        ]


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return list(value) if isinstance(value, list) else []
