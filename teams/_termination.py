"""AgentChat termination conditions from their spec."""

from __future__ import annotations

import functools
import operator

from autogen_agentchat.base import TerminationCondition
from autogen_agentchat.conditions import (
    MaxMessageTermination,
    SourceMatchTermination,
    TextMentionTermination,
    TimeoutTermination,
    TokenUsageTermination,
)

from teams.spec import TerminationSpec


def build_termination(spec: TerminationSpec) -> TerminationCondition:
    if spec.text_mention is not None:
        return TextMentionTermination(spec.text_mention)
    if spec.source_match is not None:
        sources = [spec.source_match] if isinstance(spec.source_match, str) else list(spec.source_match)
        return SourceMatchTermination(sources)
    if spec.max_messages is not None:
        return MaxMessageTermination(spec.max_messages)
    if spec.token_budget is not None:
        return TokenUsageTermination(max_total_token=spec.token_budget)
    if spec.timeout is not None:
        return TimeoutTermination(spec.timeout)
    if spec.any is not None:
        return functools.reduce(operator.or_, (build_termination(s) for s in spec.any))
    if spec.all is not None:
        return functools.reduce(operator.and_, (build_termination(s) for s in spec.all))
    raise AssertionError("TerminationSpec validates that one condition is set")
