"""The code interpreter's sandbox, for real: bubblewrap from Debian, real processes, real limits.

Every escape attempt must fail and come back as a tool error the model can read.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from tools import CodeExecutionError, CodeSession, CodeSpec, InputFile, Sandbox

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="needs bubblewrap (apt-get install bubblewrap)"
)

SINE = """\
import numpy as np
import matplotlib.pyplot as plt

x = np.linspace(0, 4 * np.pi, 1000)
plt.plot(x, np.sin(x))
plt.title("Sine Wave")
plt.savefig("sinewave.png")
print("saved sinewave.png")
"""
# Generous limits: on the loaded shared machine importing matplotlib alone took 5 s. Only the
# tests of the wall-clock limit itself use a short one.
GENEROUS = 120.0
TIMEOUT = 8.0  # the wall-clock limit where a test waits for it
MARGIN = 30.0


def _session(timeout: float) -> CodeSession:
    spec = CodeSpec.model_validate(
        {"timeout": timeout, "memory": "512MiB", "processes": 32, "max_output": "4KiB"}
    )
    return CodeSession(Sandbox(spec), inputs=[InputFile("data.csv", b"x,y\n1,2\n")])


@pytest.fixture
async def session() -> AsyncIterator[CodeSession]:
    code = _session(GENEROUS)
    yield code
    code.close()


@pytest.fixture
async def short() -> AsyncIterator[CodeSession]:
    code = _session(TIMEOUT)
    yield code
    code.close()


async def _fails(session: CodeSession, code: str) -> str:
    with pytest.raises(CodeExecutionError) as failure:
        await session.execute(code, "analyst")
    return str(failure.value)


async def test_sine_wave_png_is_collected_and_decodes(session: CodeSession) -> None:
    text = await session.execute(SINE, "analyst")
    assert text.startswith("stdout:\nsaved sinewave.png")
    assert "files written: sinewave.png (image/png," in text
    [png] = session.files
    assert (png.name, png.media_type, png.agent, png.execution) == ("sinewave.png", "image/png", "analyst", 1)
    image = Image.open(io.BytesIO(png.data))
    assert image.format == "PNG" and image.width > 0 and image.height > 0


async def test_attached_input_is_readable_and_not_reported_as_produced(session: CodeSession) -> None:
    text = await session.execute("print(open('data.csv').read().splitlines()[1])", "analyst")
    assert text == "stdout:\n1,2"
    assert session.files == []


async def test_working_directory_is_kept_between_executions(session: CodeSession) -> None:
    await session.execute("open('a.txt', 'w').write('first')", "analyst")
    assert await session.execute("print(open('a.txt').read())", "analyst") == "stdout:\nfirst"
    assert [(f.name, f.execution) for f in session.files] == [("a.txt", 1)]


async def test_exception_is_a_tool_error_with_the_traceback(session: CodeSession) -> None:
    message = await _fails(session, "values = [1, 2]\nprint(values[5])\n")
    assert message.startswith("the code failed (exit code 1)\nstderr:\nTraceback (most recent call last):")
    assert 'File "main.py", line 2, in <module>\n    print(values[5])' in message
    assert message.endswith("IndexError: list index out of range")


async def test_gateway_keys_in_the_environment_are_not_visible(
    session: CodeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_API_KEYS", "sk-gateway-secret")
    message = await _fails(session, "import os\nprint(os.environ['GATEWAY_API_KEYS'])")
    assert "KeyError: 'GATEWAY_API_KEYS'" in message
    # nor through another process's environment
    message = await _fails(session, "print(open('/proc/1/environ').read())")
    assert "sk-gateway-secret" not in message and "Error" in message


async def test_socket_to_a_listening_loopback_port_fails() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0)
    port = listener.getsockname()[1]
    code = CodeSession(Sandbox(CodeSpec(timeout=GENEROUS)))
    try:
        message = await _fails(
            code,
            f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\nprint('connected')",
        )
        assert "connected" not in message
        assert "OSError" in message or "ConnectionRefusedError" in message
        with pytest.raises(BlockingIOError):  # nothing ever reached the test's port
            listener.accept()
    finally:
        listener.close()
        code.close()


async def test_writing_outside_the_working_directory_fails(session: CodeSession, tmp_path: Path) -> None:
    outside = tmp_path / "escaped.txt"
    for target in (str(outside), "../escaped.txt", "/usr/escaped.txt", "/sandbox/main.py"):
        message = await _fails(session, f"open({target!r}, 'w').write('x')")
        assert "Error" in message, target
    assert not outside.exists()
    assert not (session.workdir.parent / "escaped.txt").exists()


async def test_symlink_to_a_host_file_is_not_collected(session: CodeSession) -> None:
    text = await session.execute("import os\nos.symlink('/etc/hostname', 'host.txt')\nprint('linked')", "a")
    assert text == "stdout:\nlinked"
    assert session.files == []


async def test_fork_bomb_is_contained(short: CodeSession) -> None:
    started = time.monotonic()
    message = await _fails(short, "import os\nwhile True:\n    os.fork()\n")
    assert time.monotonic() - started < TIMEOUT + MARGIN
    assert "BlockingIOError" in message or "killed" in message
    # the host still forks, and the next execution runs normally
    assert await short.execute("print('alive')", "analyst") == "stdout:\nalive"


async def test_memory_beyond_the_limit_is_a_memory_error(session: CodeSession) -> None:
    message = await _fails(session, "block = bytearray(2 * 1024**3)\nprint('allocated')")
    assert "MemoryError" in message and "allocated" not in message


async def test_infinite_loop_is_killed_at_the_timeout(short: CodeSession) -> None:
    started = time.monotonic()
    message = await _fails(short, "print('spinning', flush=True)\nwhile True:\n    pass\n")
    elapsed = time.monotonic() - started
    assert TIMEOUT <= elapsed < TIMEOUT + MARGIN
    assert message.startswith(f"killed: still running after the {TIMEOUT:g} s time limit\nstdout:\nspinning")


async def test_output_is_capped(session: CodeSession) -> None:
    text = await session.execute("print('x' * 10000)", "analyst")
    assert len(text) < 4096 + 200 and text.endswith("(output cut at 4096 bytes)")


async def test_files_beyond_the_limit_are_not_kept() -> None:
    code = CodeSession(
        Sandbox(CodeSpec.model_validate({"timeout": GENEROUS, "max_files": 3, "max_file_size": "4KiB"}))
    )
    try:
        text = await code.execute("for i in range(5):\n    open(f'f{i}.txt', 'w').write('x')", "a")
        assert text.endswith("2 more files were not kept (limit 3 per run)")
        assert [f.name for f in code.files] == ["f0.txt", "f1.txt", "f2.txt"]
        message = await _fails(code, "open('big.bin', 'wb').write(b'x' * 10000)")
        assert "OSError: [Errno 27] File too large" in message
    finally:
        code.close()


async def test_concurrent_executions_do_not_share_a_directory() -> None:
    sandbox = Sandbox(CodeSpec(timeout=GENEROUS))
    first, second = CodeSession(sandbox), CodeSession(sandbox)
    try:
        await asyncio.gather(
            first.execute("open('mine.txt', 'w').write('1')", "a"),
            second.execute("import os\nprint(os.listdir('.'))", "b"),
        )
        assert [f.name for f in first.files] == ["mine.txt"] and second.files == []
    finally:
        first.close()
        second.close()


async def test_missing_bubblewrap_refuses_with_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    from tools import SandboxUnavailable

    with pytest.raises(SandboxUnavailable) as refused:
        Sandbox(CodeSpec()).check()
    assert str(refused.value) == (
        "the python tool runs code under bubblewrap, which is not installed: apt-get install bubblewrap "
        "(or set `code: {sandbox: none}` for trusted local use)"
    )


async def test_missing_package_is_reported() -> None:
    missing = await Sandbox(CodeSpec()).missing_packages(["numpy", "matplotlib", "no_such_module_xyz"])
    assert missing == ["no_such_module_xyz"]


def test_sandbox_none_is_allowed_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    Sandbox(CodeSpec(sandbox="none")).check()
    assert "code.sandbox is none: model-written code runs unsandboxed" in caplog.text


def test_an_interpreter_installed_under_tmp_runs_sandboxed_code(tmp_path: Path) -> None:
    # the sandbox's /tmp is private; a venv under /tmp (a checkout there, CI's scratch space)
    # used to be hidden by it: "bwrap: execvp /tmp/.../bin/python: No such file or directory"
    assert str(tmp_path).startswith("/tmp/")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    [site] = list(venv.glob("lib/python*/site-packages"))
    (site / "host.pth").write_text(
        "\n".join(p for p in sys.path if p.endswith("site-packages")) + f"\n{Path.cwd()}\n"
    )
    probe = (
        "import asyncio, sys, tempfile\n"
        "from pathlib import Path\n"
        "from tools import CodeSpec, Sandbox\n"
        "sandbox = Sandbox(CodeSpec())\n"
        "work = Path(tempfile.mkdtemp())\n"
        "sandbox.prepare(work)\n"
        "done = asyncio.run(sandbox.run('import sys; print(sys.prefix)', work))\n"
        "print(done.exit_code, done.stdout.strip(), done.stderr.strip())\n"
    )
    shown = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert shown.stdout.strip() == f"0 {venv}", shown.stderr
