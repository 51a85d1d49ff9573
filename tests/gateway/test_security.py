"""Keys, dev mode, the per-key concurrency limit."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway._auth import load_keys

from ._fakes import FakeRunner
from .conftest import AppClient, eventually
from .test_chat import CHAT, assert_error

MESSAGE = {"model": "echo", "messages": [{"role": "user", "content": "x"}]}


async def test_keys_are_required_when_configured(app_client: AppClient) -> None:
    async with app_client(keys=("sk-good", "sk-other")) as client:
        missing = await client.post(CHAT, json=MESSAGE)
        wrong = await client.post(CHAT, json=MESSAGE, headers={"authorization": "Bearer sk-bad"})
        not_bearer = await client.get("/v1/models", headers={"authorization": "Basic sk-good"})
        good = await client.post(CHAT, json=MESSAGE, headers={"authorization": "Bearer sk-good"})
        page = await client.get("/")
    assert "missing API key" in assert_error(missing, 401, "invalid_api_key")["message"]
    assert assert_error(wrong, 401, "invalid_api_key")["type"] == "authentication_error"
    assert_error(not_bearer, 401, "invalid_api_key")
    assert good.status_code == 200
    assert page.status_code == 200  # the page itself is public; its API calls carry the key


async def test_dev_mode_serves_loopback_only(app_client: AppClient) -> None:
    async with app_client(client_host="10.1.2.3") as remote:
        refused = await remote.get("/v1/models")
    async with app_client(client_host="::1") as local:
        allowed = await local.get("/v1/models")
    assert "only accepts clients on loopback" in assert_error(refused, 401)["message"]
    assert allowed.status_code == 200


def test_keys_come_from_a_file_and_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "keys"
    path.write_text("# team keys\nsk-one\n\nsk-two  # ci\n")
    monkeypatch.setenv("GATEWAY_API_KEYS", "sk-three, sk-four")
    assert load_keys(path) == ["sk-one", "sk-two", "sk-three", "sk-four"]


async def test_per_key_concurrency_limit_is_429(app_client: AppClient, fake: FakeRunner) -> None:
    async with app_client(keys=("sk-a", "sk-b"), max_concurrent_per_key=1) as client:
        a = {"authorization": "Bearer sk-a"}
        first = asyncio.create_task(client.post(CHAT, json={**MESSAGE, "model": "gated"}, headers=a))
        await asyncio.to_thread(fake.started.wait, 10)
        second = await client.post(CHAT, json=MESSAGE, headers=a)
        other_key = await client.post(CHAT, json=MESSAGE, headers={"authorization": "Bearer sk-b"})
        fake.release.set()
        assert (await first).status_code == 200
        after = await client.post(CHAT, json=MESSAGE, headers=a)
    error = assert_error(second, 429, "concurrency_limit_exceeded")
    assert error["type"] == "rate_limit_error" and "limit 1" in error["message"]
    assert other_key.status_code == 200
    assert after.status_code == 200


async def test_thread_runs_count_against_the_limit(app_client: AppClient, fake: FakeRunner) -> None:
    async with app_client(max_concurrent_per_key=1) as client:
        t1 = (await client.post("/v1/threads", json={"messages": [{"role": "user", "content": "a"}]})).json()
        t2 = (await client.post("/v1/threads", json={"messages": [{"role": "user", "content": "b"}]})).json()
        run = (await client.post(f"/v1/threads/{t1['id']}/runs", json={"assistant_id": "gated"})).json()
        refused = await client.post(f"/v1/threads/{t2['id']}/runs", json={"assistant_id": "echo"})
        runs_of_t2 = (await client.get(f"/v1/threads/{t2['id']}/runs")).json()["data"]
        fake.release.set()

        async def done() -> bool:
            got = (await client.get(f"/v1/threads/{t1['id']}/runs/{run['id']}")).json()
            return bool(got["status"] == "completed")

        await eventually(done)
    assert_error(refused, 429, "concurrency_limit_exceeded")
    assert runs_of_t2 == []  # refused before a run existed
