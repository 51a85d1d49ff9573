"""Every user mistake is one line naming file:line:col, the bad value and the valid choices."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scenarios import ScenarioError, load_scenario
from scenarios._loader import read_spec

BASE = """\
name: demo
models:
  default:
    base_url: http://127.0.0.1:9/v1
    model: m
mcp_servers:
  time:
    type: stdio
    command: python
    args: [-m, mcp_server_time]
agents:
  - name: a
    tools: [time]
  - name: b
team:
  type: round_robin
  participants: [a, b]
  termination: {max_messages: 4}
"""

CASES = {
    "yaml syntax": (
        ("  - name: b", "  - name: [b"),
        "15:5: YAML syntax error: did not find expected ',' or ']'",
    ),
    "unknown key (typo)": (
        ("    command: python", "    comand: python"),
        "9:5: unknown key 'comand' in mcp_servers.time (expected one of read_timeout, type, command, args, "
        "env, cwd, startup_timeout; did you mean 'command'?)",
    ),
    "unknown top-level key": (
        ("name: demo", "name: demo\nagnets: []"),
        "2:1: unknown key 'agnets' in the scenario (expected one of name, description, task, prompt_layout, "
        "models, mcp_servers, tools, knowledge, agents, team, code; did you mean 'agents'?)",
    ),
    "wrong type": (
        ("{max_messages: 4}", "{max_messages: four}"),
        "18:31: wrong type for 'max_messages': got 'four' (string); expected an integer",
    ),
    "missing required field": (
        ("    command: python\n", ""),
        "7:3: missing required key 'command' in mcp_servers.time",
    ),
    "unknown participant": (
        ("[a, b]\n", "[a, c]\n"),
        "17:21: unknown agent 'c' (expected one of a, b)",
    ),
    "unknown tool or MCP server": (
        ("tools: [time]", "tools: [tme]"),
        "13:13: unknown tool or MCP server 'tme' (expected one of time, calculator, days_between, python; "
        "did you mean 'time'?)",
    ),
    "duplicate agent names": (
        ("  - name: b", "  - name: a"),
        "14:11: duplicate agent name 'a'",
    ),
    "${VAR} without value or default": (
        ("model: m", "model: ${NOPE_MODEL}"),
        "5:12: environment variable NOPE_MODEL is not set and ${NOPE_MODEL} has no default "
        "(set NOPE_MODEL, or write ${NOPE_MODEL:-value})",
    ),
    "unknown team type": (
        ("type: round_robin", "type: round_robbin"),
        "16:9: unknown team type 'round_robbin' (expected one of round_robin, selector; "
        "did you mean 'round_robin'?)",
    ),
    "unknown MCP server type": (
        ("type: stdio", "type: stdo"),
        "8:11: unknown mcp_servers.time type 'stdo' (expected one of stdio, streamable_http; "
        "did you mean 'stdio'?)",
    ),
    "unknown model name": (
        ("  - name: b", "  - name: b\n    model: defualt"),
        "15:12: unknown model 'defualt' (expected one of default; did you mean 'default'?)",
    ),
    "bad enum value": (
        ("name: demo", "name: demo\nprompt_layout: shared"),
        "2:16: bad value 'shared' for 'prompt_layout' (expected one of auto, shared_prefix, system_first; "
        "did you mean 'shared_prefix'?)",
    ),
    "two conditions in one": (
        ("{max_messages: 4}", "{max_messages: 4, text_mention: X}"),
        "18:16: team.termination: a termination condition needs exactly one of text_mention, source_match, "
        "max_messages, token_budget, timeout, any, all (got text_mention, max_messages)",
    ),
    "unknown agent in source_match": (
        ("{max_messages: 4}", "{source_match: [a, bb]}"),
        "18:35: unknown agent 'bb' (expected one of a, b; did you mean 'b'?)",
    ),
    "unknown participant in speaks_after": (
        ("  type: round_robin", "  type: selector\n  speaks_after: {b: [a, c]}"),
        "17:25: unknown participant 'c' (expected one of a, b)",
    ),
    "unknown speaks_after agent": (
        ("  type: round_robin", "  type: selector\n  speaks_after: {bb: [a]}"),
        "17:18: unknown participant 'bb' (expected one of a, b; did you mean 'b'?)",
    ),
    "an agent that waits for itself": (
        ("  type: round_robin", "  type: selector\n  speaks_after: {b: [a, b]}"),
        "17:25: 'b' cannot wait for itself",
    ),
    "several agents without a team": (
        ("team:", "#team:"),
        None,  # checked below: the team keys then fail as unknown top-level keys
    ),
    "python tool that does not import": (
        ("agents:", "tools:\n  t1: {function: 'nosuch.mod:f'}\nagents:"),
        "12:18: tool 't1': cannot import module 'nosuch.mod' (No module named 'nosuch')",
    ),
    "misspelt condition inside termination.any": (
        ("{max_messages: 4}", "\n    any:\n      - text_mentoin: TERMINATE\n      - max_messages: 4"),
        "20:9: unknown key 'text_mentoin' in team.termination.any.0 (expected one of text_mention, "
        "source_match, max_messages, token_budget, timeout, any, all; did you mean 'text_mention'?)",
    ),
    "misspelt `type` of a tagged section": (
        ("    type: stdio", "    tpye: stdio"),
        "8:5: unknown key 'tpye' in mcp_servers.time (expected one of read_timeout, type, command, args, "
        "env, cwd, startup_timeout, url, headers, timeout; did you mean 'type'?)",
    ),
    "misspelt model option": (
        ("    model: m", "    model: m\n    options: {temprature: 0.2}"),
        "6:15: unknown key 'temprature' in models.default.options (expected one of temperature, top_p, "
        "max_tokens, seed, presence_penalty, frequency_penalty, repetition_penalty, dry_multiplier, stop; "
        "did you mean 'temperature'?)",
    ),
    "unknown context type": (
        ("  - name: b", "  - name: b\n    context: {type: last}"),
        "15:21: unknown agents.1.context type 'last' (expected one of last_n, unbounded; "
        "did you mean 'last_n'?)",
    ),
    "unknown selector_prompt placeholder": (
        ("type: round_robin", "type: selector\n  selector_prompt: 'Next of {participants}: {role}'"),
        "17:20: team.selector_prompt: unknown placeholder {role} (expected one of {roles}, {history}, "
        "{participants}; did you mean {roles}?)",
    ),
    "duplicate key": (
        ("    model: m", "    model: m\n    model: n"),
        "6:5: duplicate key 'model' (it is already set above)",
    ),
}


@pytest.mark.parametrize("case", [c for c in CASES if CASES[c][1] is not None])
def test_load_error_is_one_exact_line(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_MODEL", raising=False)
    (old, new), expected = CASES[case]
    assert old in BASE
    path = tmp_path / "demo.yaml"
    path.write_text(BASE.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        read_spec(path)
    assert str(info.value) == f"{path}:{expected}"
    assert "\n" not in str(info.value)


def test_several_agents_need_a_team(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(BASE.split("team:")[0], encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"demo\.yaml:12:3: 2 agents need a `team:` section"):
        read_spec(path)


def test_unknown_scenario_name_lists_the_known_ones() -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario("travel_planing")
    assert str(info.value) == (
        "no scenario named 'travel_planing' (expected one of data_analyst, pr_review, time_assistant, "
        "travel_planning, travel_selector; did you mean 'travel_planning'?)"
    )


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scenarios", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_cli_reports_a_refused_endpoint_in_one_line_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(BASE, encoding="utf-8")
    proc = _cli("run", str(path), "--task", "hi")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: cannot reach the model server at http://127.0.0.1:9/v1 (connection refused); "
        "`python -m serving up` starts the bundled server"
    )
    assert "Traceback" not in proc.stderr + proc.stdout


def test_cli_names_the_mcp_command_that_cannot_start(tmp_path: Path) -> None:
    from serving.testing import Reply, ScriptedModelServer

    path = tmp_path / "demo.yaml"
    path.write_text(BASE.replace("command: python", "command: mcp-time-nowhere"), encoding="utf-8")
    with ScriptedModelServer([Reply.text("hi")]) as server:
        proc = _cli("run", str(path), "--task", "hi", "--base-url", server.base_url, "--model", server.model)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: {path}:9:14: MCP server 'time': command not found: 'mcp-time-nowhere'"
    )


def test_cli_validate_prints_each_error_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BASE.replace("[a, b]\n", "[a, c]\n"), encoding="utf-8")
    proc = _cli("validate", str(bad), "travel_planning")
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"{bad}:17:21: unknown agent 'c' (expected one of a, b)"
    assert "travel_planning.yaml: ok (travel_planning: 4 agents, round_robin team)" in proc.stdout
