"""Threads, messages and runs (Assistants shape) over ASGITransport with a fake runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from gateway._store import Store

from ._fakes import DOWN_URL, FakeRunner
from .conftest import AppClient, eventually
from .test_chat import assert_error


async def wait_status(
    client: httpx.AsyncClient, thread_id: str, run_id: str, *statuses: str
) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        run: dict[str, Any] = (await client.get(f"/v1/threads/{thread_id}/runs/{run_id}")).json()
        return run if run["status"] in statuses else None

    result: dict[str, Any] = await eventually(check)
    return result


async def test_run_lifecycle_messages_newest_first_and_state_kept(
    app_client: AppClient, fake: FakeRunner
) -> None:
    async with app_client() as client:
        thread = (await client.post("/v1/threads", json={"metadata": {"project": "demo"}})).json()
        tid = thread["id"]
        assert thread["object"] == "thread" and thread["metadata"] == {"project": "demo"}
        msg = (
            await client.post(f"/v1/threads/{tid}/messages", json={"role": "user", "content": "Plan Nepal"})
        ).json()
        assert msg["object"] == "thread.message" and msg["content"][0]["text"]["value"] == "Plan Nepal"

        run = (await client.post(f"/v1/threads/{tid}/runs", json={"assistant_id": "echo"})).json()
        assert run["object"] == "thread.run" and run["status"] in ("queued", "in_progress", "completed")
        done = await wait_status(client, tid, run["id"], "completed", "failed")
        assert done["status"] == "completed", done
        assert done["usage"]["total_tokens"] == 53
        assert done["started_at"] is not None and done["completed_at"] is not None

        listed = (await client.get(f"/v1/threads/{tid}/messages")).json()
        data = listed["data"]
        assert [(m["role"], m["metadata"].get("agent")) for m in data] == [
            ("assistant", "critic"),
            ("assistant", "writer"),
            ("user", None),
        ]
        assert data[0]["content"][0]["text"]["value"] == "Answer to Plan Nepal (history 0)"  # no TERMINATE
        assert data[0]["assistant_id"] == "echo" and data[0]["run_id"] == run["id"]
        assert listed["first_id"] == data[0]["id"] and listed["has_more"] is False

        # the second run continues from the saved team state, with only the new message as task
        await client.post(f"/v1/threads/{tid}/messages", json={"role": "user", "content": "Make it 5 days"})
        run2 = (await client.post(f"/v1/threads/{tid}/runs", json={"assistant_id": "echo"})).json()
        await wait_status(client, tid, run2["id"], "completed")
        page = (await client.get(f"/v1/threads/{tid}/messages", params={"limit": 2})).json()
        rest = (await client.get(f"/v1/threads/{tid}/messages", params={"after": page["last_id"]})).json()
        runs = (await client.get(f"/v1/threads/{tid}/runs")).json()["data"]
    assert page["has_more"] is True and len(rest["data"]) == 4
    assert page["data"][0]["content"][0]["text"]["value"] == "Answer to Make it 5 days (history 1)"
    second = fake.requests[1][1]
    assert second.task == "Make it 5 days" and second.state == {"turns": 1} and list(second.history) == []
    assert [r["id"] for r in runs] == [run2["id"], run["id"]]


async def test_cancel_a_running_run(app_client: AppClient, fake: FakeRunner) -> None:
    async with app_client() as client:
        thread = (
            await client.post("/v1/threads", json={"messages": [{"role": "user", "content": "go"}]})
        ).json()
        tid = thread["id"]
        run = (await client.post(f"/v1/threads/{tid}/runs", json={"assistant_id": "hang"})).json()
        await wait_status(client, tid, run["id"], "in_progress")
        locked = await client.post(f"/v1/threads/{tid}/messages", json={"role": "user", "content": "more"})
        second_run = await client.post(f"/v1/threads/{tid}/runs", json={"assistant_id": "echo"})
        cancelling = (await client.post(f"/v1/threads/{tid}/runs/{run['id']}/cancel")).json()
        assert cancelling["status"] in ("cancelling", "cancelled")
        cancelled = await wait_status(client, tid, run["id"], "cancelled")
        again = await client.post(f"/v1/threads/{tid}/runs/{run['id']}/cancel")
        messages = (await client.get(f"/v1/threads/{tid}/messages", params={"order": "asc"})).json()["data"]
        # the thread is unlocked and can run again
        rerun = (await client.post(f"/v1/threads/{tid}/runs", json={"assistant_id": "echo"})).json()
        await wait_status(client, tid, rerun["id"], "completed")
    assert fake.cancelled.is_set()
    assert cancelled["cancelled_at"] is not None
    assert_error(locked, 400, "thread_locked")
    assert_error(second_run, 400, "thread_locked")
    assert_error(again, 400, "run_not_active")
    # what the team said before it was stopped is kept, attributed
    assert [(m["role"], m["metadata"].get("agent")) for m in messages] == [
        ("user", None),
        ("assistant", "writer"),
    ]
    assert fake.requests[-1][1].task == "go"


async def test_failed_and_expired_runs_say_why(app_client: AppClient) -> None:
    async with app_client(run_timeout_s=0.3) as client:
        thread = (
            await client.post("/v1/threads", json={"messages": [{"role": "user", "content": "go"}]})
        ).json()
        tid = thread["id"]
        down = (await client.post(f"/v1/threads/{tid}/runs", json={"assistant_id": "down"})).json()
        failed = await wait_status(client, tid, down["id"], "failed")
        slow = (await client.post(f"/v1/threads/{tid}/runs", json={"assistant_id": "hang"})).json()
        expired = await wait_status(client, tid, slow["id"], "expired")
    assert failed["last_error"]["code"] == "server_error"
    assert DOWN_URL in failed["last_error"]["message"]
    assert "longer than 0.3 s" in expired["last_error"]["message"]


async def test_thread_errors(app_client: AppClient) -> None:
    async with app_client(keys=("sk-a", "sk-b")) as client:
        a, b = {"authorization": "Bearer sk-a"}, {"authorization": "Bearer sk-b"}
        thread = (await client.post("/v1/threads", json={}, headers=a)).json()
        tid = thread["id"]
        other_key = await client.get(f"/v1/threads/{tid}", headers=b)
        no_thread = await client.get("/v1/threads/thread_nope", headers=a)
        no_message = await client.post(f"/v1/threads/{tid}/runs", json={"assistant_id": "echo"}, headers=a)
        bad_assistant = await client.post(f"/v1/threads/{tid}/runs", json={"assistant_id": "nope"}, headers=a)
        with_tools = await client.post(
            f"/v1/threads/{tid}/runs",
            json={"assistant_id": "echo", "tools": [{"type": "code_interpreter"}]},
            headers=a,
        )
        no_run = await client.get(f"/v1/threads/{tid}/runs/run_nope", headers=a)
        bad_role = await client.post(
            f"/v1/threads/{tid}/messages", json={"role": "system", "content": "x"}, headers=a
        )
        deleted = (await client.delete(f"/v1/threads/{tid}", headers=a)).json()
        gone = await client.get(f"/v1/threads/{tid}", headers=a)
    assert_error(other_key, 404, "thread_not_found")
    assert_error(no_thread, 404, "thread_not_found")
    assert_error(no_message, 400, "no_user_message")
    assert_error(bad_assistant, 404, "model_not_found")
    assert_error(with_tools, 400, "tools_not_supported")
    assert_error(no_run, 404, "run_not_found")
    assert_error(bad_role, 422)
    assert deleted == {"id": tid, "object": "thread.deleted", "deleted": True}
    assert_error(gone, 404)


async def test_create_thread_and_run_in_one_call(app_client: AppClient) -> None:
    async with app_client() as client:
        run = (
            await client.post(
                "/v1/threads/runs",
                json={"assistant_id": "echo", "thread": {"messages": [{"role": "user", "content": "hey"}]}},
            )
        ).json()
        done = await wait_status(client, run["thread_id"], run["id"], "completed")
    assert done["assistant_id"] == "echo"


async def test_runs_left_active_by_a_dead_process_fail_on_open(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    store = Store(path)
    assert await store.open() == 0
    thread = await store.create_thread("dev", {})
    await store.add_message(thread.id, "user", "hello")
    run = await store.create_run(thread.id, "echo", key_id="dev", user_id="u", expires_in=60, metadata={})
    await store.mark_run_started(run.id)
    await store.close()

    reopened = Store(path)
    assert await reopened.open() == 1
    row = await reopened.get_run(thread.id, run.id)
    messages = await reopened.list_messages(thread.id)
    await reopened.close()
    assert row is not None and row.status == "failed" and row.failed_at is not None
    assert row.last_error_message is not None and "gateway stopped while this run was in_progress" in (
        row.last_error_message
    )
    assert [m.content for m in messages] == ["hello"]
