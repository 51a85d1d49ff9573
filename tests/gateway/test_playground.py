"""The playground page in headless Chromium (Debian's chromium, driven by Playwright)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway import GatewayConfig, create_app
from serving.testing import ScriptedModelServer

from ._travel import AGENTS, FINAL, GatedScript, reply_for
from .conftest import serve

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
if not shutil.which(CHROMIUM):
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


@pytest.fixture
def browser_page() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1100, "height": 1400})
        try:
            yield page
        finally:
            browser.close()


def test_playground_streams_each_agent_and_highlights_the_answer(browser_page: Any, tmp_path: Path) -> None:
    page = browser_page
    with ScriptedModelServer(reply_for) as model:
        config = GatewayConfig(db_path=tmp_path / "db.sqlite3", base_url=model.base_url, model=model.model)
        with serve(create_app(config)) as url:
            page.goto(f"{url}/")
            page.wait_for_selector("#scenario option[value=travel_planning]", state="attached")
            page.select_option("#scenario", "travel_planning")
            assert page.input_value("#task") == "Plan a 3 day trip to Nepal."  # the scenario's default task
            page.fill("#task", "Plan a 3 day trip to Nepal, please.")
            page.click("#run")
            page.wait_for_selector("#final:not([hidden])")
            page.wait_for_function("document.getElementById('status').textContent === 'done'")
            speakers = page.locator(".turn h3").all_inner_texts()
            final = page.inner_text("#final-text")
            final_agent = page.inner_text("#final-agent")
            usage = page.inner_text("#usage")
            elapsed = page.inner_text("#elapsed")
            shot = tmp_path / "playground.png"
            page.screenshot(path=str(shot), full_page=True)
            if os.environ.get("PLAYGROUND_SCREENSHOT"):
                shutil.copy(shot, os.environ["PLAYGROUND_SCREENSHOT"])
    assert speakers == AGENTS
    assert final == FINAL
    assert final_agent == "· travel_summary_agent"
    assert usage == "480 tokens (400 in / 80 out)"
    assert elapsed.endswith(" s")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_playground_tool_calls_are_folded(browser_page: Any, tmp_path: Path) -> None:
    from serving.testing import Reply

    page = browser_page
    script = [
        Reply.tool_call("get_current_time", {"timezone": "Asia/Seoul"}),
        Reply.text("It is noon. TERMINATE"),
    ]
    with ScriptedModelServer(script) as model:
        config = GatewayConfig(db_path=tmp_path / "db.sqlite3", base_url=model.base_url, model=model.model)
        with serve(create_app(config)) as url:
            page.goto(f"{url}/")
            page.wait_for_selector("#scenario option[value=time_assistant]", state="attached")
            page.select_option("#scenario", "time_assistant")
            page.click("#run")
            page.wait_for_function("document.getElementById('status').textContent === 'done'")
            tool = page.locator("details.tool").first
            summary = tool.locator("summary").inner_text()
            folded = tool.get_attribute("open") is None
            tool.locator("summary").click()
            result = tool.locator("pre.result").inner_text()
            final = page.inner_text("#final-text")
    model.assert_complete()  # every scripted reply was used, no more
    assert summary.startswith("🔧 time_assistant → get_current_time") and summary.endswith("✓")
    assert folded
    assert "Asia/Seoul" in result
    assert final == "It is noon."


def test_stop_button_cancels_the_run(browser_page: Any, tmp_path: Path) -> None:
    page = browser_page
    script = GatedScript("local_agent")
    with ScriptedModelServer(script) as model:
        config = GatewayConfig(db_path=tmp_path / "db.sqlite3", base_url=model.base_url, model=model.model)
        app = create_app(config)
        with serve(app) as url:
            page.goto(f"{url}/")
            page.wait_for_selector("#scenario option[value=travel_planning]", state="attached")
            page.select_option("#scenario", "travel_planning")
            page.click("#run")
            page.wait_for_selector(".turn[data-agent=planner_agent]")
            assert script.reached.wait(20)
            page.click("#stop")
            page.wait_for_function("document.getElementById('status').textContent === 'stopped'")
            run_enabled = page.is_enabled("#run")
            # the gateway noticed the closed connection and cancelled the team
            page.wait_for_function(
                "fetch('/v1/usage').then(r => r.json()).then(b => b.data.length === 1)", polling=100
            )
            script.release.set()
    assert run_enabled
    assert page.locator("#final").is_hidden()
