"""What a served model can do, as the front and /v1/models name it (no pydantic: cheap to import)."""

from __future__ import annotations

from typing import Literal

Capability = Literal["chat", "embedding", "rerank", "score"]
CAPABILITIES: tuple[Capability, ...] = ("chat", "embedding", "rerank", "score")
