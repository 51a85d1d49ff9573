from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

MODEL_BLOCK = """
models:
  default:
    base_url: ${TEST_BASE_URL}
    model: scripted-model
    info: {family: unknown, function_calling: true}
"""


@pytest.fixture
def write_scenario(tmp_path: Path) -> Callable[[str], Path]:
    """Write a scenario YAML (dedented) whose default model points at $TEST_BASE_URL."""

    def write(body: str, name: str = "scenario.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(body).replace("{MODELS}", MODEL_BLOCK), encoding="utf-8")
        return path

    return write
