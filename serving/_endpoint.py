"""Resolve a model endpoint: base URL normalisation, `auto` discovery, model id resolution."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from serving._capabilities import CAPABILITIES, Capability
from serving._errors import EndpointError

if TYPE_CHECKING:
    from serving._auto import ServerHandle

log = logging.getLogger(__name__)

AUTO = "auto"
START_HINT = "`python -m serving up` starts the bundled server"
# httpx is imported where it is used: `python -m serving status` needs this module's
# names, not an HTTP client


@dataclass(frozen=True)
class Endpoint:
    """A usable OpenAI-compatible endpoint (base_url ends with /v1) and the resolved model id."""

    base_url: str
    model: str
    api_key: str
    started_server: bool = False


def normalize_base_url(base_url: str) -> str:
    """`http://h:8000`, `http://h:8000/`, `http://h:8000/v1/` -> `http://h:8000/v1`."""
    url = base_url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise EndpointError(
            f"model base URL {base_url!r} is not an http(s) URL (e.g. http://127.0.0.1:8080/v1, or auto)",
            url=base_url,
        )
    if not url.endswith("/v1"):
        url += "/v1"
    return url


def _unreachable(url: str, why: str) -> EndpointError:
    return EndpointError(f"cannot reach the model server at {url} ({why}); {START_HINT}", url=url)


def _connect_failure(exc: BaseException) -> str:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or "refused" in str(seen).lower():
            return "connection refused"
        seen = seen.__cause__ or seen.__context__
    return str(exc) or type(exc).__name__


async def list_model_entries(url: str, api_key: str) -> list[dict[str, Any]] | None:
    """The entries of GET {url}/models; None when the server does not implement it."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"}
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=3.0), trust_env=False) as client:
            resp = await client.get(f"{url}/models", headers=headers)
    except httpx.ConnectError as exc:
        raise _unreachable(url, _connect_failure(exc)) from exc
    except httpx.TimeoutException as exc:
        raise _unreachable(url, "no answer within 10 s") from exc
    except httpx.HTTPError as exc:
        raise _unreachable(url, f"{type(exc).__name__}: {exc}") from exc
    if resp.status_code in (401, 403):
        raise EndpointError(
            f"the model server at {url} rejected the API key (HTTP {resp.status_code}); set LLM_API_KEY",
            url=url,
        )
    if resp.status_code == 404:
        return None
    if resp.status_code >= 400:
        raise EndpointError(f"GET {url}/models failed with HTTP {resp.status_code}", url=url)
    try:
        data = resp.json()["data"]
        return [{**m, "id": str(m["id"])} for m in data]
    except (ValueError, KeyError, TypeError) as exc:
        raise EndpointError(f"GET {url}/models did not return an OpenAI model list", url=url) from exc


async def list_models(url: str, api_key: str) -> list[str] | None:
    """Model ids from GET {url}/models; None when the server does not implement it."""
    entries = await list_model_entries(url, api_key)
    return None if entries is None else [e["id"] for e in entries]


def entry_capabilities(entry: dict[str, Any]) -> list[str] | None:
    """What a /v1/models entry says it serves (the bundled server's `capabilities`), None if silent."""
    caps = entry.get("capabilities")
    return [str(c) for c in caps] if isinstance(caps, list) else None


def _serves(entry: dict[str, Any], capability: Capability) -> bool:
    caps = entry_capabilities(entry)
    return caps is None or capability in caps  # a server that does not say may serve anything


def _listing(entries: list[dict[str, Any]]) -> str:
    return ", ".join(
        e["id"] + (f" ({', '.join(c)})" if (c := entry_capabilities(e)) is not None else "") for e in entries
    )


