"""RoundRobin and Selector teams and their termination, built from specs; running them."""

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
