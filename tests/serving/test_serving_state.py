from __future__ import annotations

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
