"""The data_analyst scenario on the real embedded server and its packaged model: the model
writes the sine-wave code itself and the sandbox runs it."""

from __future__ import annotations

import io
import shutil

import pytest
from PIL import Image

from scenarios import RunResult, load_scenario
from teams import ToolResult

pytestmark = [
    pytest.mark.slow,
    # AutoGen warns when a streamed reply is empty, which the small model sometimes sends; the
    # run goes on with an empty turn, and the files the code wrote are what this test asserts
    pytest.mark.filterwarnings("ignore:No text content or tool calls are available:UserWarning"),
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (apt-get install bubblewrap)"),
]


@pytest.fixture(autouse=True)
def _embedded_server(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("xllamacpp", reason="the embedded server needs `pip install -e .[local]`")
    monkeypatch.delenv("LLM_BASE_URL", raising=False)
    monkeypatch.delenv("LLM_MODEL", raising=False)


async def test_local_model_writes_sine_wave_code_that_runs_and_saves_a_png() -> None:
    async with load_scenario("data_analyst") as scenario:
        items = [item async for item in scenario.run_stream("Create a visualization of a sinewave")]
    result = items[-1]
    assert isinstance(result, RunResult)
    outcomes = [e for e in items if isinstance(e, ToolResult)]
    assert outcomes, f"the model never ran code: {result.final_text!r}"
    images = [f for f in result.files if f.media_type == "image/png"]
    assert images, [r.content for r in outcomes]
    with Image.open(io.BytesIO(images[-1].data)) as image:
        assert image.width > 0 and image.height > 0
