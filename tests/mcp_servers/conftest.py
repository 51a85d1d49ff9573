from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from serving._scripted_embeddings import ScriptedEmbeddings
from serving.testing import Reply, ScriptedModelServer


@pytest.fixture
async def embed_server() -> AsyncIterator[ScriptedModelServer]:
    """The scripted server with the deterministic embeddings/rerank double mounted."""
    async with ScriptedModelServer([Reply.text("unused")], embeddings=ScriptedEmbeddings()) as server:
        yield server


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"
