"""The `python` tool in scenario runs, on the scripted model: what the model and the user see."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from scenarios import RunResult, ScenarioError, load_scenario
from serving.testing import Reply, ScriptedModelServer
from teams import ToolResult
from tools import InputFile

from .test_sandbox import SINE

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="needs bubblewrap (apt-get install bubblewrap)"
)


def _tool_messages(body: dict[str, Any]) -> list[str]:
    return [m["content"] for m in body["messages"] if m["role"] == "tool"]


def _scenario(tmp_path: Path, code: str = "{timeout: 120}") -> Path:
    path = tmp_path / "coder.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            name: coder
            code: {code}
            agents:
              - name: coder
                tools: [python]
                reflect_on_tool_use: true
                max_tool_iterations: 3
            """
        ),
        encoding="utf-8",
    )
    return path


async def test_data_analyst_makes_a_sine_wave_png(tmp_path: Path) -> None:
    replies = [
        Reply.tool_call("python", {"code": SINE}),
        Reply.text("Here is the sine wave, saved as sinewave.png. TERMINATE"),
    ]
    async with ScriptedModelServer(replies) as server:
        async with load_scenario("data_analyst", base_url=server.base_url, model=server.model) as scenario:
            result = await scenario.run("Create a visualization of a sinewave", output_dir=tmp_path / "out")
    assert result.final_text == "Here is the sine wave, saved as sinewave.png."
    [png] = result.files
    assert (png.name, png.media_type, png.agent, png.execution) == (
        "sinewave.png",
        "image/png",
        "data_analyst",
        1,
    )
    assert png.path == tmp_path / "out" / "sinewave.png" and png.path.read_bytes() == png.data
    assert Image.open(io.BytesIO(png.data)).size[0] > 0
    [tool_result] = _tool_messages(server.requests[1])
    assert tool_result.startswith("stdout:\nsaved sinewave.png\n")
    assert "files written: sinewave.png (image/png," in tool_result
    tool = next(t for t in server.requests[0]["tools"] if t["function"]["name"] == "python")
    assert tool["function"]["parameters"]["required"] == ["code"]
    assert "numpy, matplotlib" in tool["function"]["description"]


async def test_an_exception_reaches_the_model_which_fixes_the_code(tmp_path: Path) -> None:
    replies = [
        Reply.tool_call("python", {"code": "import numpy as np\nprint(np.sin(x))"}),
        Reply.tool_call("python", {"code": SINE}),
        Reply.text("Fixed: x was undefined. The plot is sinewave.png. TERMINATE"),
    ]
    async with ScriptedModelServer(replies) as server:
        async with load_scenario("data_analyst", base_url=server.base_url, model=server.model) as scenario:
            items = [item async for item in scenario.run_stream("Plot a sine wave")]
    result = items[-1]
    assert isinstance(result, RunResult)
    executions = [e for e in items if isinstance(e, ToolResult)]
    assert [e.is_error for e in executions] == [True, False]
    first_error = _tool_messages(server.requests[1])[0]
    assert (
        "the code failed (exit code 1)" in first_error and "NameError: name 'x' is not defined" in first_error
    )
    assert [(f.name, f.execution) for f in result.files] == [("sinewave.png", 2)]
    assert result.final_text.startswith("Fixed: x was undefined.")
    assert server.calls == 3


async def test_an_infinite_loop_is_killed_and_the_team_goes_on(tmp_path: Path) -> None:
    replies = [
        Reply.tool_call("python", {"code": "while True:\n    pass"}),
        Reply.tool_call("python", {"code": "print(6 * 7)"}),
        Reply.text("The answer is 42."),
    ]
    async with ScriptedModelServer(replies) as server:
        async with load_scenario(
            _scenario(tmp_path, "{timeout: 6}"), base_url=server.base_url, model=server.model
        ) as scenario:
            result = await scenario.run("Compute 6*7")
    assert _tool_messages(server.requests[1]) == ["killed: still running after the 6 s time limit"]
    assert _tool_messages(server.requests[2])[-1] == "stdout:\n42"
    assert result.final_text == "The answer is 42."


