"""pr_review end to end on the bundled server's real embedding and chat models (slow).

Skips, saying why, while the bundled server lists no model with the "embedding" capability
(the embedded server gains /v1/embeddings in the serving work).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mcp_servers.search import KnowledgeSpec, ModelTarget, open_knowledge
from scenarios import RunResult, load_scenario
from teams import ToolCall, ToolResult
from tests.mcp_servers._gitrepo import make_repo

pytestmark = pytest.mark.slow


@pytest.fixture
async def bundled_url(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    pytest.importorskip("xllamacpp", reason="the embedded server needs `pip install -e .[local]`")
    monkeypatch.delenv("LLM_BASE_URL", raising=False)
    monkeypatch.delenv("LLM_MODEL", raising=False)
    from serving._auto import auto_server

    async with auto_server() as server:
        async with httpx.AsyncClient(trust_env=False) as client:
            entries = (await client.get(f"{server.base_url}/models")).json()["data"]
        if not any("embedding" in (e.get("capabilities") or ()) for e in entries):
            pytest.skip(
                "the bundled server lists no embedding model "
                f"({', '.join(str(e['id']) for e in entries)}): needs serving's /v1/embeddings"
            )
        yield server.base_url


async def test_real_embeddings_find_the_merge_that_answers(tmp_path: Path, bundled_url: str) -> None:
    repo = make_repo(tmp_path / "repo")
    spec = KnowledgeSpec.model_validate({"source": {"type": "git", "repo": str(repo.path)}})
    async with open_knowledge("prs", spec, ModelTarget(bundled_url), cache_dir=tmp_path / "cache") as kb:
        hits = await kb.search("Which change made the gateway check API credentials?", 2)
        assert hits[0].unit.id == repo.merges["auth"], [h.unit.location for h in hits]
        hits = await kb.search("storing vectors in a database table", 2)
        assert hits[0].unit.id == repo.merges["cache"], [h.unit.location for h in hits]


async def test_pr_review_on_the_local_model_cites_a_commit_it_found(
    tmp_path: Path, bundled_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(tmp_path / "repo")
    monkeypatch.setenv("REPO", str(repo.path))
    monkeypatch.setenv("UNIT", "merge")
    monkeypatch.setenv("AGENTTEAMS_CACHE_DIR", str(tmp_path / "cache"))
    async with load_scenario("pr_review", base_url=bundled_url) as scenario:
        events: list[Any] = [item async for item in scenario.run_stream()]
    calls = [e for e in events if isinstance(e, ToolCall)]
    outputs = [e.content for e in events if isinstance(e, ToolResult)]
    result = events[-1]
    assert isinstance(result, RunResult)
    assert calls and calls[0].name == "search_prs"
    found = re.findall(r"^\[\d+\] (\w{7}) ", outputs[0], re.M)
    assert repo.merges["auth"][:7] in found
    assert any(sha in result.final_text for sha in found), result.final_text
