"""RoundRobin and Selector teams and their termination, built from specs; running them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentteams._lazy import lazy_exports

if TYPE_CHECKING:
    from teams._build import build_team, team_limits
    from teams._run import final_answer, stream_team, strip_terminate
    from teams._termination import build_termination
    from teams.events import (
        Message,
        ModelServerUnavailable,
        RunEvent,
        RunRequest,
        RunResult,
        SpeakerSelected,
        TokenDelta,
        ToolCall,
        ToolResult,
        Turn,
        Usage,
        event_from_json,
    )
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
    "final_answer": "teams._run",
    "stream_team": "teams._run",
    "strip_terminate": "teams._run",
    "build_termination": "teams._termination",
    "Message": "teams.events",
    "ModelServerUnavailable": "teams.events",
    "RunEvent": "teams.events",
    "RunRequest": "teams.events",
    "RunResult": "teams.events",
    "SpeakerSelected": "teams.events",
    "TokenDelta": "teams.events",
    "ToolCall": "teams.events",
    "ToolResult": "teams.events",
    "Turn": "teams.events",
    "Usage": "teams.events",
    "event_from_json": "teams.events",
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
    "Message",
    "ModelServerUnavailable",
    "RoundRobinTeamSpec",
    "RunEvent",
    "RunRequest",
    "RunResult",
    "SelectorTeamSpec",
    "SpeakerSelected",
    "TeamSpec",
    "TerminationSpec",
    "TokenDelta",
    "ToolCall",
    "ToolResult",
    "Turn",
    "Usage",
    "build_team",
    "build_termination",
    "event_from_json",
    "final_answer",
    "stream_team",
    "strip_terminate",
    "team_limits",
]


__getattr__ = lazy_exports(__name__, _EXPORTS)
