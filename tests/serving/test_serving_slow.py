"""The real embedded server with the real packaged model (marked slow; run in CI).

One server started with `up --detach` is shared by the tests that only talk to it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from openai import AsyncOpenAI

from serving import EndpointError, open_endpoint
from serving._cli import main
from serving._embedded import free_port
from serving._models import DEFAULT_MODEL, PACKAGED_MODELS, ensure_model, sha256_file
from serving._state import pid_alive, read_state

pytestmark = pytest.mark.slow
MODEL_ID = PACKAGED_MODELS[DEFAULT_MODEL].alias


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
    """Pids of this process's children that run serving._child."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (proc / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and b"serving._child" in cmdline and pid_alive(int(proc.name)):
            found.append(int(proc.name))
    return found


def test_up_detach_and_status(bundled: Bundled) -> None:
    status = _serving(bundled.runtime_dir, "status")
    assert status.returncode == 0
    lines = status.stdout.splitlines()
    assert lines[0] == f"running: {bundled.url}"
    assert f"  model   {MODEL_ID}" in lines
    assert any(line.startswith(f"  pid     {bundled.pid} (RSS ") for line in lines)
    again = _serving(bundled.runtime_dir, "up", "--detach")
    assert again.returncode == 1
    assert again.stderr.strip() == (
        f"error: a bundled server is already running at {bundled.url} (pid {bundled.pid}, {MODEL_ID}); "
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
