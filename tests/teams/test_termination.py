"""Termination specs become the AgentChat conditions a user would expect."""

from __future__ import annotations

import pytest
from autogen_agentchat.messages import TextMessage
from pydantic import ValidationError

from teams import TerminationSpec, build_termination


def _msg(source: str, text: str) -> TextMessage:
    return TextMessage(source=source, content=text)


async def test_any_stops_on_the_first_condition_that_holds() -> None:
    spec = TerminationSpec.model_validate(
        {"any": [{"text_mention": "TERMINATE"}, {"source_match": "summary"}]}
    )
    condition = build_termination(spec)
    assert await condition([_msg("planner", "a plan")]) is None
    stop = await condition([_msg("summary", "the plan")])
    assert stop is not None and stop.content == "'summary' answered"


async def test_all_needs_every_condition() -> None:
    spec = TerminationSpec.model_validate({"all": [{"text_mention": "DONE"}, {"max_messages": 2}]})
    condition = build_termination(spec)
    assert await condition([_msg("a", "DONE")]) is None
    assert await condition([_msg("b", "more")]) is not None


def test_a_condition_names_exactly_one_kind() -> None:
    with pytest.raises(ValidationError, match="exactly one of"):
        TerminationSpec.model_validate({})
