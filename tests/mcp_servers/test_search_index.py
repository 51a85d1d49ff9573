"""Indexing and search: git merges and commits, chunked files, incremental refresh, bad input."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mcp_servers.search import (
    KnowledgeError,
    KnowledgeSpec,
    ModelTarget,
    chunk_text,
    open_knowledge,
    pick_model,
)
from serving._scripted_embeddings import ScriptedEmbeddings
from serving.testing import Reply, ScriptedModelServer
from tests.mcp_servers._gitrepo import git, make_repo


def git_spec(repo: Path, unit: str = "merge", **extra: Any) -> KnowledgeSpec:
    return KnowledgeSpec.model_validate({"source": {"type": "git", "repo": str(repo), "unit": unit}, **extra})


def files_spec(root: Path, *paths: str, **source: Any) -> KnowledgeSpec:
    return KnowledgeSpec.model_validate(
        {"source": {"type": "files", "root": str(root), "paths": list(paths), **source}}
    )


async def test_search_finds_the_merge_that_answers_with_its_commits_and_files(
    tmp_path: Path, embed_server: ScriptedModelServer, cache_dir: Path
) -> None:
    repo = make_repo(tmp_path / "repo")
    target = ModelTarget(embed_server.base_url)
    async with open_knowledge("prs", git_spec(repo.path), target, cache_dir=cache_dir) as kb:
        hits = await kb.search("Which change added bearer token authentication to the gateway?", k=3)
        assert hits[0].unit.id == repo.merges["auth"]
        assert hits[0].unit.location == f"{repo.merges['auth'][:7]} Merge pull request #1 from dev/auth: " + (
            "bearer token authentication for the gateway"
        )
        assert hits[0].unit.meta["files"] == ["gateway/keys.py", "gateway/auth.py"]
        assert [c["title"] for c in hits[0].unit.meta["commits"]] == [
            "Reject requests with an expired API key",
            "Add bearer token check to the gateway requests",
        ]
        assert kb.store.count() == 4  # four merges, nothing else
        whole = kb.get(repo.merges["cache"][:8])
        assert "Store embedding vectors in a SQLite table" in whole and "files: search/cache.py" in whole


async def test_commit_units_for_a_repository_without_merges(
    tmp_path: Path, embed_server: ScriptedModelServer, cache_dir: Path
) -> None:
    repo = make_repo(tmp_path / "repo")
    target = ModelTarget(embed_server.base_url)
    async with open_knowledge("log", git_spec(repo.path, "commit"), target, cache_dir=cache_dir) as kb:
        hits = await kb.search("daylight saving Europe/Paris", k=1)
        assert hits[0].unit.title == "Fix daylight saving conversion for Europe/Paris"
        assert hits[0].unit.meta["files"] == ["tools/timezones.py"]
        assert kb.store.count() == 7  # initial + 6 feature commits; merges are not units here


async def test_second_run_embeds_only_the_new_merge_and_says_so(
    tmp_path: Path, embed_server: ScriptedModelServer, cache_dir: Path
) -> None:
    repo = make_repo(tmp_path / "repo")
    embeddings: ScriptedEmbeddings = embed_server.embeddings
    target = ModelTarget(embed_server.base_url)
    async with open_knowledge("prs", git_spec(repo.path), target, cache_dir=cache_dir) as kb:
        assert len(embeddings.embedded_texts()) == 4
        again = await kb.refresh()
        assert again.summary() == "up to date: 4 documents, nothing to embed"
    sha = repo.merge_feature(
        "limits", "Merge pull request #5: rate limits per API key", [("Limit requests", "g/rl.py", "1")]
    )
    before = len(embeddings.embedded_texts())
    async with open_knowledge("prs", git_spec(repo.path), target, cache_dir=cache_dir, index=True) as kb:
        sent = embeddings.embedded_texts()[before:]
        assert len(sent) == 1 and sent[0].startswith(f"Merge {sha[:10]}: Merge pull request #5")
        assert (await kb.search("rate limits per API key", 1))[0].unit.id == sha


async def test_edited_file_is_re_embedded_and_a_deleted_one_dropped(
    tmp_path: Path, embed_server: ScriptedModelServer, cache_dir: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Install\npip install it\n", encoding="utf-8")
    (docs / "b.md").write_text("# Gateway\nbearer keys\n", encoding="utf-8")
    (docs / "c.md").write_text("# Old\nremoved later\n", encoding="utf-8")
    spec = files_spec(docs, "**/*.md")
    target = ModelTarget(embed_server.base_url)
    async with open_knowledge("docs", spec, target, cache_dir=cache_dir) as kb:
        (docs / "b.md").write_text("# Gateway\nbearer keys and rate limits\n", encoding="utf-8")
        (docs / "c.md").unlink()
        before = len(embed_server.embeddings.embedded_texts())
        report = await kb.refresh()
        assert report.summary() == "embedded 1 units: 0 new, 1 changed, 1 removed, 1 unchanged documents"
        assert embed_server.embeddings.embedded_texts()[before:] == [
            "# Gateway\nbearer keys and rate limits\n"
        ]
        assert kb.get("b.md") == "# Gateway\nbearer keys and rate limits\n"
        with pytest.raises(KnowledgeError, match="no document 'c.md'"):
            kb.get("c.md")


def test_chunks_follow_lines_and_headings_and_rebuild_the_file() -> None:
    text = "".join(
        f"# Part {p}\n" + "".join(f"line {p}.{i} some words\n" for i in range(30)) for p in range(3)
    )
    units = chunk_text("guide.md", text, chunk_chars=400)
    assert "".join(u.text for u in units) == text
    assert units[0].location == "guide.md:1-" + str(units[0].meta["lines"][1])
    assert all(
        u.meta["lines"][0] == prev.meta["lines"][1] + 1 for prev, u in zip(units, units[1:], strict=False)
    )
    second_part = next(u for u in units if u.text.startswith("# Part 1"))
    assert second_part.title == "guide.md § Part 1" and second_part.meta["lines"][0] == 32


async def test_rerank_reorders_as_the_scores_say(tmp_path: Path, cache_dir: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    scripted = ScriptedEmbeddings(relevance=lambda query, doc: 1.0 if "Europe/Paris" in doc else 0.1)
    async with ScriptedModelServer([Reply.text("-")], embeddings=scripted) as server:
        spec = git_spec(repo.path, rerank=True)
        async with open_knowledge("prs", spec, ModelTarget(server.base_url), cache_dir=cache_dir) as kb:
            plain = await kb.search("bearer token authentication gateway", k=2, rerank=False)
            reranked = await kb.search("bearer token authentication gateway", k=2)
    assert plain[0].unit.id == repo.merges["auth"]
    assert reranked[0].unit.id == repo.merges["tz"] and reranked[0].score == 1.0
    path, body = scripted.requests[-1]
    assert path == "rerank" and body["model"] == "scripted-rerank" and len(body["documents"]) == 4


async def test_rerank_by_the_embedding_model_itself_is_skipped(
    tmp_path: Path, cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    repo = make_repo(tmp_path / "repo")
    caplog.set_level(logging.INFO, logger="mcp_servers.search")
    scripted = ScriptedEmbeddings(model="bi-encoder", rerank_model="bi-encoder")
    async with ScriptedModelServer([Reply.text("-")], embeddings=scripted) as server:
        spec = git_spec(repo.path, rerank=True)
        async with open_knowledge("prs", spec, ModelTarget(server.base_url), cache_dir=cache_dir) as kb:
            assert kb.models.reranker is None
            assert (await kb.search("time zone conversion fixes", 1))[0].unit.id == repo.merges["tz"]
    assert [p for p, _ in scripted.requests] == ["embeddings", "embeddings"]  # no /rerank call
    assert "rerank: bi-encoder is the embedding model itself; ranking by embedding only" in caplog.messages


async def test_an_interrupted_run_keeps_what_it_wrote_and_resumes(
    tmp_path: Path, embed_server: ScriptedModelServer, cache_dir: Path
) -> None:
    repo = make_repo(tmp_path / "repo")
    target = ModelTarget(embed_server.base_url)
    async with open_knowledge("prs", git_spec(repo.path), target, cache_dir=cache_dir, index=False) as kb:
        kb.batch_units = 1
        real_embed = kb.models.embedder.embed
        calls = 0

        async def dies_on_third_batch(texts: Any) -> np.ndarray:
            nonlocal calls
            calls += 1
            if calls == 3:
                raise KeyboardInterrupt
            return await real_embed(texts)

        kb.models.embedder.embed = dies_on_third_batch  # type: ignore[method-assign]
        with pytest.raises(KeyboardInterrupt):
            await kb.refresh()
        assert kb.store.count() == 2 and len(kb.store.digests()) == 2
        kb.models.embedder.embed = real_embed  # type: ignore[method-assign]
        report = await kb.refresh()
        assert (report.new, report.unchanged) == (2, 2)
        assert (await kb.search("time zone conversion fixes", 1))[0].unit.id == repo.merges["tz"]


async def test_an_index_of_another_model_is_refused_with_re_index(
    tmp_path: Path, embed_server: ScriptedModelServer, cache_dir: Path
) -> None:
    repo = make_repo(tmp_path / "repo")
    path = tmp_path / "prs.sqlite"
    spec = git_spec(repo.path, store={"type": "local", "path": str(path)})
    async with open_knowledge("prs", spec, ModelTarget(embed_server.base_url), cache_dir=cache_dir):
        pass
    async with ScriptedModelServer(
        [Reply.text("-")], embeddings=ScriptedEmbeddings(model="other-embed", dimension=64)
    ) as other:
        with pytest.raises(KnowledgeError) as err:
            async with open_knowledge("prs", spec, ModelTarget(other.base_url), cache_dir=cache_dir):
                pass
    assert str(err.value) == (
        f"the index at {path} was built with embedding model 'scripted-embed' (256 dimensions), "
        "not 'other-embed'; re-index: --rebuild"
    )


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "repository path {p} is not a directory"),
        ("plain_dir", "{p} is not a git repository"),
        ("empty_repo", "git repository {p} has no commits yet"),
        ("no_merges", "git repository {p} has no merge commits; use `unit: commit` (--unit commit) for it"),
    ],
)
async def test_bad_repositories_are_one_line_naming_the_path(
    tmp_path: Path, embed_server: ScriptedModelServer, cache_dir: Path, setup: str, message: str
) -> None:
    p = tmp_path / "r"
    if setup != "missing":
        p.mkdir()
    if setup in ("empty_repo", "no_merges"):
        git(p, "init", "-q")
    if setup == "no_merges":
        git(p, "commit", "-q", "--allow-empty", "-m", "only commit")
    with pytest.raises(KnowledgeError) as err:
        async with open_knowledge(
            "prs", git_spec(p), ModelTarget(embed_server.base_url), cache_dir=cache_dir
        ):
            pass
    assert str(err.value) == message.format(p=p)


async def test_binary_non_utf8_and_huge_files_are_skipped_with_one_warning_each(
    tmp_path: Path, embed_server: ScriptedModelServer, cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "d"
    root.mkdir()
    (root / "ok.txt").write_text("hello there\n", encoding="utf-8")
    (root / "empty.txt").write_text("", encoding="utf-8")  # a document without units
    (root / "image.bin").write_bytes(b"\x89PNG\0\0\0binary")
    (root / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    with (root / "big.log").open("wb") as f:
        f.truncate(50 * 1024 * 1024)  # sparse: 50 MB without writing them
    caplog.set_level(logging.WARNING)
    async with open_knowledge(
        "docs", files_spec(root, "*"), ModelTarget(embed_server.base_url), cache_dir=cache_dir
    ) as kb:
        assert [u.id for u in kb.store.units("ok.txt")] == ["ok.txt:1-1"]
        assert kb.store.count() == 1
        assert sorted(kb.store.digests()) == ["empty.txt", "ok.txt"]
        assert (await kb.search("hello", 1))[0].unit.id == "ok.txt:1-1"
    assert sorted(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING) == [
        "skipping big.log: 52.4 MB is over the 5.0 MB limit (max_file_bytes)",
        "skipping image.bin: a binary file",
        "skipping latin1.txt: not UTF-8 (byte 0xe9 on line 1)",
    ]
    assert all(len(t) < 5000 for t in embed_server.embeddings.embedded_texts())


async def test_a_glob_that_matches_nothing_names_the_pattern(
    tmp_path: Path, embed_server: ScriptedModelServer, cache_dir: Path
) -> None:
    root = tmp_path  # pytest gives it resolved
    with pytest.raises(KnowledgeError) as err:
        async with open_knowledge(
            "docs", files_spec(root, "docs/**/*.md"), ModelTarget(embed_server.base_url)
        ):
            pass
    assert str(err.value) == f"no file matches 'docs/**/*.md' under {root}"


async def test_a_server_without_an_embedding_model_is_one_line(tmp_path: Path, cache_dir: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    async with ScriptedModelServer([Reply.text("-")]) as chat_only:  # lists one model, no capabilities
        with pytest.raises(KnowledgeError) as err:
            async with open_knowledge("prs", git_spec(repo.path), ModelTarget(chat_only.base_url)):
                pass
    assert str(err.value).startswith(
        f"embedding model 'scripted-model' at {chat_only.base_url} failed: HTTP 404"
    )


def test_a_server_whose_models_say_chat_only_has_no_embedding_model() -> None:
    entries = [{"id": "qwen", "capabilities": ["chat"]}, {"id": "bge-reranker", "capabilities": ["rerank"]}]
    with pytest.raises(KnowledgeError) as err:
        pick_model(entries, "auto", ["embedding"], "http://127.0.0.1:9/v1")
    assert str(err.value) == (
        "the model server at http://127.0.0.1:9/v1 serves no embedding model (models: qwen, bge-reranker); "
        "name one with embedding_model, or start a server that has one"
    )
    assert pick_model(entries, "auto", ["rerank", "score"], "u") == "bge-reranker"
    with pytest.raises(KnowledgeError, match="model 'qwen' at u has no embedding capability"):
        pick_model(entries, "qwen", ["embedding"], "u")
