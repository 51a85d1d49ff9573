"""`python -m mcp_servers.search` through a real MCP client, over stdio and streamable HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from serving.testing import ScriptedModelServer
from tests.mcp_servers._gitrepo import make_repo

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_stdio_lists_tools_and_search_returns_the_commit_with_its_source(
    tmp_path: Path, embed_server: ScriptedModelServer, cache_dir: Path
) -> None:
    repo = make_repo(tmp_path / "repo")
    args = ["-m", "mcp_servers.search", "--repo", str(repo.path), "--base-url", embed_server.base_url]
    params = StdioServerParameters(
        command=sys.executable, args=[*args, "--cache-dir", str(cache_dir)], env=_env()
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert sorted(tools) == ["get", "search"]
        assert set(tools["search"].inputSchema["properties"]) == {"query", "k"}
        result = await session.call_tool("search", {"query": "time zone conversion fixes", "k": 2})
        assert not result.isError
        hits = (result.structuredContent or {})["result"]
        assert len(hits) == 2
        sha = repo.merges["tz"]
        assert hits[0]["source_id"] == sha
        assert hits[0]["source"] == f"{sha[:7]} Merge pull request #2 from dev/tz: time zone conversion fixes"
        assert 0 < hits[0]["score"] <= 1
        whole = await session.call_tool("get", {"source_id": sha[:8]})
        assert "Fix daylight saving conversion for Europe/Paris" in whole.content[0].text  # type: ignore[union-attr]
        missing = await session.call_tool("get", {"source_id": "nope"})
        assert missing.isError and "no document 'nope'" in missing.content[0].text  # type: ignore[union-attr]
    assert (
        len(await asyncio.to_thread(lambda: list(cache_dir.glob("*.sqlite")))) == 1
    )  # reused on the next start


async def test_streamable_http_serves_file_search_with_line_ranges(
    tmp_path: Path, embed_server: ScriptedModelServer, cache_dir: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text(
        "# Intro\nhello\n\n# Keys\nThe gateway checks bearer keys.\n", encoding="utf-8"
    )
    port = _free_port()
    cmd = [sys.executable, "-m", "mcp_servers.search", "--path", str(docs), "--http", str(port)]
    cmd += ["--base-url", embed_server.base_url, "--cache-dir", str(cache_dir)]
    proc = await asyncio.to_thread(subprocess.Popen, cmd, env=_env(), stderr=subprocess.PIPE, text=True)
    try:
        await asyncio.to_thread(_wait_listening, port, proc)
        async with (
            streamable_http_client(f"http://127.0.0.1:{port}/mcp") as (read, write, _),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            result = await session.call_tool("search", {"query": "bearer keys", "k": 1})
            hit = json.loads(result.content[0].text)  # type: ignore[union-attr]
            assert hit["source"] == "guide.md:1-5"
            assert hit["text"].endswith("The gateway checks bearer keys.\n")
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 20)
        assert proc.stderr is not None
        proc.stderr.close()


def _wait_listening(port: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60  # generous: a loaded 2-core machine imports slowly
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("MCP server did not listen within 60 s")


def test_a_path_that_is_not_a_repository_is_one_line_and_exit_2(
    tmp_path: Path, embed_server: ScriptedModelServer
) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mcp_servers.search",
            "--repo",
            str(tmp_path),
            "--base-url",
            embed_server.base_url,
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=_env(),
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == f"error: {tmp_path} is not a git repository"
    assert "Traceback" not in proc.stderr
