"""A client that goes away cancels its run (real uvicorn: ASGITransport cannot disconnect)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from gateway import GatewayConfig, create_app

from ._fakes import FakeRunner
from .conftest import serve

HANG = {"model": "hang", "messages": [{"role": "user", "content": "x"}]}


async def test_closing_a_stream_cancels_the_run(tmp_path: Path) -> None:
    fake = FakeRunner()
    app = create_app(GatewayConfig(db_path=tmp_path / "db.sqlite3"), fake)
    with serve(app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            async with client.stream(
                "POST", "/v1/chat/completions", json={**HANG, "stream": True}
            ) as response:
                assert response.status_code == 200
                async for line in response.aiter_lines():
                    if '"agent":"writer"' in line:
                        break  # the first inner turn arrived; now hang up
        assert await asyncio.to_thread(fake.cancelled.wait, 10), "the run was not cancelled"


async def test_abandoning_a_plain_request_cancels_the_run(tmp_path: Path) -> None:
    fake = FakeRunner()
    app = create_app(GatewayConfig(db_path=tmp_path / "db.sqlite3"), fake)
    with serve(app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            request = asyncio.create_task(client.post("/v1/chat/completions", json=HANG))
            assert await asyncio.to_thread(fake.started.wait, 10)
            request.cancel()
            try:
                await request
            except asyncio.CancelledError:
                pass
        assert await asyncio.to_thread(fake.cancelled.wait, 10), "the run was not cancelled"
