"""Helpers for serving tests: free and closed ports, a tiny /v1/models server."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


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
