"""Selector teams: the model's pick is constrained to the allowed names when the server can do it."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scenarios import load_scenario
from serving.testing import Reply, ScriptedModelServer, message_text

SCENARIO = """\
name: pick
{MODELS}
agents:
  - {name: alpha, description: writes first, system_message: You are alpha.}
  - {name: beta, description: adds to it, system_message: You are beta.}
  - {name: gamma, description: wraps up, system_message: You are gamma.}
team:
  type: selector
  participants: [alpha, beta, gamma]
  selector_prompt: "PICK NEXT from {participants}.\\n{roles}\\n{history}"
  termination: {source_match: gamma}
  max_messages: 6
"""


def _is_selection(body: dict[str, Any]) -> bool:
    return any("PICK NEXT" in message_text(m) for m in body["messages"])


def _speaker(body: dict[str, Any]) -> str:
    system = next(message_text(m) for m in body["messages"] if m["role"] == "system")
    return system.removeprefix("You are ").rstrip(".")


def _script(selections: Iterator[str]) -> Callable[[dict[str, Any]], Reply]:
    def reply(body: dict[str, Any]) -> Reply:
        if _is_selection(body):
            return Reply.text(next(selections))
        return Reply.text(f"{_speaker(body)} says hello")

    return reply


def _enum(body: dict[str, Any]) -> list[str]:
    schema = body["response_format"]["json_schema"]["schema"]
    return list(schema["properties"]["speaker"]["enum"])


async def test_the_pick_is_decoded_under_a_schema_of_the_allowed_names(
    write_scenario: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_scenario(
        SCENARIO.replace("  max_messages: 6", "  max_messages: 6\n  constrained_choice: true")
    )
    picks = iter(json.dumps({"speaker": s}) for s in ["alpha", "beta", "gamma"])
    async with ScriptedModelServer(_script(picks)) as server:
        monkeypatch.setenv("TEST_BASE_URL", server.base_url)
        async with load_scenario(path) as scenario:
            result = await scenario.run("Plan it.")
    assert [m.source for m in result.messages] == ["user", "alpha", "beta", "gamma"]
    selections = [b for b in server.requests if _is_selection(b)]
    # one request per pick, no retries; the previous speaker is never among the choices
    assert [_enum(b) for b in selections] == [
        ["alpha", "beta", "gamma"],
        ["beta", "gamma"],
        ["alpha", "gamma"],
    ]
    assert all(b["response_format"]["json_schema"]["strict"] for b in selections)
    # the prompt lists the same candidates the schema allows, as AutoGen would render them
    assert "PICK NEXT from ['beta', 'gamma']." in message_text(selections[1]["messages"][0])
    assert "alpha: writes first\nbeta: adds to it\ngamma: wraps up" in message_text(
        selections[0]["messages"][0]
    )
    assert "alpha: alpha says hello" in message_text(selections[1]["messages"][0])
    assert result.usage["selector"].prompt_tokens > 0


async def test_an_answer_outside_the_schema_falls_back_to_autogens_selection(
    write_scenario: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_scenario(
        SCENARIO.replace("  max_messages: 6", "  max_messages: 6\n  constrained_choice: true")
    )
    # a server that ignores response_format: free text, which AutoGen's parser then reads
    picks = iter(["alpha", "I think alpha", "beta", "beta", "gamma", "gamma"])
    async with ScriptedModelServer(_script(picks)) as server:
        monkeypatch.setenv("TEST_BASE_URL", server.base_url)
        with caplog.at_level(logging.WARNING, logger="teams._selector"):
            async with load_scenario(path) as scenario:
                result = await scenario.run("Plan it.")
    assert [m.source for m in result.messages] == ["user", "alpha", "beta", "gamma"]
    selections = [b for b in server.requests if _is_selection(b)]
    # each pick: our constrained request, then AutoGen's free-text one over the same candidates
    assert ["response_format" in b for b in selections] == [True, False] * 3
    assert "PICK NEXT from ['beta', 'gamma']." in message_text(selections[3]["messages"][0])
    assert "using AutoGen's selection" in caplog.text


async def test_without_structured_output_autogens_parsing_stays(
    write_scenario: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_scenario(SCENARIO)  # the scripted model's info says no structured_output
    picks = iter(["alpha", "beta", "gamma"])
    async with ScriptedModelServer(_script(picks)) as server:
        monkeypatch.setenv("TEST_BASE_URL", server.base_url)
        async with load_scenario(path) as scenario:
            result = await scenario.run("Plan it.")
    assert [m.source for m in result.messages] == ["user", "alpha", "beta", "gamma"]
    assert not any("response_format" in b for b in server.requests)


async def test_a_model_that_declares_structured_output_gets_the_constraint(
    write_scenario: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_scenario(SCENARIO)
    text = path.read_text().replace(
        "function_calling: true}", "function_calling: true, structured_output: true}"
    )
    assert "structured_output: true" in text
    path.write_text(text)
    picks = iter(json.dumps({"speaker": s}) for s in ["beta", "alpha", "gamma"])
    async with ScriptedModelServer(_script(picks)) as server:
        monkeypatch.setenv("TEST_BASE_URL", server.base_url)
        async with load_scenario(path) as scenario:
            result = await scenario.run("Plan it.")
    assert [m.source for m in result.messages] == ["user", "beta", "alpha", "gamma"]
    assert sum("response_format" in b for b in server.requests) == 3


async def test_on_llamacpp_the_pick_is_decoded_under_a_grammar_of_the_names(
    write_scenario: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_scenario(
        SCENARIO.replace("  max_messages: 6", "  max_messages: 6\n  constrained_choice: true")
    )
    picks = iter(["alpha", "gamma"])
    async with ScriptedModelServer(_script(picks), owned_by="llamacpp") as server:
        monkeypatch.setenv("TEST_BASE_URL", server.base_url)
        async with load_scenario(path) as scenario:
            result = await scenario.run("Plan it.")
    assert [m.source for m in result.messages] == ["user", "alpha", "gamma"]
    selections = [b for b in server.requests if _is_selection(b)]
    assert [b["grammar"] for b in selections] == [
        'root ::= "alpha" | "beta" | "gamma"',
        'root ::= "beta" | "gamma"',
    ]
    assert not any("response_format" in b for b in selections)


async def test_speaks_after_keeps_an_agent_out_of_the_choices_until_the_others_have_spoken(
    write_scenario: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a small model picked the summary first, and its turn ended the run
    path = write_scenario(
        SCENARIO.replace(
            "  max_messages: 6",
            "  max_messages: 6\n  constrained_choice: true\n  speaks_after: {gamma: [alpha, beta]}",
        )
    )
    picks = iter(json.dumps({"speaker": s}) for s in ["beta", "gamma"])
    async with ScriptedModelServer(_script(picks)) as server:
        monkeypatch.setenv("TEST_BASE_URL", server.base_url)
        async with load_scenario(path) as scenario:
            result = await scenario.run("Plan it.")
    assert [m.source for m in result.messages] == ["user", "beta", "alpha", "gamma"]
    selections = [b for b in server.requests if _is_selection(b)]
    # after beta only alpha may speak (gamma waits for it): no model call for that pick
    assert [_enum(b) for b in selections] == [["alpha", "beta"], ["beta", "gamma"]]


async def test_speaks_after_also_narrows_autogens_own_selection(
    write_scenario: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_scenario(
        SCENARIO.replace("  max_messages: 6", "  max_messages: 6\n  speaks_after: {gamma: [alpha]}")
    )
    picks = iter(["beta", "gamma"])
    async with ScriptedModelServer(_script(picks)) as server:
        monkeypatch.setenv("TEST_BASE_URL", server.base_url)
        async with load_scenario(path) as scenario:
            result = await scenario.run("Plan it.")
    assert [m.source for m in result.messages] == ["user", "beta", "alpha", "gamma"]
    selections = [message_text(b["messages"][0]) for b in server.requests if _is_selection(b)]
    assert not any("response_format" in b for b in server.requests)
    # after beta only alpha may speak: AutoGen asks the model only when there is a choice
    assert [s.split(".")[0] for s in selections] == [
        "PICK NEXT from ['alpha', 'beta']",
        "PICK NEXT from ['beta', 'gamma']",
    ]
