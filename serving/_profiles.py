"""Model profiles (serving/profiles.yaml): vLLM launch flags and AutoGen model_info per model."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from ruamel.yaml import YAML

from serving._wire import Capability

PromptLayout = Literal["shared_prefix", "system_first"]
Engine = Literal["llamacpp", "vllm"]  # as each server names itself in GET /v1/models `owned_by`
# request-body fields in the engine's own names, e.g. {repeat_penalty: 1.1} for llama.cpp
# (a list: llama.cpp's dry_sequence_breakers)
SamplingValue = float | int | list[str]
Sampling = dict[Engine, dict[str, SamplingValue]]


class ModelInfoSpec(BaseModel):
    """AutoGen's ModelInfo, with every key required so AutoGen never warns about a missing one."""

    model_config = ConfigDict(extra="forbid")
    family: str
    vision: bool
    function_calling: bool
    json_output: bool
    structured_output: bool
    multiple_system_messages: bool


class VllmSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    runner: Literal["generate", "pooling"] = "generate"
    convert: Literal["embed", "classify"] | None = None  # the pooling task vLLM adapts the model to
    # this model's share of the GPU's memory when several profiles share one GPU (`up --profile A
    # --profile B`): the shares are scaled to sum to 0.9 of the memory
    gpu_memory: float = Field(default=0.8, gt=0, le=1)
    max_model_len: int | None = None
    tensor_parallel_size: int | None = None
    tool_call_parser: str | None = None
    chat_template: str | None = None
    reasoning_parser: str | None = None
    tokenizer_mode: str | None = None
    config_format: str | None = None
    load_format: str | None = None
    extra_args: list[str] = Field(default_factory=list)


class ProfileSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str
    description: str
    served_model_name: str | None = None
    # what the front routes to it; default: chat for the generate runner
    capabilities: list[Capability] | None = None
    prompt_layout: PromptLayout
    model_info: ModelInfoSpec
    sampling: Sampling = Field(default_factory=dict)
    vllm: VllmSpec

    @property
    def served_name(self) -> str:
        return self.served_model_name or self.model

    def serves(self) -> list[Capability]:
        if self.capabilities is not None:
            return list(self.capabilities)
        return ["chat"] if self.vllm.runner == "generate" else ["embedding"]


class FamilySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    match: list[str]
    prompt_layout: PromptLayout
    model_info: ModelInfoSpec
    sampling: Sampling = Field(default_factory=dict)


class ProfilesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sampling: Sampling = Field(default_factory=dict)
    profiles: dict[str, ProfileSpec]
    families: list[FamilySpec]


@dataclass(frozen=True)
class ModelInfoLookup:
    """What the framework knows about a served model id.

    `info` is AutoGen's ModelInfo (a plain dict with all its keys); `known` is False when
    nothing matched and `info` is the permissive default; `profile` names the vLLM profile
    when the id is a profile's model or served name.
    """

    info: dict[str, Any]
    known: bool
    prompt_layout: PromptLayout
    profile: str | None = None
    sampling: Sampling = field(default_factory=dict)

    def sampling_for(self, engine: str | None) -> dict[str, SamplingValue]:
        """The request-body defaults for this model on `engine` (none for an unknown engine)."""
        return dict(self.sampling.get(engine, {})) if engine else {}  # type: ignore[call-overload]


_UNKNOWN_INFO: dict[str, Any] = {
    "family": "unknown",
    "vision": False,
    "function_calling": True,
    "json_output": True,
    "structured_output": False,
    "multiple_system_messages": False,
}


def load_profiles(path: Path | None = None) -> ProfilesFile:
    """Parse and validate a profiles file (the packaged one by default)."""
    if path is None:
        text = resources.files("serving").joinpath("profiles.yaml").read_text(encoding="utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    data = YAML(typ="safe").load(text)
    return ProfilesFile.model_validate(data)


@functools.cache
def packaged_profiles() -> ProfilesFile:
    return load_profiles()


def model_info_for(model_id: str) -> ModelInfoLookup:
    """Look up AutoGen model_info and the prompt layout for a served model id.

    A profile's model, served name or profile name (also the part after the last "/") wins;
    then the family patterns; otherwise the permissive unknown default (function calling on).
    """
    data = packaged_profiles()
    wanted = model_id.strip().lower()
    for name, prof in data.profiles.items():
        names = {name, prof.model.lower(), prof.served_name.lower()}
        names |= {n.rsplit("/", 1)[-1] for n in list(names)}
        if wanted in names or wanted.rsplit("/", 1)[-1] in names:
            return ModelInfoLookup(
                info=prof.model_info.model_dump(),
                known=True,
                prompt_layout=prof.prompt_layout,
                profile=name,
                sampling=_merged(data.sampling, prof.sampling),
            )
    for fam in data.families:
        if any(re.search(p, wanted, re.IGNORECASE) for p in fam.match):
            return ModelInfoLookup(
                info=fam.model_info.model_dump(),
                known=True,
                prompt_layout=fam.prompt_layout,
                profile=None,
                sampling=_merged(data.sampling, fam.sampling),
            )
    # an unknown model gets no sampling defaults: they were chosen for the known families
    return ModelInfoLookup(info=dict(_UNKNOWN_INFO), known=False, prompt_layout="system_first")


def _merged(base: Sampling, override: Sampling) -> Sampling:
    engines = [*base, *(e for e in override if e not in base)]
    return {e: {**base.get(e, {}), **override.get(e, {})} for e in engines}
