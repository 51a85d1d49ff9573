"""RoundRobin and Selector teams and their termination, built from specs; running them."""

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
