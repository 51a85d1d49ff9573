"""The committed JSON Schema, the shipped scenarios, the public API and the CLI run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import scenarios
from scenarios import json_schema, list_scenarios
from serving.testing import Reply, ScriptedModelServer

PACKAGE = Path(scenarios.__file__).parent


def test_committed_schema_is_current() -> None:
    committed = json.loads((PACKAGE / "scenario.schema.json").read_text())
    assert committed == json_schema(), "run: python -m scenarios schema > scenarios/scenario.schema.json"


def test_every_shipped_scenario_validates_and_points_at_the_schema() -> None:
    shipped = sorted(PACKAGE.glob("*.yaml"))
    assert [p.stem for p in shipped] == [
        "data_analyst",
        "pr_review",
        "time_assistant",
        "travel_planning",
        "travel_selector",
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "scenarios", "validate", *map(str, shipped)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count(": ok (") == 5
    for path in shipped:
        assert path.read_text().startswith("# yaml-language-server: $schema=./scenario.schema.json\n")
    assert {i.name for i in list_scenarios()} == {
        "data_analyst",
        "pr_review",
        "time_assistant",
        "travel_planning",
        "travel_selector",
    }


def test_public_import_paths() -> None:
    from agents import AgentSpec, ModelSpec, build_agent  # noqa: F401
    from mcp_servers import McpServerSpec, McpSessionPool  # noqa: F401
    from scenarios import RunEvent, RunResult, Scenario, ScenarioError, Turn, load_scenario  # noqa: F401
    from teams import TeamSpec, TerminationSpec, build_team  # noqa: F401
    from tools import PythonToolSpec, build_function_tool  # noqa: F401

    assert sorted(scenarios.__all__) == [
        "RunEvent",
        "RunResult",
        "Scenario",
        "ScenarioError",
        "ScenarioInfo",
        "ScenarioSpec",
        "Turn",
        "Usage",
        "json_schema",
        "list_scenarios",
        "load_scenario",
    ]


def test_cli_runs_travel_planning_with_speakers_summary_and_transcript(tmp_path: Path) -> None:
    replies = [
        Reply.text("Day 1 Kathmandu"),
        Reply.text("Eat momo"),
        Reply.text("Say namaste"),
        Reply.text("The full plan. TERMINATE"),
    ]
    transcript = tmp_path / "run.jsonl"
    with ScriptedModelServer(replies) as server:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "scenarios.travel_planning",
                "--base-url",
                server.base_url,
                "--model",
                server.model,
                "--transcript",
                str(transcript),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "COLUMNS": "120"},
        )
    assert proc.returncode == 0, proc.stderr
    server.assert_complete()  # every scripted reply was used, no more
    out = proc.stdout
    headers = [line.strip("─ ") for line in out.splitlines() if line.startswith("── ")]
    assert headers == ["user", "planner_agent", "local_agent", "language_agent", "travel_summary_agent"]
    assert "Day 1 Kathmandu" in out and "The full plan. TERMINATE" in out
    assert "Run summary" in out and "│ total" in out
    assert "Stopped: Text 'TERMINATE' mentioned, 'travel_summary_agent' answered" in out
    records = [json.loads(line) for line in transcript.read_text().splitlines()]
    assert records[-1]["type"] == "RunResult" and records[-1]["final_text"] == "The full plan."
    assert any(r["type"] == "TokenDelta" for r in records)
    assert [r["source"] for r in records if r["type"] == "Message"] == headers


def test_cli_no_stream_prints_whole_messages_once(tmp_path: Path) -> None:
    with ScriptedModelServer([Reply.text("It is noon. TERMINATE")]) as server:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "scenarios",
                "run",
                "travel_planning",
                "--no-stream",
                "--max-messages",
                "1",
                "--base-url",
                server.base_url,
                "--model",
                server.model,
                "--task",
                "Plan Seoul.",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 0, proc.stderr
    server.assert_complete()  # every scripted reply was used, no more
    assert proc.stdout.count("It is noon. TERMINATE") == 1
    assert "Plan Seoul." in proc.stdout
