"""The state file of the server started by `python -m serving up`: URL, pid, model.

Only `up` writes it; servers that an `auto` endpoint starts for one run stay private to it.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import platformdirs


@dataclass(frozen=True)
class ServerState:
    url: str  # base URL ending with /v1
    pid: int
    model: str  # the id the server lists
    engine: str  # "embedded" | "vllm"
    started_at: float
    log: str | None = None


def _parse_state(text: str) -> ServerState:
    """The file as `write_state` wrote it; ValueError for anything else.

    Checked by hand, not by a pydantic model: building one doubled `serving status`'s start.
    """
    raw = json.loads(text)
    if not isinstance(raw, dict) or set(raw) - _FIELDS.keys() or _REQUIRED - set(raw):
        raise ValueError("not a server state file")
    for key, value in raw.items():
        if not isinstance(value, _FIELDS[key]) or isinstance(value, bool):
            raise ValueError(f"{key}: {value!r}")
    return ServerState(**{**raw, "started_at": float(raw["started_at"])})


_FIELDS: dict[str, type | tuple[type, ...]] = {
    "url": str,
    "pid": int,
    "model": str,
    "engine": str,
    "started_at": (int, float),
    "log": (str, type(None)),
}
_REQUIRED = {"url", "pid", "model", "engine", "started_at"}


def state_dir() -> Path:
    env = os.environ.get("AGENTTEAMS_RUNTIME_DIR")
    if env:
        return Path(env)
    if os.environ.get("XDG_RUNTIME_DIR"):
        return platformdirs.user_runtime_path("agentteams")
    return platformdirs.user_cache_path("agentteams") / "run"


def state_file() -> Path:
    return state_dir() / "server.json"


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    try:  # a zombie (exited, not yet reaped) is not a server
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def write_state(state: ServerState, path: Path | None = None) -> Path:
    path = path or state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2))
    os.replace(tmp, path)
    return path


def read_state(path: Path | None = None) -> ServerState | None:
    """The recorded server if its process is alive; a stale or unreadable file is removed."""
    path = path or state_file()
    try:
        state = _parse_state(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        path.unlink(missing_ok=True)
        return None
    if not pid_alive(state.pid):
        path.unlink(missing_ok=True)
        return None
    return state


def clear_state(pid: int | None = None, path: Path | None = None) -> None:
    """Remove the state file (only if it still names `pid`, when given)."""
    path = path or state_file()
    if pid is not None:
        try:
            if _parse_state(path.read_text()).pid != pid:
                return
        except (OSError, ValueError):
            pass
    path.unlink(missing_ok=True)


def uptime(state: ServerState) -> float:
    return time.time() - state.started_at
