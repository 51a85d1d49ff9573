"""time_assistant through `responses.create` on the real embedded server and its packaged model."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import openai
import pytest

from gateway import GatewayConfig, create_app

from .conftest import serve

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _embedded_server(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("xllamacpp", reason="the embedded server needs `pip install -e .[local]`")
    monkeypatch.delenv("LLM_BASE_URL", raising=False)
    monkeypatch.delenv("LLM_MODEL", raising=False)


def test_time_assistant_answers_the_seoul_time_through_the_responses_api(tmp_path: Path) -> None:
    with serve(create_app(GatewayConfig(db_path=tmp_path / "db.sqlite3"))) as url:
        with openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=600) as client:
            response = client.responses.create(
                model="time_assistant", input="What time is it now in South Korea?"
            )
    assert response.status == "completed", response.error
    calls = [i for i in response.output if i.type == "function_call"]
    outputs = [i for i in response.output if i.type == "function_call_output"]
    assert calls[0].name == "get_current_time"
    assert json.loads(calls[0].arguments) == {"timezone": "Asia/Seoul"}
    assert isinstance(outputs[0].output, str)
    moment = dt.datetime.fromisoformat(json.loads(outputs[0].output)["datetime"])
    hour12 = moment.hour % 12 or 12
    stated = {f"{moment.hour:02d}:{moment.minute:02d}", f"{hour12}:{moment.minute:02d}"}
    answer = response.output_text
    assert response.output[-1].type == "message"
    assert any(re.search(rf"(?<!\d){s}(?!\d)", answer) for s in stated), answer
    assert response.usage is not None and response.usage.total_tokens > 0
