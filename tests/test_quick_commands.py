"""The commands a user runs first answer at once: none imports AutoGen, openai or mcp.

Each runs in a fresh interpreter, as from a shell; afterwards the heavy modules must be
absent from sys.modules. `python -m bench overhead` measures the start times.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ["autogen_core", "autogen_agentchat", "autogen_ext", "openai", "mcp", "fastapi"]

COMMANDS = [
    ["scenarios", "list"],
    ["scenarios", "validate", "scenarios/travel_planning.yaml", "scenarios/travel_selector.yaml"],
    ["scenarios", "validate", "scenarios/time_assistant.yaml"],
    ["scenarios", "schema"],
    ["scenarios", "--help"],
    ["scenarios", "run", "--help"],
    ["serving", "status"],
    ["serving", "down"],
    ["serving", "--help"],
    ["serving", "up", "--help"],
    ["serving", "check", "--help"],
    ["gateway", "--help"],
]

PROBE = """
import json, runpy, sys
sys.argv = [sys.argv[1], *sys.argv[2:]]
try:
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps({"code": code, "heavy": [m for m in HEAVY if m in sys.modules]}), file=sys.stderr)
""".replace("HEAVY", repr(HEAVY))


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_quick_command_imports_no_heavy_library(command: list[str], tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(ROOT), "AGENTTEAMS_RUNTIME_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report["heavy"] == [], proc.stderr
    assert report["code"] in (0, 1, None), proc.stderr  # `serving status` exits 1: nothing runs
    assert proc.stdout.strip(), "the command printed nothing"