async def served_model_id(url: str, model: str, api_key: str, capability: Capability = "chat") -> str:
    """Check the server answers and turn model "auto" into the one id serving `capability`."""
    entries = await list_model_entries(url, api_key)
    if model != AUTO:
        if entries is not None and model not in [e["id"] for e in entries]:
            # llama.cpp serves any name and proxies may hide the list: warn, do not refuse
            log.warning("model %r is not among those %s lists (%s)", model, url, _listing(entries))
        return model
    if entries is None:
        raise EndpointError(f"{url} does not list its models (GET /models: 404); name the model", url=url)
    if not entries:
        raise EndpointError(f"the model server at {url} lists no models", url=url)
    able = [e for e in entries if _serves(e, capability)]
    if not able:
        raise EndpointError(
            f"the model server at {url} serves no {capability} model (it lists {_listing(entries)})", url=url
        )
    if len(able) > 1:
        raise EndpointError(
            f"the model server at {url} serves several {capability} models ({_listing(able)}); "
            "name one (model: in the scenario, or LLM_MODEL)",
            url=url,
        )
    return str(able[0]["id"])


async def resolve_model_id(
    base_url: str, capability: Capability = "chat", *, api_key: str = "EMPTY", model: str = AUTO
) -> str:
    """The model id to send for `capability` ("chat", "embedding", "rerank", "score") at a base URL.

    `model` "auto" picks the one model whose /v1/models entry lists the capability (entries
    that list none, as a plain vLLM or OpenAI server's, count as serving anything); another
    value is returned as it is. Raises EndpointError with a one-line message.
    """
    if capability not in CAPABILITIES:
        raise ValueError(f"capability {capability!r}; valid: {', '.join(CAPABILITIES)}")
    return await served_model_id(normalize_base_url(base_url), model, api_key, capability)


@asynccontextmanager
async def open_endpoint(
    base_url: str, model: str, api_key: str = "EMPTY", *, capability: Capability = "chat"
) -> AsyncIterator[Endpoint]:
    """Open a model endpoint for the duration of the context.

    base_url "auto": $LLM_BASE_URL if set, else the bundled server already running for this
    user, else the embedded CPU server (chat and embedding models) started now and stopped on
    exit. model "auto": the one model the server lists for `capability`. Raises EndpointError
    with a one-line message.
    """
    async with AsyncExitStack() as stack:
        started = False
        server: ServerHandle | None = None
        if base_url.strip() == AUTO:
            env_url = os.environ.get("LLM_BASE_URL", "").strip()
            if env_url and env_url != AUTO:
                url = normalize_base_url(env_url)
            else:
                from serving._auto import auto_server  # lazy: importing serving starts nothing

                server = await stack.enter_async_context(auto_server())
                url, started = server.base_url, server.started
        else:
            url = normalize_base_url(base_url)
        resolved = await served_model_id(url, model, api_key, capability)
        endpoint = Endpoint(base_url=url, model=resolved, api_key=api_key, started_server=started)
        try:
            yield endpoint
        except EndpointError:
            raise
        except Exception as exc:
            if await server_down(url, api_key, exc, server) is not None:
                raise _down_during_run(url, server) from exc
            raise
        if server is not None and (message := server.crash_message()):
            raise EndpointError(message, url=url)


async def server_down(
    url: str, api_key: str, exc: BaseException, server: ServerHandle | None = None
) -> EndpointError | None:
    """Whether `exc`, raised while a run used the server at `url`, means that server is gone.

    The one place that decides it: the error naming why (the bundled server's crash, the
    failed probe, or the lost connection), or None when the server is fine.
    """
    if server is not None and (message := server.crash_message()):
        return EndpointError(message, url=url)
    import httpx
    import openai  # the agents' client raises this when the server goes away

    seen: BaseException | None = exc
    while seen is not None and not isinstance(seen, httpx.TransportError | openai.APIConnectionError):
        seen = seen.__cause__ or seen.__context__
    if seen is not None:
        return EndpointError(f"lost the connection to the model server at {url} during the run", url=url)
    # AutoGen may wrap the client's connection error in a RuntimeError: ask the server instead
    try:
        await list_models(url, api_key)
    except EndpointError as down:
        return down
    return None


def _down_during_run(url: str, server: ServerHandle | None) -> EndpointError:
    message = server.crash_message() if server is not None else None
    if message:
        return EndpointError(message, url=url)
    return EndpointError(f"lost the connection to the model server at {url} during the run", url=url)
