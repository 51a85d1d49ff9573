from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from serving._state import ServerState, clear_state, pid_alive, read_state, state_file, write_state


def _state(pid: int) -> ServerState:
    return ServerState("http://127.0.0.1:8080/v1", pid, "m", "embedded", time.time(), None)


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "server.json"
    state = _state(os.getpid())
    write_state(state, path)
    assert read_state(path) == state


def test_stale_pid_is_removed(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    path = tmp_path / "server.json"
    write_state(_state(proc.pid), path)
    assert not pid_alive(proc.pid)
    assert read_state(path) is None
    assert not path.exists()


def test_garbage_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "server.json"
    path.write_text("{not json")
    assert read_state(path) is None
    assert not path.exists()


@pytest.mark.parametrize(
    "change",
    [
        {"pid": "123"},  # a string pid
        {"pid": True},  # a bool is an int to Python, not a pid
        {"started_at": "yesterday"},
        {"extra": 1},  # written by something else
        {"url": None},
    ],
)
def test_a_state_file_of_the_wrong_shape_is_removed(tmp_path: Path, change: dict[str, object]) -> None:
    path = tmp_path / "server.json"
    write_state(_state(os.getpid()), path)
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    assert read_state(path) is None
    assert not path.exists()


def test_a_state_file_without_a_log_is_read(tmp_path: Path) -> None:
    path = tmp_path / "server.json"
    write_state(_state(os.getpid()), path)
    raw = json.loads(path.read_text())
    del raw["log"]
    path.write_text(json.dumps({**raw, "started_at": 5}))
    assert read_state(path) == ServerState(raw["url"], os.getpid(), raw["model"], raw["engine"], 5.0)


def test_clear_only_own_pid(tmp_path: Path) -> None:
    path = tmp_path / "server.json"
    write_state(_state(os.getpid()), path)
    clear_state(os.getpid() + 1, path)
    assert path.exists()
    clear_state(os.getpid(), path)
    assert not path.exists()


def test_state_dir_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTTEAMS_RUNTIME_DIR", str(tmp_path))
    assert state_file() == tmp_path / "server.json"
