"""RoundRobin and Selector teams and their termination, built from specs; running them."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from teams._build import build_team, team_limits
    from teams._result import AgentUsage, RunResult
    from teams._run import RunItem, final_answer, stream_team, strip_terminate
    from teams._termination import build_termination
    from teams.spec import (
        DEFAULT_MAX_MESSAGES,
        DEFAULT_TIMEOUT_S,
        RoundRobinTeamSpec,
        SelectorTeamSpec,
        TeamSpec,
        TerminationSpec,
    )

# name -> module: imported on first use, so that `import teams.spec` (and the CLI's
# quick commands) need none of the heavy libraries the builders use
_EXPORTS = {
    "build_team": "teams._build",
    "team_limits": "teams._build",
    "AgentUsage": "teams._result",
    "RunResult": "teams._result",
    "RunItem": "teams._run",
    "final_answer": "teams._run",
    "stream_team": "teams._run",
    "strip_terminate": "teams._run",
    "build_termination": "teams._termination",
    "DEFAULT_MAX_MESSAGES": "teams.spec",
    "DEFAULT_TIMEOUT_S": "teams.spec",
    "RoundRobinTeamSpec": "teams.spec",
    "SelectorTeamSpec": "teams.spec",
    "TeamSpec": "teams.spec",
    "TerminationSpec": "teams.spec",
}

__all__ = [
    "DEFAULT_MAX_MESSAGES",
    "DEFAULT_TIMEOUT_S",
    "AgentUsage",
    "RoundRobinTeamSpec",
    "RunItem",
    "RunResult",
    "SelectorTeamSpec",
    "TeamSpec",
    "TerminationSpec",
    "build_team",
    "build_termination",
    "final_answer",
    "stream_team",
    "strip_terminate",
    "team_limits",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
