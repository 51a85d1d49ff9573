"""`stream: true` thread runs: Assistants events read from the database, parsed by the SDK."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from gateway import GatewayConfig, create_app

from ._fakes import FakeRunner
from .conftest import serve

pytestmark = pytest.mark.filterwarnings("ignore:The Assistants API is deprecated:DeprecationWarning")


def test_a_streamed_run_sends_run_states_and_each_agents_message(tmp_path: Path, fake: FakeRunner) -> None:
    app = create_app(GatewayConfig(db_path=tmp_path / "db.sqlite3"), fake)
    with serve(app) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
        events = list(client.beta.threads.runs.create(thread.id, assistant_id="echo", stream=True))
        kept = client.beta.threads.messages.list(thread.id, order="asc").data
        second = list(
            client.beta.threads.create_and_run(
                assistant_id="down", thread={"messages": [{"role": "user", "content": "x"}]}, stream=True
            )
        )
        client.close()
    assert [e.event for e in events] == [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
        *["thread.message.created", "thread.message.delta", "thread.message.completed"] * 2,
        "thread.run.completed",
    ]
    texts = [e.data.content[0].text.value for e in events if e.event == "thread.message.completed"]  # type: ignore[union-attr]
    deltas = [e.data.delta.content[0].text.value for e in events if e.event == "thread.message.delta"]  # type: ignore[union-attr,index]
    # the final answer as kept: without the team's TERMINATE
    assert texts == deltas == ["Draft: go", "Answer to go (history 0)"]
    assert [m.content[0].text.value for m in kept[1:]] == texts  # type: ignore[union-attr]
    assert events[-1].data.usage is not None and events[-1].data.usage.total_tokens == 53  # type: ignore[union-attr]
    assert [e.event for e in second][-1] == "thread.run.failed"
    assert "cannot reach the model server" in second[-1].data.last_error.message  # type: ignore[union-attr]
