"""The embedding and rerank endpoints, found as scenarios find theirs (serving.open_endpoint).

`auto` base URL: LLM_BASE_URL, else the bundled server running for this user, else the
embedded server started for the context. `auto` model: the entry of GET /v1/models whose
`capabilities` lists "embedding" (or "rerank"/"score"); a server whose entries carry no
capabilities and that lists one model is taken at its word.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from mcp_servers.search._errors import KnowledgeError

log = logging.getLogger(__name__)

AUTO = "auto"
BATCH = 32


@dataclass(frozen=True)
class ModelTarget:
    """Where to find a model: base URL (or auto), model id (or auto), key."""

    base_url: str = AUTO
    model: str = AUTO
    api_key: str = "EMPTY"


def _normalize(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise KnowledgeError(f"embedding base URL {url!r} is not an http(s) URL (or auto)")
    return url if url.endswith("/v1") else url + "/v1"


async def _model_entries(client: httpx.AsyncClient, url: str) -> list[dict[str, Any]]:
    try:
        resp = await client.get(f"{url}/models")
    except httpx.HTTPError as exc:
        raise KnowledgeError(f"cannot reach the embedding server at {url} ({type(exc).__name__})") from exc
    if resp.status_code >= 400:
        raise KnowledgeError(f"GET {url}/models failed with HTTP {resp.status_code}")
    try:
        return [dict(m) for m in resp.json()["data"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise KnowledgeError(f"GET {url}/models did not return an OpenAI model list") from exc


def pick_model(entries: Sequence[dict[str, Any]], wanted: str, capabilities: Sequence[str], url: str) -> str:
    """The model id for a capability; an explicit id must be served (and capable, when told)."""
    ids = [str(e.get("id")) for e in entries]
    capable = [str(e["id"]) for e in entries if set(e.get("capabilities") or ()) & set(capabilities)]
    told = any("capabilities" in e for e in entries)
    what = " or ".join(capabilities)
    if wanted != AUTO:
        if told and wanted in ids and wanted not in capable:
            raise KnowledgeError(
                f"model {wanted!r} at {url} has no {what} capability (models: {', '.join(ids)})"
            )
        return wanted
    if capable:
        return capable[0]
    if not told and len(ids) == 1:
        return ids[0]
    raise KnowledgeError(
        f"the model server at {url} serves no {what} model (models: {', '.join(ids) or 'none'}); "
        "name one with embedding_model, or start a server that has one"
    )


class Embedder:
    """OpenAI-compatible /v1/embeddings; vectors come back unit-length (cosine = dot product)."""

    def __init__(self, base_url: str, model: str, api_key: str) -> None:
        import openai

        self.base_url = base_url
        self.model = model
        self._client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=1, timeout=300)

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        import openai

        out: list[list[float]] = []
        for i in range(0, len(texts), BATCH):
            batch = [t if t.strip() else "(empty)" for t in texts[i : i + BATCH]]
            try:
                resp = await self._client.embeddings.create(
                    model=self.model, input=batch, encoding_format="float"
                )
            except openai.APIConnectionError as exc:
                raise KnowledgeError(f"cannot reach the embedding server at {self.base_url}") from exc
            except openai.APIStatusError as exc:
                raise KnowledgeError(
                    f"embedding model {self.model!r} at {self.base_url} failed: HTTP {exc.status_code} "
                    f"{_error_text(exc)}"
                ) from exc
            out += [d.embedding for d in sorted(resp.data, key=lambda d: d.index)]
        vectors = np.asarray(out, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1, norms)

    async def close(self) -> None:
        await self._client.close()


def _error_text(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        return str(err.get("message", err) if isinstance(err, dict) else err)[:200]
    return str(exc)[:200]


class Reranker:
    """POST {base}/rerank in the seed's shape: query, documents, top_n -> results[index, relevance_score]."""

    def __init__(self, base_url: str, model: str, api_key: str) -> None:
        self.base_url = base_url
        self.model = model
        self._client = httpx.AsyncClient(
            timeout=300, trust_env=False, headers={"Authorization": f"Bearer {api_key}"}
        )

    async def rerank(self, query: str, documents: Sequence[str]) -> list[float]:
        body = {"model": self.model, "query": query, "documents": list(documents), "top_n": len(documents)}
        try:
            resp = await self._client.post(f"{self.base_url}/rerank", json=body)
        except httpx.HTTPError as exc:
            raise KnowledgeError(f"cannot reach the rerank endpoint at {self.base_url}/rerank") from exc
        if resp.status_code >= 400:
            raise KnowledgeError(
                f"rerank model {self.model!r} at {self.base_url}/rerank failed: HTTP {resp.status_code}"
            )
        scores = [0.0] * len(documents)
        for result in resp.json()["results"]:
            scores[int(result["index"])] = float(result["relevance_score"])
        return scores

    async def close(self) -> None:
        await self._client.aclose()


@dataclass
class Models:
    embedder: Embedder
    reranker: Reranker | None


@asynccontextmanager
async def open_models(
    embedding: ModelTarget, *, rerank: bool, rerank_target: ModelTarget | None = None
) -> AsyncIterator[Models]:
    """Resolve the endpoint (starting the bundled server if `auto` finds none) and the model ids."""
    async with AsyncExitStack() as stack:
        from serving import open_endpoint  # lazy: importing this package starts nothing

        if embedding.base_url.strip() != AUTO:
            _normalize(embedding.base_url)  # our message for a URL that is not one
        endpoint = await stack.enter_async_context(
            open_endpoint(embedding.base_url, embedding.model, embedding.api_key, capability="embedding")
        )
        url = endpoint.base_url
        async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
            entries = await _model_entries(client, url)
        model = pick_model(entries, endpoint.model, ["embedding"], url)
        embedder = Embedder(url, model, embedding.api_key)
        stack.push_async_callback(embedder.close)
        reranker = None
        if rerank:
            target = rerank_target or ModelTarget(url, AUTO, embedding.api_key)
            rerank_url = url if target.base_url in (AUTO, url) else _normalize(target.base_url)
            rerank_model = pick_model(entries, target.model, ["rerank", "score"], rerank_url)
            if rerank_model == model and rerank_url == url:
                # a bi-encoder "reranks" by the cosine of the same embeddings: the order cannot
                # change, and re-embedding every candidate per query cost seconds (bench knowledge)
                log.info("rerank: %s is the embedding model itself; ranking by embedding only", model)
            else:
                reranker = Reranker(rerank_url, rerank_model, target.api_key)
                stack.push_async_callback(reranker.close)
        log.info(
            "embedding with %s at %s%s", model, url, f", reranking with {reranker.model}" if reranker else ""
        )
        yield Models(embedder, reranker)
