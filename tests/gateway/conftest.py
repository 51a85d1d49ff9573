"""Fixtures: the gateway app over httpx.ASGITransport, or a real uvicorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from gateway import GatewayConfig, ScenarioRunner, create_app

from ._fakes import FakeRunner

AppClient = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def fake() -> FakeRunner:
    return FakeRunner()


@pytest.fixture
def config(tmp_path: Path) -> GatewayConfig:
    return GatewayConfig(db_path=tmp_path / "gateway.sqlite3")


@pytest.fixture
def app_client(fake: FakeRunner, config: GatewayConfig) -> AppClient:
    """`async with app_client(**config_changes) as client` (ASGITransport, lifespan run)."""

    @asynccontextmanager
    async def make(
        runner: ScenarioRunner | None = None, client_host: str = "127.0.0.1", **changes: Any
    ) -> AsyncIterator[httpx.AsyncClient]:
        cfg = GatewayConfig(**{**config.__dict__, **changes})
        app = create_app(cfg, runner or fake)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=(client_host, 50000))
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
                yield client

    return make


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Serve `app` with a real uvicorn on 127.0.0.1 in a thread; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 90  # generous: a loaded machine
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("gateway did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


async def eventually(check: Callable[[], Any], within: float = 10.0) -> Any:
    """Await `check()` (sync or async) until it returns something truthy, within `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.02)
