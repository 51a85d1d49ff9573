"""RoundRobin and Selector teams from their spec."""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from autogen_agentchat.base import ChatAgent, Team, TerminationCondition
from autogen_agentchat.conditions import TimeoutTermination
from autogen_agentchat.teams import BaseGroupChat, RoundRobinGroupChat, SelectorGroupChat
from autogen_core.models import ChatCompletionClient

from teams._selector import ConstrainedSelector, SpeakerCandidates
from teams._termination import build_termination
from teams.spec import RoundRobinTeamSpec, SelectorTeamSpec, TeamSpec


def team_limits(spec: TeamSpec, max_messages: int | None = None) -> tuple[int, float]:
    """The safety cap (agent messages) and wall-clock timeout that every team gets."""
    return (max_messages or spec.max_messages, spec.timeout)


def build_team(
    spec: TeamSpec,
    agents: Sequence[ChatAgent],
    *,
    selector_client: ChatCompletionClient | None = None,
    selector_engine: str | None = None,
    max_messages: int | None = None,
) -> BaseGroupChat:
    """A team over already-built agents, in `spec.participants` order.

    `selector_engine` ("llamacpp", "vllm" or None) says how the selector's server takes a
    constraint on the pick (teams/_selector.py).
    """
    by_name = {agent.name: agent for agent in agents}
    participants: list[ChatAgent | Team] = [by_name[name] for name in spec.participants]
    cap, timeout = team_limits(spec, max_messages)
    termination: TerminationCondition = TimeoutTermination(timeout)
    if spec.termination is not None:
        termination = build_termination(spec.termination) | termination
    if isinstance(spec, RoundRobinTeamSpec):
        return RoundRobinGroupChat(participants, termination_condition=termination, max_turns=cap)
    assert isinstance(spec, SelectorTeamSpec)
    if selector_client is None:
        raise ValueError("a selector team needs a model client")
    prompt = spec.selector_prompt or _AUTOGEN_SELECTOR_PROMPT
    candidates = SpeakerCandidates(
        spec.participants, allow_repeated_speaker=spec.allow_repeated_speaker, speaks_after=spec.speaks_after
    )
    selector: ConstrainedSelector | None = None
    if _constrain(spec, selector_client):
        selector = ConstrainedSelector(
            selector_client,
            participants=[(a.name, a.description) for a in (by_name[n] for n in spec.participants)],
            prompt=prompt,
            candidates=candidates,
            engine=selector_engine,
        )
    return SelectorGroupChat(
        participants,
        model_client=selector_client,
        termination_condition=termination,
        max_turns=cap,
        selector_prompt=prompt,
        allow_repeated_speaker=spec.allow_repeated_speaker,
        max_selector_attempts=spec.max_selector_attempts,
        selector_func=selector.select if selector else None,
        # AutoGen's own selection leaves out the previous speaker by itself; speaks_after needs ours
        candidate_func=candidates if selector or spec.speaks_after else None,
    )


_AUTOGEN_SELECTOR_PROMPT: str = inspect.signature(SelectorGroupChat).parameters["selector_prompt"].default


def _constrain(spec: SelectorTeamSpec, client: ChatCompletionClient) -> bool:
    """Constrain the pick when asked, or by default when the model's profile says it can."""
    if spec.constrained_choice is not None:
        return spec.constrained_choice
    return bool(client.model_info.get("structured_output"))
