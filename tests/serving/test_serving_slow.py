"""The real embedded server with the real packaged model (marked slow; run in CI).

One server started with `up --detach` is shared by the tests that only talk to it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from openai import AsyncOpenAI

from serving import EndpointError, open_endpoint, resolve_model_id
from serving._cli import main
from serving._embedded import free_port
from serving._embedding_model import MINILM
from serving._models import DEFAULT_MODEL, PACKAGED_MODELS, ensure_model, sha256_file
from serving._state import pid_alive, read_state

pytestmark = pytest.mark.slow
MODEL_ID = PACKAGED_MODELS[DEFAULT_MODEL].alias
EMBEDDING_ID = MINILM.alias
MODELS = f"{MODEL_ID}, {EMBEDDING_ID}"


@dataclass(frozen=True)
class Bundled:
    runtime_dir: Path
    url: str
    pid: int


def _serving(runtime_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AGENTTEAMS_RUNTIME_DIR": str(runtime_dir)}
    return subprocess.run(
        [sys.executable, "-m", "serving", *args], env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="session")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bundled]:
    runtime_dir = tmp_path_factory.mktemp("runtime")
    port = free_port()
    up = _serving(runtime_dir, "up", "--detach", "--port", str(port))
    assert up.returncode == 0, up.stderr
    state = read_state(runtime_dir / "server.json")
    assert state is not None
    yield Bundled(runtime_dir, f"http://127.0.0.1:{port}/v1", state.pid)
    _serving(runtime_dir, "down")
    assert not pid_alive(state.pid)


def _children_running_child() -> list[int]:
    """Pids of this process's children that run the bundled server's front (serving._bundle)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (proc / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and b"serving._bundle" in cmdline and pid_alive(int(proc.name)):
            found.append(int(proc.name))
    return found


def test_up_detach_and_status(bundled: Bundled) -> None:
    status = _serving(bundled.runtime_dir, "status")
    assert status.returncode == 0
    lines = status.stdout.splitlines()
    assert lines[0] == f"running: {bundled.url}"
    assert f"  model   {MODELS}" in lines
    backends = [line for line in lines if line.startswith("  backend ")]
    assert [line.split(":")[0] for line in backends] == [f"  backend {MODEL_ID}", f"  backend {EMBEDDING_ID}"]
    assert all(": ok, pid " in line and "(RSS " in line for line in backends)
    assert any(line.startswith(f"  pid     {bundled.pid} (RSS ") for line in lines)
    again = _serving(bundled.runtime_dir, "up", "--detach")
    assert again.returncode == 1
    assert again.stderr.strip() == (
        f"error: a bundled server is already running at {bundled.url} (pid {bundled.pid}, {MODELS}); "
        "`python -m serving down` stops it"
    )


def test_port_in_use_by_the_running_server(bundled: Bundled, tmp_path: Path) -> None:
    port = bundled.url.rsplit(":", 1)[1].removesuffix("/v1")
    result = _serving(tmp_path, "up", "--port", port)  # another runtime dir: no state file there
    assert result.returncode == 1
    assert result.stderr.strip().startswith(f"error: port {port} on 127.0.0.1 is already in use")


def test_serving_check_passes(bundled: Bundled, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--base-url", bundled.url]) == 0
    table = capsys.readouterr().out
    assert 'get_current_time({"timezone":' in table  # rich folds the cell at 80 columns
    assert "FAIL" not in table


async def test_auto_finds_the_running_server(bundled: Bundled, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTTEAMS_RUNTIME_DIR", str(bundled.runtime_dir))
    monkeypatch.delenv("LLM_BASE_URL", raising=False)
    async with open_endpoint("auto", "auto") as ep:
        assert (ep.base_url, ep.model, ep.started_server) == (bundled.url, MODEL_ID, False)
    assert pid_alive(bundled.pid)


async def test_auto_starts_and_stops_the_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTTEAMS_RUNTIME_DIR", str(tmp_path))  # no server recorded there
    monkeypatch.delenv("LLM_BASE_URL", raising=False)
    async with open_endpoint("auto", "auto") as ep:
        assert (ep.model, ep.started_server) == (MODEL_ID, True)
        [pid] = _children_running_child()
        async with AsyncOpenAI(base_url=ep.base_url, api_key=ep.api_key) as client:
            reply = await client.chat.completions.create(
                model=ep.model, messages=[{"role": "user", "content": "Say OK."}], max_tokens=5
            )
        assert reply.choices[0].message.content
    assert not pid_alive(pid)
    assert _children_running_child() == []


async def test_crash_mid_run_names_the_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTTEAMS_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv("LLM_BASE_URL", raising=False)
    with pytest.raises(EndpointError) as info:
        async with open_endpoint("auto", "auto") as ep:
            [pid] = _children_running_child()
            os.kill(pid, signal.SIGKILL)
            async with AsyncOpenAI(base_url=ep.base_url, api_key=ep.api_key, max_retries=0) as client:
                await client.chat.completions.create(
                    model=ep.model, messages=[{"role": "user", "content": "Say OK."}], max_tokens=5
                )
    message = str(info.value)
    assert message.startswith(
        f"the embedded model server (llama.cpp via xllamacpp) (pid {pid}, model {MODEL_ID}) at {ep.base_url} "
        "exited with code -9 during the run"
    )
    assert _children_running_child() == []


async def test_embeddings_through_the_sdk(bundled: Bundled) -> None:
    texts = ["A man is playing a guitar.", "Someone plays the guitar.", "The stock market fell today."]
    async with AsyncOpenAI(base_url=bundled.url, api_key="EMPTY") as client:
        default = await client.embeddings.create(model=EMBEDDING_ID, input=texts)  # base64 on the wire
        floats = await client.embeddings.create(model=EMBEDDING_ID, input=texts, encoding_format="float")
    assert default.model == EMBEDDING_ID
    vectors = [np.array(d.embedding) for d in default.data]
    assert [v.shape for v in vectors] == [(384,)] * 3
    for got, want in zip(default.data, floats.data, strict=True):
        assert got.embedding == pytest.approx(want.embedding, abs=1e-6)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2]) + 0.3


def _all_gone(pids: list[int], timeout: float) -> bool:
    """The backends get SIGTERM when the front exits; there is no event to wait on, so poll."""
    deadline = time.monotonic() + timeout
    while any(pid_alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _post(url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = httpx.post(url.removesuffix("/v1") + path, json=body, timeout=120)
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


def test_rerank_the_seed_example(bundled: Bundled) -> None:
    docs = [
        "France capital city is known for the Eiffel Tower.",
        "Paris is located in the north-central part of France.",
        "The capital of France is Paris.",
    ]
    body = {
        "model": EMBEDDING_ID,
        "query": "What is the capital of France?",
        "documents": docs,
        "top_n": 2,
        "truncate_prompt_tokens": 512,
    }
    for path in ("/rerank", "/v1/rerank", "/v2/rerank"):
        got = _post(bundled.url, path, body)
        assert got["model"] == EMBEDDING_ID
        assert got["results"][0]["document"]["text"] == "The capital of France is Paris."
        assert len(got["results"]) == 2
        assert 0 < got["results"][1]["relevance_score"] < got["results"][0]["relevance_score"] <= 1


def test_score_paraphrase_above_unrelated(bundled: Bundled) -> None:
    body = {
        "model": EMBEDDING_ID,
        "text_1": "How do I reset my password?",
        "text_2": ["What are the steps to change my password?", "The weather is sunny in Madrid."],
    }
    for path in ("/score", "/v1/score"):
        scores = [d["score"] for d in _post(bundled.url, path, body)["data"]]
        assert scores[0] > scores[1] + 0.3


def test_long_input_needs_truncation(bundled: Bundled) -> None:
    long_text = "word " * 700
    resp = httpx.post(f"{bundled.url}/embeddings", json={"input": long_text}, timeout=120)
    assert resp.status_code == 400
    assert resp.json()["error"]["message"] == (
        f"input: 702 tokens, more than {EMBEDDING_ID}'s limit of 512; "
        "shorten it or pass truncate_prompt_tokens"
    )
    ok = _post(bundled.url, "/v1/embeddings", {"input": long_text, "truncate_prompt_tokens": 100})
    assert ok["usage"]["prompt_tokens"] == 100


async def test_auto_serves_embeddings_and_restarts_a_killed_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTTEAMS_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv("LLM_BASE_URL", raising=False)
    async with open_endpoint("auto", "auto", capability="embedding") as ep:
        assert (ep.model, ep.started_server) == (EMBEDDING_ID, True)
        assert await resolve_model_id(ep.base_url, "chat") == MODEL_ID
        health_url = ep.base_url.removesuffix("/v1") + "/health"
        async with httpx.AsyncClient() as http:
            health = (await http.get(health_url)).json()["backends"]
            pids = [health[MODEL_ID]["pid"], health[EMBEDDING_ID]["pid"]]
            os.kill(pids[1], signal.SIGKILL)
            async with AsyncOpenAI(base_url=ep.base_url, api_key=ep.api_key, max_retries=0) as client:
                try:  # while it restarts: a 503 that says so; a restart faster than this call: an answer
                    await client.embeddings.create(model=EMBEDDING_ID, input="hello")
                except openai.APIStatusError as exc:
                    assert exc.status_code == 503
                    assert exc.message.startswith(
                        f"Error code: 503 - the onnxruntime backend of {EMBEDDING_ID} (pid {pids[1]}, "
                    )
                    assert exc.message.endswith(
                        "/v1) was killed by SIGKILL; it is being restarted (restart 1 of at most 3 "
                        "within 60 s): retry the request"
                    )
                reply = await client.chat.completions.create(
                    model=MODEL_ID, messages=[{"role": "user", "content": "Say OK."}], max_tokens=5
                )
                assert reply.choices[0].message.content
                deadline = time.monotonic() + 120  # the embedding model loads in ~1 s; a loaded machine
                while (now := (await http.get(health_url)).json()["backends"][EMBEDDING_ID])[
                    "status"
                ] != "ok":
                    assert now["status"] == "restarting" and time.monotonic() < deadline, now
                    await asyncio.sleep(0.1)
                assert now["restarts"] == 1 and now["pid"] != pids[1]
                pids.append(now["pid"])
                again = await client.embeddings.create(
                    model=EMBEDDING_ID, input="hello", encoding_format="float"
                )
                assert len(again.data[0].embedding) == 384
    assert await asyncio.to_thread(_all_gone, pids, 30.0)
    assert _children_running_child() == []


def test_real_assembly_and_corruption(tmp_path: Path) -> None:
    model = PACKAGED_MODELS[DEFAULT_MODEL]
    out = ensure_model(model, tmp_path)
    assert out.stat().st_size == model.size
    with out.open("r+b") as f:  # flip one byte in the middle: same size, new mtime
        f.seek(model.size // 2)
        byte = f.read(1)
        f.seek(model.size // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert sha256_file(out) != model.sha256
    assert sha256_file(ensure_model(model, tmp_path)) == model.sha256


def test_down_stops_it(bundled: Bundled) -> None:
    down = _serving(bundled.runtime_dir, "down")
    assert down.returncode == 0
    assert down.stdout.strip() == f"stopped the bundled server at {bundled.url} (pid {bundled.pid})"
    assert not pid_alive(bundled.pid)
    assert _serving(bundled.runtime_dir, "status").returncode == 1
