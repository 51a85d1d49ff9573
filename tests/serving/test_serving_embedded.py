"""The child-process lifecycle with stand-in servers (the real one is in test_serving_slow.py)."""

from __future__ import annotations

import signal
import socket
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from serving import EndpointError, open_endpoint
from serving._auto import ServerHandle, StartedServer
from serving._embedded import EmbeddedServer, ServerConfig, check_port_free, free_port
from serving._errors import ServingError

FAKE_SERVER = textwrap.dedent(
    """
    import json, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"data": [{"id": "fake-model"}]}).encode()
            self.send_response(200 if self.path in ("/health", "/v1/models") else 404)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
    """
)


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def _config(tmp_path: Path, port: int, model: Path | None = None) -> ServerConfig:
    if model is None:
        model = tmp_path / "m.gguf"
        model.write_bytes(b"GGUF")
    return ServerConfig(model_path=model, alias="fake-model", port=port, log_path=tmp_path / "server.log")


def test_port_in_use(listening: int) -> None:
    with pytest.raises(ServingError) as info:
        check_port_free("127.0.0.1", listening)
    assert str(info.value) == (
        f"port {listening} on 127.0.0.1 is already in use; stop what listens there "
        "(`python -m serving down` if it is the bundled server) or pick another with --port"
    )


def test_start_refuses_port_in_use_without_spawning(tmp_path: Path, listening: int) -> None:
    server = EmbeddedServer(_config(tmp_path, listening))
    with pytest.raises(ServingError, match="already in use"):
        server.start()
    assert server.pid is None


def test_model_file_missing(tmp_path: Path) -> None:
    server = EmbeddedServer(_config(tmp_path, free_port(), model=tmp_path / "gone.gguf"))
    with pytest.raises(ServingError, match=r"^model file .*gone\.gguf does not exist$"):
        server.start()


def test_exit_while_starting_shows_the_log_line(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "import sys; print('loading'); print('error: bad magic'); sys.exit(3)"]
    server = EmbeddedServer(_config(tmp_path, free_port()), command=command)
    with pytest.raises(ServingError) as info:
        server.start(timeout=30)
    assert str(info.value) == (
        "the embedded model server (llama.cpp via xllamacpp) for fake-model exited with code 3 while "
        "starting: error: bad magic"
    )


def _fake(tmp_path: Path) -> EmbeddedServer:
    script = tmp_path / "fake_server.py"
    script.write_text(FAKE_SERVER)
    port = free_port()
    return EmbeddedServer(_config(tmp_path, port), command=[sys.executable, str(script), str(port)])


def test_start_stop_and_crash_message(tmp_path: Path) -> None:
    server = _fake(tmp_path)
    server.start(timeout=30)
    try:
        assert server.crash_message() is None
        assert server._proc is not None
        server._proc.send_signal(signal.SIGKILL)
        assert server.wait(10) == -signal.SIGKILL
        message = server.crash_message()
        assert message is not None
        assert message.startswith(
            f"the embedded model server (llama.cpp via xllamacpp) (pid {server.pid}, model fake-model) "
            f"at {server.base_url} exited with code -9 during the run"
        )
    finally:
        server.stop()


async def test_crash_mid_run_names_the_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = _fake(tmp_path)

    @asynccontextmanager
    async def fake_auto() -> AsyncIterator[ServerHandle]:
        server.start(timeout=30)
        try:
            yield StartedServer(server)
        finally:
            server.stop()

    monkeypatch.delenv("LLM_BASE_URL", raising=False)
    monkeypatch.setattr("serving._auto.auto_server", fake_auto)
    with pytest.raises(EndpointError) as info:
        async with open_endpoint("auto", "auto") as ep:
            assert (ep.model, ep.started_server) == ("fake-model", True)
            assert server._proc is not None
            server._proc.kill()
            server.wait(10)
            import httpx

            async with httpx.AsyncClient() as client:
                await client.get(ep.base_url + "/models")
    assert "embedded model server (llama.cpp via xllamacpp)" in str(info.value)
    assert "exited with code -9 during the run" in str(info.value)
    assert server.exit_code() is not None


@pytest.mark.parametrize(
    ("embedding", "given", "expected"),
    [
        (False, {}, {"GOMP_SPINCOUNT": "1000"}),
        (True, {}, {"OMP_WAIT_POLICY": "PASSIVE"}),
        (False, {"OMP_WAIT_POLICY": "ACTIVE"}, {"OMP_WAIT_POLICY": "ACTIVE"}),
        (True, {"GOMP_SPINCOUNT": "50"}, {"GOMP_SPINCOUNT": "50"}),
    ],
    ids=["chat spins briefly", "embedding sleeps", "user's policy kept", "user's spin count kept"],
)
def test_openmp_threads_wait_without_stalling_a_busy_machine(
    embedding: bool, given: dict[str, str], expected: dict[str, str]
) -> None:
    from serving._child import openmp_wait_env

    environ = {"PATH": "/usr/bin", **given}
    openmp_wait_env(environ, embedding=embedding)
    assert environ == {"PATH": "/usr/bin", **expected}
