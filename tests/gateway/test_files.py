"""Files and the code interpreter through the official openai SDK, against a real uvicorn with
the real `scenarios` package (data_analyst, real bubblewrap sandbox) and a scripted model."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.beta.threads import ImageFileContentBlock, TextContentBlock
from openai.types.chat import ChatCompletionMessageParam
from PIL import Image

from gateway import GatewayConfig, create_app
from serving.testing import Reply, ScriptedModelServer

from .conftest import AppClient, serve

pytestmark = [
    pytest.mark.filterwarnings("ignore:The Assistants API is deprecated:DeprecationWarning"),
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (apt-get install bubblewrap)"),
]

KEYS = ("sk-alice", "sk-bob")
SINE = """\
import numpy as np
import matplotlib.pyplot as plt

rows = open("readings.csv").read().split()
print(f"{len(rows)} rows in readings.csv")
x = np.linspace(0, 4 * np.pi, 1000)
plt.plot(x, np.sin(x))
plt.title("Sine Wave")
plt.savefig("sinewave.png")
open("sine.csv", "w").write("x,y\\n0,0\\n")
print("saved sinewave.png")
"""
# the same plot with no attached file to read: what a chat completion (no attachments) runs
SINE_ALONE = "\n".join(line for line in SINE.splitlines() if "rows" not in line) + "\n"
ANSWER = "Here is the visualization of a sine wave, saved as sinewave.png."
CODE_ANSWER = "Certainly, here is the code I used."


def _script(body: dict[str, Any]) -> Reply:
    messages = body["messages"]
    last_user = next(m for m in reversed(messages) if m["role"] == "user")
    if "Show me the code" in str(last_user["content"]):
        return Reply.text(CODE_ANSWER + " TERMINATE")
    if messages[-1]["role"] == "tool":
        return Reply.text(ANSWER + " TERMINATE")
    alone = "from scratch" in str(last_user["content"])
    return Reply.tool_call("python", {"code": SINE_ALONE if alone else SINE})


@pytest.fixture
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer(_script) as server:
        yield server


@pytest.fixture
def url(model: ScriptedModelServer, tmp_path: Path) -> Iterator[str]:
    config = GatewayConfig(
        db_path=tmp_path / "db.sqlite3", base_url=model.base_url, model=model.model, keys=KEYS
    )
    with serve(create_app(config)) as base:
        yield base


def _client(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=120)


def test_the_seed_sine_wave_conversation_through_the_sdk(
    url: str, model: ScriptedModelServer, tmp_path: Path
) -> None:
    client = _client(url, "sk-alice")
    uploaded = client.files.create(file=("readings.csv", b"1\n2\n3\n"), purpose="assistants")
    assert (uploaded.filename, uploaded.bytes, uploaded.purpose) == ("readings.csv", 6, "assistants")

    thread = client.beta.threads.create()
    client.beta.threads.messages.create(
        thread_id=thread.id,
        role="user",
        content="Create a visualization of a sinewave",
        attachments=[{"file_id": uploaded.id, "tools": [{"type": "code_interpreter"}]}],
    )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id="data_analyst", poll_interval_ms=100
    )
    assert run.status == "completed", run.last_error

    messages = client.beta.threads.messages.list(thread_id=thread.id)
    # the seed's own lines
    data = json.loads(messages.model_dump_json(indent=2))
    image_file_id = data["data"][0]["content"][0]["image_file"]["file_id"]
    content = client.files.content(image_file_id)
    content.write_to_file(tmp_path / "sinewave.png")
    with Image.open(tmp_path / "sinewave.png") as image:
        assert image.format == "PNG" and image.width > 0 and image.height > 0

    newest, user = messages.data[0], messages.data[-1]
    assert isinstance(newest.content[0], ImageFileContentBlock)
    assert newest.content[0].image_file.file_id == image_file_id
    assert isinstance(newest.content[1], TextContentBlock) and newest.content[1].text.value == ANSWER
    [csv] = newest.attachments or []
    assert client.files.content(csv.file_id or "").read() == b"x,y\n0,0\n"
    assert client.files.retrieve(image_file_id).purpose == "assistants_output"
    assert [a.file_id for a in user.attachments or []] == [uploaded.id]
    # the code read the attached file in its working directory
    tool_results = [m["content"] for m in model.requests[1]["messages"] if m["role"] == "tool"]
    assert tool_results[0].startswith("stdout:\n3 rows in readings.csv\nsaved sinewave.png")

    # "Show me the code you used": the team's saved state still holds the code it ran
    client.beta.threads.messages.create(
        thread_id=thread.id, role="user", content="Show me the code you used to generate the sinewave"
    )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id="data_analyst", poll_interval_ms=100
    )
    assert run.status == "completed", run.last_error
    earlier_code = [
        json.loads(call["function"]["arguments"])["code"]
        for m in model.requests[-1]["messages"]
        for call in m.get("tool_calls") or []
    ]
    assert earlier_code == [SINE]
    latest = client.beta.threads.messages.list(thread_id=thread.id).data[0]
    assert isinstance(latest.content[0], TextContentBlock) and latest.content[0].text.value == CODE_ANSWER

    listed = {f.id for f in client.files.list()}
    assert {uploaded.id, image_file_id, csv.file_id} <= listed
    assert {f.id for f in client.files.list(purpose="assistants")} == {uploaded.id}
    client.close()


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_a_chat_completion_hands_back_the_files_its_code_wrote(
    url: str, stream: bool, tmp_path: Path
) -> None:
    client = _client(url, "sk-alice")
    ask: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "Create a visualization of a sinewave from scratch"}
    ]
    if stream:
        chunks = list(client.chat.completions.create(model="data_analyst", messages=ask, stream=True))
        events = [getattr(c, "event", None) for c in chunks]
        [listed] = [e["files"] for e in events if e and e.get("type") == "files"]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        completion = client.chat.completions.create(model="data_analyst", messages=ask)
        listed = getattr(completion.choices[0].message, "files", None)
        text = completion.choices[0].message.content or ""
    assert text.startswith(ANSWER)
    assert [(f["filename"], f["agent"]) for f in listed] == [
        ("sine.csv", "data_analyst"),
        ("sinewave.png", "data_analyst"),
    ]
    png = next(f for f in listed if f["filename"] == "sinewave.png")
    client.files.content(png["id"]).write_to_file(tmp_path / "got.png")
    with Image.open(tmp_path / "got.png") as image:
        assert image.format == "PNG" and image.width > 0
    assert png["bytes"] == (tmp_path / "got.png").stat().st_size
    assert client.files.retrieve(png["id"]).purpose == "assistants_output"
    with pytest.raises(openai.NotFoundError):  # stored as the caller's, not anyone's
        _client(url, "sk-bob").files.retrieve(png["id"])
    client.close()


def test_files_belong_to_their_key(url: str) -> None:
    alice, bob = _client(url, "sk-alice"), _client(url, "sk-bob")
    mine = alice.files.create(file=("notes.txt", b"private"), purpose="assistants")
    for call in (
        lambda: bob.files.retrieve(mine.id),
        lambda: bob.files.content(mine.id),
        lambda: bob.files.delete(mine.id),
    ):
        with pytest.raises(openai.NotFoundError) as missing:
            call()
        assert missing.value.code == "file_not_found"
        assert f"No such File object: {mine.id}" in missing.value.message
    assert [f.id for f in bob.files.list()] == []
    thread = bob.beta.threads.create()
    with pytest.raises(openai.BadRequestError, match=f"No such File object: {mine.id}"):
        bob.beta.threads.messages.create(
            thread_id=thread.id, role="user", content="hi", attachments=[{"file_id": mine.id}]
        )
    assert alice.files.content(mine.id).read() == b"private"
    assert alice.files.delete(mine.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        alice.files.retrieve(mine.id)
    alice.close()
    bob.close()


async def test_storage_quota_per_key_and_upload_checks(app_client: AppClient, tmp_path: Path) -> None:
    async with app_client(file_quota_bytes=1000, max_file_bytes=5000) as client:
        first = await client.post(
            "/v1/files", files={"file": ("a.bin", b"x" * 600)}, data={"purpose": "assistants"}
        )
        assert first.status_code == 200, first.text
        assert first.json()["object"] == "file"
        second = await client.post(
            "/v1/files", files={"file": ("b.bin", b"x" * 600)}, data={"purpose": "assistants"}
        )
        assert second.status_code == 400
        assert second.json()["error"]["code"] == "storage_quota_exceeded"
        assert second.json()["error"]["message"] == (
            "file storage quota exceeded for this key: 600 bytes stored, 600 more would pass the limit "
            "of 1000; delete files first"
        )
        too_big = await client.post(
            "/v1/files", files={"file": ("c.bin", b"x" * 6000)}, data={"purpose": "assistants"}
        )
        assert too_big.status_code == 413
        bad = await client.post("/v1/files", files={"file": ("d.bin", b"x")}, data={"purpose": "fine-tune"})
        assert (
            bad.status_code == 400
            and "purpose 'fine-tune' is not supported" in bad.json()["error"]["message"]
        )
        deleted = await client.delete(f"/v1/files/{first.json()['id']}")
        assert deleted.json() == {"id": first.json()["id"], "object": "file", "deleted": True}
        again = await client.post(
            "/v1/files", files={"file": ("b.bin", b"x" * 600)}, data={"purpose": "assistants"}
        )
        assert again.status_code == 200
    stored = list((tmp_path / "gateway.sqlite3.files").iterdir())
    assert [p.name for p in stored] == [again.json()["id"]]


def test_files_cross_worker_processes(model: ScriptedModelServer, tmp_path: Path) -> None:
    config = GatewayConfig(
        db_path=tmp_path / "db.sqlite3", base_url=model.base_url, model=model.model, keys=KEYS, workers=2
    )
    with serve(create_app(config)) as base:
        client = _client(base, "sk-alice")
        uploaded = client.files.create(file=("readings.csv", b"1\n2\n"), purpose="assistants")
        run = client.beta.threads.create_and_run_poll(
            assistant_id="data_analyst",
            thread={
                "messages": [
                    {
                        "role": "user",
                        "content": "Create a visualization of a sinewave",
                        "attachments": [{"file_id": uploaded.id, "tools": [{"type": "code_interpreter"}]}],
                    }
                ]
            },
            poll_interval_ms=100,
        )
        assert run.status == "completed", run.last_error
        newest = client.beta.threads.messages.list(thread_id=run.thread_id).data[0]
        assert isinstance(newest.content[0], ImageFileContentBlock)
        png = client.files.content(newest.content[0].image_file.file_id).read()
        assert png.startswith(b"\x89PNG\r\n")
        client.close()
    tool_results = [m["content"] for m in model.requests[1]["messages"] if m["role"] == "tool"]
    assert tool_results[0].startswith("stdout:\n2 rows in readings.csv")