async def test_thread_files_are_in_the_working_directory(tmp_path: Path) -> None:
    replies = [
        Reply.tool_call("python", {"code": "print(sum(int(l.split(',')[1]) for l in open('sales.csv')))"}),
        Reply.text("Total: 5"),
    ]
    async with ScriptedModelServer(replies) as server:
        async with load_scenario(
            _scenario(tmp_path), base_url=server.base_url, model=server.model
        ) as scenario:
            result = await scenario.run("Sum the sales", files=[InputFile("sales.csv", b"a,2\nb,3\n")])
    assert _tool_messages(server.requests[1]) == ["stdout:\n5"]
    assert not result.files


async def test_a_missing_package_is_a_load_error_at_its_line(tmp_path: Path) -> None:
    path = _scenario(tmp_path, "{packages: [numpy, no_such_module_xyz]}")
    with pytest.raises(ScenarioError) as error:
        async with load_scenario(path, base_url="http://127.0.0.1:9/v1", model="m"):
            pass
    assert str(error.value) == (
        f"{path}:2:26: package 'no_such_module_xyz' is not importable by {sys.executable} "
        "(the sandbox's Python): pip install no_such_module_xyz"
    )


def test_cli_shows_the_code_its_output_and_the_saved_file(tmp_path: Path) -> None:
    replies = [
        Reply.tool_call("python", {"code": SINE}),
        Reply.text("Saved the sine wave to sinewave.png. TERMINATE"),
    ]
    with ScriptedModelServer(replies) as server:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "scenarios.data_analyst",
                "--task",
                "Create a visualization of a sinewave",
                "--base-url",
                server.base_url,
                "--model",
                server.model,
                "--out",
                str(tmp_path / "out"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={"PATH": "/usr/bin:/bin", "COLUMNS": "120"},
        )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"Files go to {tmp_path / 'out'}" in out
    assert "  → python:" in out
    assert '6 plt.title("Sine Wave")' in out  # the code, with line numbers
    assert "← python: stdout:" in out and "saved sinewave.png" in out
    saved = tmp_path / "out" / "sinewave.png"
    assert f"{saved}  (image/png," in out
    with Image.open(saved) as image:
        assert image.size[1] > 0


def test_cli_refuses_without_bubblewrap_in_one_line(tmp_path: Path) -> None:
    path = _scenario(tmp_path)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "scenarios",
            "run",
            str(path),
            "--task",
            "x",
            "--base-url",
            "http://127.0.0.1:9/v1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/nonexistent"},
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: {path}:2:7: the python tool runs code under bubblewrap, which is not installed: "
        "apt-get install bubblewrap (or set `code: {sandbox: none}` for trusted local use)"
    ]


def test_cli_sandbox_none_warns_and_transcript_lists_the_files(tmp_path: Path) -> None:
    path = _scenario(tmp_path, "{sandbox: none, timeout: 20}")
    replies = [
        Reply.tool_call("python", {"code": "open('out.txt', 'w').write('hi')\nprint('wrote')"}),
        Reply.text("Wrote out.txt."),
    ]
    transcript = tmp_path / "run.jsonl"
    with ScriptedModelServer(replies) as server:
        proc = subprocess.run(
            [
                *(sys.executable, "-m", "scenarios", "run", str(path), "--task", "write a file"),
                *("--base-url", server.base_url, "--model", server.model),
                *("--out", str(tmp_path / "out"), "--transcript", str(transcript)),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={"PATH": "/usr/bin:/bin"},
        )
    assert proc.returncode == 0, proc.stderr
    assert (
        "warning: code.sandbox is none: model-written code runs unsandboxed, with your files, network and "
        "environment; use it only for trusted local work"
    ) in proc.stderr.splitlines()
    assert (tmp_path / "out" / "out.txt").read_text() == "hi"
    record = json.loads(transcript.read_text().splitlines()[-1])
    assert record["files"] == [
        {
            "name": "out.txt",
            "media_type": "text/plain",
            "bytes": 2,
            "agent": "coder",
            "execution": 1,
            "path": str(tmp_path / "out" / "out.txt"),
        }
    ]
