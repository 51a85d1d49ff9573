"""The server-backed store against a real PostgreSQL + pgvector started for the test."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_servers.search import KnowledgeError, KnowledgeSpec, ModelTarget, open_knowledge
from serving._scripted_embeddings import ScriptedEmbeddings
from serving.testing import Reply, ScriptedModelServer
from tests._postgres import pgvector_dsn  # noqa: F401  (fixture)
from tests.mcp_servers._gitrepo import make_repo


def spec(repo: Path, dsn: str, table: str) -> KnowledgeSpec:
    return KnowledgeSpec.model_validate(
        {
            "source": {"type": "git", "repo": str(repo), "unit": "merge"},
            "store": {"type": "postgres", "dsn": dsn, "table": table},
        }
    )


async def test_index_search_refresh_and_get_in_postgres(
    tmp_path: Path,
    embed_server: ScriptedModelServer,
    pgvector_dsn: str,  # noqa: F811
) -> None:
    repo = make_repo(tmp_path / "repo")
    target = ModelTarget(embed_server.base_url)
    async with open_knowledge("prs", spec(repo.path, pgvector_dsn, "t_search"), target) as kb:
        assert kb.store.count() == 4
        hits = await kb.search("cache embeddings in SQLite", 2)
        assert hits[0].unit.id == repo.merges["cache"]
        assert hits[0].unit.meta["files"] == ["search/evict.py", "search/cache.py"]
        assert 0 < hits[0].score <= 1 and hits[0].score > hits[1].score
        assert "Evict the oldest cached vectors" in kb.get(repo.merges["cache"][:9])
    sha = repo.merge_feature(
        "rl", "Merge pull request #5: rate limits per API key", [("Limit", "rl.py", "1")]
    )
    before = len(embed_server.embeddings.embedded_texts())
    async with open_knowledge("prs", spec(repo.path, pgvector_dsn, "t_search"), target, index=True) as kb:
        assert len(embed_server.embeddings.embedded_texts()) == before + 1
        assert (await kb.search("rate limits per API key", 1))[0].unit.id == sha


async def test_postgres_index_of_another_model_is_refused(
    tmp_path: Path,
    embed_server: ScriptedModelServer,
    pgvector_dsn: str,  # noqa: F811
) -> None:
    repo = make_repo(tmp_path / "repo")
    knowledge = spec(repo.path, pgvector_dsn, "t_models")
    async with open_knowledge("prs", knowledge, ModelTarget(embed_server.base_url)):
        pass
    async with ScriptedModelServer([Reply.text("-")], embeddings=ScriptedEmbeddings(model="other")) as other:
        with pytest.raises(
            KnowledgeError, match=r"built with embedding model 'scripted-embed' .* not 'other'"
        ):
            async with open_knowledge("prs", knowledge, ModelTarget(other.base_url)):
                pass


async def test_unreachable_postgres_is_one_line(tmp_path: Path, embed_server: ScriptedModelServer) -> None:
    repo = make_repo(tmp_path / "repo")
    knowledge = spec(repo.path, "postgresql://postgres:secret@127.0.0.1:9/x", "t")
    with pytest.raises(KnowledgeError) as err:
        async with open_knowledge("prs", knowledge, ModelTarget(embed_server.base_url)):
            pass
    assert str(err.value).startswith(
        "cannot connect to PostgreSQL at postgresql://postgres:***@127.0.0.1:9/x:"
    )
