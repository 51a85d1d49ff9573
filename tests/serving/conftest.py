"""Helpers for serving tests: free and closed ports, a tiny /v1/models server."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import uvicorn

from serving._front import Front, Router


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound and released)."""
    return free_port()


@pytest.fixture
def models_server() -> Iterator[Callable[[list[str], int], str]]:
    """Start a server whose GET /v1/models lists the given ids (or answers with a status)."""
    servers: list[ThreadingHTTPServer] = []

    def start(ids: list[str], status: int = 200) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server naming)
                body = json.dumps({"object": "list", "data": [{"id": i, "object": "model"} for i in ids]})
                self.send_response(status if self.path == "/v1/models" else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def front_url() -> Iterator[Callable[[Router], str]]:
    """Serve a Front on 127.0.0.1 with a real uvicorn (for clients that need a URL); its base URL."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(router: Router) -> str:
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(Front(router).app(), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the front did not start")
            time.sleep(0.01)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}/v1"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)
