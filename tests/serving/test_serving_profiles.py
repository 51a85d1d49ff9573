from __future__ import annotations

import pytest

from serving import ModelInfoLookup, model_info_for
from serving._profiles import packaged_profiles

ALL_KEYS = {
    "family",
    "vision",
    "function_calling",
    "json_output",
    "structured_output",
    "multiple_system_messages",
}


def test_embedded_model_is_known_and_shares_prefix() -> None:
    for model_id in ("qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"):
        found = model_info_for(model_id)
        assert found.known and found.profile is None
        assert found.prompt_layout == "shared_prefix"
        assert found.info["family"] == "qwen2.5"
        assert found.info["function_calling"] is True
        assert found.info["multiple_system_messages"] is True


def test_unknown_model() -> None:
    found = model_info_for("someone/totally-new-model")
    assert found == ModelInfoLookup(
        info={
            "family": "unknown",
            "vision": False,
            "function_calling": True,
            "json_output": True,
            "structured_output": False,
            "multiple_system_messages": False,
        },
        known=False,
        prompt_layout="system_first",
        profile=None,
    )


@pytest.mark.parametrize("name", sorted(packaged_profiles().profiles))
def test_every_profile_model_info_is_used(name: str) -> None:
    profile = packaged_profiles().profiles[name]
    for model_id in (profile.model, profile.served_name, name, profile.model.upper()):
        found = model_info_for(model_id)
        assert found.profile == name, model_id
        assert found.known
        assert found.info == profile.model_info.model_dump()
        assert set(found.info) == ALL_KEYS
        assert found.prompt_layout == profile.prompt_layout


@pytest.mark.parametrize(
    ("model_id", "family", "layout"),
    [
        ("Qwen/Qwen2.5-14B-Instruct", "qwen2.5", "shared_prefix"),
        ("Qwen/Qwen3-32B", "qwen3", "shared_prefix"),
        ("meta-llama/Llama-3.2-3B-Instruct", "llama-3", "shared_prefix"),
        ("mistralai/Mistral-Small-3.1-24B-Instruct-2503", "mistral", "system_first"),
        ("openai/gpt-oss-120b", "gpt-oss", "system_first"),
    ],
)
def test_family_patterns(model_id: str, family: str, layout: str) -> None:
    found = model_info_for(model_id)
    assert (found.known, found.profile, found.info["family"], found.prompt_layout) == (
        True,
        None,
        family,
        layout,
    )


def test_strict_alternation_templates_keep_system_first() -> None:
    for name, profile in packaged_profiles().profiles.items():
        if profile.prompt_layout == "shared_prefix":
            assert profile.model_info.multiple_system_messages, name


def test_autogen_accepts_model_info_without_warnings() -> None:
    from autogen_core.models import validate_model_info

    validate_model_info(model_info_for("qwen2.5-coder-1.5b-instruct").info)  # type: ignore[arg-type]
