"""Which server software answers for a model, from how GET /models describes it."""

from __future__ import annotations

from typing import Any

from serving._profiles import Engine

# llama.cpp and vLLM put their name in `owned_by`; the bundled front says `engine` per model
_NAMES: dict[str, Engine] = {"llamacpp": "llamacpp", "llama.cpp": "llamacpp", "vllm": "vllm"}


async def detect_engine(url: str, api_key: str, model: str | None = None) -> Engine | None:
    """ "llamacpp" or "vllm" for `model` (or every model listed) when the list says so, else None.

    The engine decides which fields a request may carry beyond OpenAI's: llama.cpp's
    `repeat_penalty` and `grammar`, vLLM's `repetition_penalty`.
    """
    import httpx

    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=3.0), trust_env=False) as client:
            resp = await client.get(f"{url}/models", headers={"Authorization": f"Bearer {api_key}"})
        entries: list[dict[str, Any]] = [m for m in resp.json().get("data", []) if isinstance(m, dict)]
    except (httpx.HTTPError, ValueError, AttributeError, TypeError):
        return None
    if model is not None and any(m.get("id") == model for m in entries):
        entries = [m for m in entries if m.get("id") == model]
    found = {_engine(m) for m in entries} - {None}
    return found.pop() if len(found) == 1 else None


def _engine(entry: dict[str, Any]) -> Engine | None:
    for key in ("engine", "owned_by"):
        name = _NAMES.get(str(entry.get(key, "")).lower())
        if name is not None:
            return name
    return None
