"""Which server software answers at an endpoint, from how it names itself in GET /models."""

from __future__ import annotations

import httpx

from serving._profiles import Engine

_OWNERS: dict[str, Engine] = {"llamacpp": "llamacpp", "vllm": "vllm"}


async def detect_engine(url: str, api_key: str) -> Engine | None:
    """ "llamacpp" or "vllm" when the server's model list says so, else None (any other server).

    Both put their name in each model's `owned_by`; the engine decides which sampling fields
    a request may carry beyond OpenAI's (llama.cpp `repeat_penalty`, vLLM `repetition_penalty`).
    """
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=3.0), trust_env=False) as client:
            resp = await client.get(f"{url}/models", headers={"Authorization": f"Bearer {api_key}"})
        owners = {str(m.get("owned_by", "")).lower() for m in resp.json().get("data", [])}
    except (httpx.HTTPError, ValueError, AttributeError, TypeError):
        return None
    found = {_OWNERS[o] for o in owners if o in _OWNERS}
    return found.pop() if len(found) == 1 else None
