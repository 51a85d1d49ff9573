"""The `knowledge:` section: YAML errors, a knowledge base as an agent tool, `scenarios index`,
and the pr_review scenario on the scripted model citing the commit its search returned."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from scenarios import ScenarioError, load_scenario
from scenarios._loader import read_spec
from serving._scripted_embeddings import ScriptedEmbeddings
from serving.testing import Reply, ScriptedModelServer, message_text
from teams import RunResult
from tests.mcp_servers._gitrepo import make_repo

ROOT = Path(__file__).resolve().parents[2]

KNOWLEDGE = """\
name: kn
models:
  default:
    base_url: http://127.0.0.1:9/v1
    model: m
knowledge:
  prs:
    source: {type: git, repo: REPO, unit: merge}
agents:
  - name: a
    tools: [prs]
"""


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "type: git",
            "type: svn",
            "8:20: unknown knowledge.prs.source type 'svn' (expected one of git, files)",
        ),
        (
            "unit: merge",
            "unit: merges",
            "8:43: bad value 'merges' for 'unit' (expected one of merge, commit; did you mean 'merge'?)",
        ),
        (
            "  prs:\n",
            "  prs:\n    embedding_model: embed\n",
            "8:22: unknown model 'embed' (expected one of default)",
        ),
        (
            "tools: [prs]",
            "tools: [pr]",
            "11:13: unknown tool or MCP server 'pr' (expected one of prs, calculator, days_between, python; "
            "did you mean 'prs'?)",
        ),
        (
            "  prs:\n",
            "  prs:\n    rerank: maybe\n",
            "8:13: wrong type for 'rerank': got 'maybe' (string); expected true or false",
        ),
    ],
)
def test_knowledge_mistakes_are_one_line_with_file_line_col(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    path = tmp_path / "kn.yaml"
    assert old in KNOWLEDGE
    path.write_text(KNOWLEDGE.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        read_spec(path)
    assert str(info.value) == f"{path}:{expected}"


def _pr_review_script(body: dict[str, Any]) -> Reply:
    """Search with the task, then answer citing the first hit the tool returned."""
    tool_results = [message_text(m) for m in body["messages"] if m.get("role") == "tool"]
    if not tool_results:
        task = message_text(body["messages"][-1])
        return Reply.tool_call("search_prs", {"query": task, "k": 3})
    first = re.search(r"^\[1\] (\w{7}) (.+) \(score", tool_results[-1], re.M)
    assert first is not None, tool_results[-1]
    return Reply.text(f"The gateway's authentication came in ({first[1]} {first[2]}). TERMINATE")


@pytest.fixture
def repo_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    repo = make_repo(tmp_path / "repo")
    monkeypatch.setenv("REPO", str(repo.path))
    monkeypatch.setenv("UNIT", "merge")
    monkeypatch.setenv("AGENTTEAMS_CACHE_DIR", str(tmp_path / "cache"))
    return repo


async def test_pr_review_cites_the_sha_the_search_returned(
    repo_env: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mcp_servers.search")
    embeddings = ScriptedEmbeddings()
    async with ScriptedModelServer(_pr_review_script, embeddings=embeddings) as server:
        async with load_scenario("pr_review", base_url=server.base_url, model=server.model) as scenario:
            result = await scenario.run()
        tools = server.requests[0]["tools"]
    assert isinstance(result, RunResult)
    sha = repo_env.merges["auth"]
    title = "Merge pull request #1 from dev/auth: bearer token authentication for the gateway"
    assert result.messages[-1].text == f"The gateway's authentication came in ({sha[:7]} {title}). TERMINATE"
    assert [t["function"]["name"] for t in tools] == ["search_prs"]
    assert set(tools[0]["function"]["parameters"]["properties"]) == {"query", "k"}
    assert any(
        "indexing knowledge 'prs'" in r.getMessage() and "on first use" in r.getMessage()
        for r in caplog.records
    )
    assert len(embeddings.embedded_texts()) == 4 + 1  # four merges indexed once, one query


def _index_cli(server: ScriptedModelServer, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scenarios", "index", "pr_review", "--base-url", server.base_url, *extra],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "120"},
    )


def test_index_command_builds_then_refreshes_incrementally(repo_env: Any) -> None:
    with ScriptedModelServer([Reply.text("-")], embeddings=ScriptedEmbeddings()) as server:
        first = _index_cli(server)
        assert first.returncode == 0, first.stderr
        assert "prs: embedding" in first.stderr and "4/4 units" in first.stderr
        assert "prs: embedded 4 units: 4 new, 0 changed, 0 removed, 0 unchanged documents" in first.stderr
        repo_env.merge_feature("x", "Merge pull request #9: streaming usage", [("Stream usage", "u.py", "1")])
        second = _index_cli(server)
        assert "prs: embedded 1 units: 1 new, 0 changed, 0 removed, 4 unchanged documents" in second.stderr
        third = _index_cli(server)
        assert "prs: up to date: 5 documents, nothing to embed" in third.stderr
    assert len(server.embeddings.embedded_texts()) == 5


def test_index_command_names_a_path_that_is_not_a_repository(tmp_path: Path, repo_env: Any) -> None:
    os.environ["REPO"] = str(tmp_path)  # monkeypatched env, restored after the test
    with ScriptedModelServer([Reply.text("-")], embeddings=ScriptedEmbeddings()) as server:
        proc = _index_cli(server)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    yaml_path = ROOT / "scenarios" / "pr_review.yaml"
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: {yaml_path}:12:3: knowledge 'prs': {tmp_path} is not a git repository"
    )


def test_embedding_model_names_a_models_entry_and_defaults_to_the_chat_server(tmp_path: Path) -> None:
    from scenarios._knowledge import embedding_target

    path = tmp_path / "kn.yaml"
    extra_model = (
        "    model: m\n  embed:\n    base_url: http://127.0.0.1:7/v1\n    model: bge-m3\n    api_key: k\n"
    )
    text = KNOWLEDGE.replace("    model: m\n", extra_model).replace(
        "  prs:\n", "  prs:\n    embedding_model: embed\n"
    )
    path.write_text(text, encoding="utf-8")
    loaded = read_spec(path)
    prs = loaded.spec.knowledge["prs"]
    target = embedding_target(loaded, prs, {})
    assert (target.base_url, target.model, target.api_key) == ("http://127.0.0.1:7/v1", "bge-m3", "k")
    default = prs.model_copy(update={"embedding_model": None})
    target = embedding_target(loaded, default, {})
    assert (target.base_url, target.model) == ("http://127.0.0.1:9/v1", "auto")  # the chat model's server
