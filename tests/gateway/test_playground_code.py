"""The playground with the code interpreter: code highlighted, the image the code made inline."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway import GatewayConfig, create_app
from serving.testing import Reply, ScriptedModelServer

from .conftest import serve
from .test_files import SINE

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
if not shutil.which(CHROMIUM):
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")

ANSWER = (
    "Saved sinewave.png. The code:\n"
    "```python\nimport numpy as np\nx = np.linspace(0, 1, 5)  # grid\n```\nTERMINATE"
)


@pytest.fixture
def page() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield browser.new_page(viewport={"width": 1100, "height": 1600})
        finally:
            browser.close()


def test_playground_highlights_the_code_and_shows_the_image(page: Any, tmp_path: Path) -> None:
    script = [
        Reply.tool_call("python", {"code": SINE.replace('open("readings.csv")', 'open("/dev/null")')}),
        Reply.text(ANSWER),
    ]
    with ScriptedModelServer(script) as model:
        config = GatewayConfig(db_path=tmp_path / "db.sqlite3", base_url=model.base_url, model=model.model)
        with serve(create_app(config)) as url:
            page.goto(f"{url}/")
            page.wait_for_selector("#scenario option[value=data_analyst]", state="attached")
            page.select_option("#scenario", "data_analyst")
            page.fill("#task", "Create a visualization of a sinewave")
            page.click("#run")
            page.wait_for_function("document.getElementById('status').textContent === 'done'")
            page.wait_for_function(
                "document.querySelector('.files img') && document.querySelector('.files img').complete"
            )
            width = page.evaluate("document.querySelector('.files img').naturalWidth")
            captions = page.locator(".files figcaption").all_inner_texts()
            caption = page.inner_text(".files figure:has(img) figcaption")
            keywords = page.locator("details.tool pre.code .tok-keyword").all_inner_texts()
            strings = page.locator("details.tool pre.code .tok-string").all_inner_texts()
            tool_open = page.get_attribute("details.tool", "open")
            result = page.inner_text("details.tool pre.result")
            final_code = page.inner_text("#final-text pre.code")
            final_comment = page.inner_text("#final-text pre.code .tok-comment")
            shot = tmp_path / "playground-code.png"
            page.screenshot(path=str(shot), full_page=True)
            if os.environ.get("PLAYGROUND_SCREENSHOT"):
                shutil.copy(shot, os.environ["PLAYGROUND_SCREENSHOT"])
    assert width > 0
    assert caption.startswith("sinewave.png · image/png · ")
    assert [c.split(" · ")[0] for c in captions] == ["sine.csv", "sinewave.png"]  # the CSV as a link
    assert keywords[:4] == ["import", "as", "import", "as"]
    assert '"Sine Wave"' in strings
    assert tool_open is not None
    assert "saved sinewave.png" in result
    assert final_code == "import numpy as np\nx = np.linspace(0, 1, 5)  # grid\n"
    assert final_comment == "# grid"
