from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from serving._check import run_check
from serving._cli import main
from serving._front import Backend, BackendSpec, Router
from serving.testing import Reply, ScriptedModelServer
from tests.serving.fake_backend import DIMS, start_in_thread


def good(body: dict[str, Any]) -> Reply:
    if body.get("tools"):
        return Reply.tool_call("get_current_time", {"timezone": "Asia/Seoul"})
    if body.get("response_format"):
        return Reply.text(json.dumps({"capital": "Paris"}))
    return Reply.text("1, 2, 3, 4, 5")


def no_tools(body: dict[str, Any]) -> Reply:
    if body.get("tools"):
        return Reply.text("It is noon in Seoul.")
    return good(body)


def wrong_tool(body: dict[str, Any]) -> Reply:
    if body.get("tools"):
        return Reply.tool_call("get_weather", '{"city": "Seoul"')
    return good(body)


async def test_all_pass() -> None:
    async with ScriptedModelServer(good) as srv:
        report = await run_check(srv.base_url, srv.model)
    assert report.ok
    assert [(r.name, r.ok) for r in report.results] == [
        ("models listed", True),
        ("plain reply", True),
        ("streamed reply", True),
        ("tool call", True),
        ("streamed tool call", True),
        ("JSON mode", True),
        ("embeddings", False),
        ("rerank", False),
        ("score", False),
    ]
    assert report.results[3].detail == 'get_current_time({"timezone": "Asia/Seoul"})'
    assert [r.detail for r in report.results[6:]] == [
        "missing: no model here lists 'embedding'",
        "missing: no model here lists 'rerank'",
        "missing: no model here lists 'score'",
    ]


async def test_pooling_probes_through_the_front(front_url: Callable[[Router], str]) -> None:
    """The bundled front with a chat and an embedding backend: every probe runs and passes."""
    async with ScriptedModelServer(good, model="fake-chat") as chat:
        emb, _, emb_url = start_in_thread("embedding", "fake-minilm")
        try:
            url = front_url(
                Router(
                    [
                        Backend(
                            BackendSpec(
                                model="fake-chat", capabilities=["chat"], engine="external", url=chat.base_url
                            )
                        ),
                        Backend(
                            BackendSpec(
                                model="fake-minilm",
                                capabilities=["embedding", "rerank", "score"],
                                engine="llama.cpp",
                                url=emb_url,
                            )
                        ),
                    ]
                )
            )
            report = await run_check(url, "fake-chat")
        finally:
            emb.shutdown()
            emb.server_close()
    assert report.ok
    rows = {r.name: (r.ok, r.detail) for r in report.results[6:]}
    assert rows["rerank"] == (True, rows["rerank"][1])
    assert rows["rerank"][1].startswith("fake-minilm: best 'The capital of France is Paris.'")
    assert rows["score"][0] is True
    assert rows["embeddings"][1].startswith(f"fake-minilm: {DIMS} dims; paraphrase ")
    assert rows["embeddings"][0] is True


async def test_no_tool_call_fails() -> None:
    async with ScriptedModelServer(no_tools) as srv:
        report = await run_check(srv.base_url, srv.model)
    assert not report.ok
    assert report.results[3].detail == "no tool call; replied 'It is noon in Seoul.'"
    assert report.results[4].detail == "no tool call in the stream"


async def test_wrong_tool_and_bad_json_fail() -> None:
    async with ScriptedModelServer(wrong_tool) as srv:
        report = await run_check(srv.base_url, srv.model)
    assert not report.results[3].ok
    assert report.results[3].detail == """get_weather('{"city": "Seoul"'): arguments are not valid JSON"""


def test_cli_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    with ScriptedModelServer(good) as srv:
        assert main(["check", "--base-url", srv.base_url]) == 0
    assert "streamed tool call" in capsys.readouterr().out
    with ScriptedModelServer(no_tools) as srv:
        assert main(["check", "--base-url", srv.base_url]) == 1
    assert f"error: {srv.base_url} failed: tool call, streamed tool call" in capsys.readouterr().err


def test_cli_unreachable(capsys: pytest.CaptureFixture[str], closed_port: int) -> None:
    assert main(["check", "--base-url", f"http://127.0.0.1:{closed_port}"]) == 1
    assert capsys.readouterr().err.strip() == (
        f"error: cannot reach the model server at http://127.0.0.1:{closed_port}/v1 (connection refused); "
        "`python -m serving up` starts the bundled server"
    )


def test_status_and_down_without_server(
    capsys: pytest.CaptureFixture[str], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTTEAMS_RUNTIME_DIR", str(tmp_path))
    assert main(["status"]) == 1
    assert main(["down"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "no bundled server is running (`python -m serving up` starts one)",
        "no bundled server is running",
    ]
