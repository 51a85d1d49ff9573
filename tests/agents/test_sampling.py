"""Sampling defaults from the model's profile reach the server in its own field names;
a scenario's `options` override them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from scenarios import load_scenario
from serving import model_info_for
from serving.testing import Reply, ScriptedModelServer

SCENARIO = """\
name: sampled
models:
  default:
    base_url: ${TEST_BASE_URL}
    model: qwen2.5-coder-1.5b-instruct
    options: {temperature: 0.3OPTIONS}
agents:
  - {name: solo}
"""


@pytest.fixture
def scenario_file(tmp_path: Path) -> Callable[..., Path]:
    def write(options: str = "") -> Path:
        path = tmp_path / "sampled.yaml"
        path.write_text(SCENARIO.replace("OPTIONS", options), encoding="utf-8")
        return path

    return write


async def _request(path: Path, owned_by: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    async with ScriptedModelServer(
        [Reply.text("hello")], model="qwen2.5-coder-1.5b-instruct", owned_by=owned_by
    ) as server:
        monkeypatch.setenv("TEST_BASE_URL", server.base_url)
        async with load_scenario(path) as scenario:
            await scenario.run("Say hello.")
    [body] = server.requests
    return body


def test_the_packaged_models_family_has_sampling_defaults_per_engine() -> None:
    lookup = model_info_for("qwen2.5-coder-1.5b-instruct")
    assert "repeat_penalty" in lookup.sampling_for("llamacpp")
    assert "repetition_penalty" in lookup.sampling_for("vllm")
    assert lookup.sampling_for(None) == {}


async def test_llamacpp_gets_its_repeat_penalty(
    scenario_file: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    body = await _request(scenario_file(), "llamacpp", monkeypatch)
    defaults = model_info_for("qwen2.5-coder-1.5b-instruct").sampling_for("llamacpp")
    for key, value in defaults.items():
        assert body[key] == value
    assert "repetition_penalty" not in body
    assert body["temperature"] == 0.3


async def test_vllm_gets_repetition_penalty(
    scenario_file: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    body = await _request(scenario_file(), "vllm", monkeypatch)
    defaults = model_info_for("qwen2.5-coder-1.5b-instruct").sampling_for("vllm")
    assert body["repetition_penalty"] == defaults["repetition_penalty"]
    assert "repeat_penalty" not in body


async def test_a_scenario_option_overrides_the_profile_in_the_engines_name(
    scenario_file: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = scenario_file(", repetition_penalty: 1.0, presence_penalty: 0.25")
    body = await _request(path, "llamacpp", monkeypatch)
    assert body["repeat_penalty"] == 1.0
    assert body["presence_penalty"] == 0.25
    assert "repetition_penalty" not in body


async def test_another_server_gets_only_openais_fields(
    scenario_file: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    body = await _request(scenario_file(", repetition_penalty: 1.2"), "openai", monkeypatch)
    assert "repeat_penalty" not in body and "repetition_penalty" not in body
    assert body["temperature"] == 0.3


async def test_dry_multiplier_zero_turns_llamacpps_dry_sampler_off(
    scenario_file: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    defaults = model_info_for("qwen2.5-coder-1.5b-instruct").sampling_for("llamacpp")
    assert defaults["dry_multiplier"] == 0.8 and defaults["dry_sequence_breakers"] == ["\n"]
    body = await _request(scenario_file(", dry_multiplier: 0"), "llamacpp", monkeypatch)
    assert body["dry_multiplier"] == 0
    vllm = await _request(scenario_file(", dry_multiplier: 0.5"), "vllm", monkeypatch)
    assert "dry_multiplier" not in vllm
