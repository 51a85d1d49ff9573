"""`auto` endpoints: find the bundled server running for this user, or start one for a context."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from serving._endpoint import EndpointError, ServerHandle


@asynccontextmanager
async def auto_server() -> AsyncIterator[ServerHandle]:
    raise EndpointError("the bundled server is not available yet; set LLM_BASE_URL", url="auto")
    yield  # pragma: no cover
