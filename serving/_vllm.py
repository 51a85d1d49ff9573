"""`python -m serving up --engine vllm --profile NAME`: the `vllm serve` command line of a profile."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from serving._errors import ServingError
from serving._profiles import ProfileSpec, packaged_profiles

INSTALL_HINT = 'pip install -e ".[vllm]"'


@dataclass(frozen=True)
class VllmOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    max_model_len: int | None = None  # overrides the profile's
    tensor_parallel_size: int | None = None
    chat_template_dir: Path | None = None  # where vLLM's examples/*.jinja are
    gpu_memory_utilization: float | None = None  # several processes on one GPU; None: vLLM's 0.9


def get_profile(name: str) -> ProfileSpec:
    profiles = packaged_profiles().profiles
    if name not in profiles:
        raise ServingError(f"unknown vLLM profile {name!r}; profiles: {', '.join(profiles)}")
    return profiles[name]


def chat_template_dir(given: Path | None) -> Path:
    if given is not None:
        return given
    env = os.environ.get("VLLM_CHAT_TEMPLATE_DIR")
    return Path(env) if env else Path("examples")  # as vLLM's docs: run from a vLLM checkout


def vllm_argv(name: str, options: VllmOptions | None = None) -> list[str]:
    """The exact `vllm serve` argv for a profile."""
    opts = options or VllmOptions()
    profile = get_profile(name)
    v = profile.vllm
    argv = ["vllm", "serve", profile.model, "--served-model-name", profile.served_name]
    argv += ["--host", opts.host, "--port", str(opts.port)]
    if v.runner != "generate":
        argv += ["--runner", v.runner]
    if v.convert:
        argv += ["--convert", v.convert]
    if opts.gpu_memory_utilization is not None:
        argv += ["--gpu-memory-utilization", f"{opts.gpu_memory_utilization:g}"]
    if max_len := opts.max_model_len or v.max_model_len:
        argv += ["--max-model-len", str(max_len)]
    if tp := opts.tensor_parallel_size or v.tensor_parallel_size:
        argv += ["--tensor-parallel-size", str(tp)]
    for flag, value in (
        ("--tokenizer-mode", v.tokenizer_mode),
        ("--config-format", v.config_format),
        ("--load-format", v.load_format),
    ):
        if value:
            argv += [flag, value]
    if v.tool_call_parser:
        argv += ["--enable-auto-tool-choice", "--tool-call-parser", v.tool_call_parser]
    if v.chat_template:
        argv += ["--chat-template", str(chat_template_dir(opts.chat_template_dir) / v.chat_template)]
    if v.reasoning_parser:
        argv += ["--reasoning-parser", v.reasoning_parser]
    return argv + list(v.extra_args)


def check_launchable(argv: list[str]) -> list[str]:
    """Fail with one line when vLLM or the chat template is missing; returns the argv to run."""
    if importlib.util.find_spec("vllm") is None:
        raise ServingError(f"vLLM is not installed; install it with: {INSTALL_HINT}")
    beside = Path(sys.executable).parent / "vllm"  # the venv's script when the venv is not on PATH
    exe = str(beside) if beside.is_file() else shutil.which("vllm")
    if exe is None:
        raise ServingError(
            f"vLLM is installed but its `vllm` command is not found; reinstall: {INSTALL_HINT}"
        )
    if "--chat-template" in argv:
        template = Path(argv[argv.index("--chat-template") + 1])
        if not template.is_file():
            raise ServingError(
                f"chat template {template} not found: it ships in vLLM's examples/ directory, not in "
                "the wheel; pass --chat-template-dir or set VLLM_CHAT_TEMPLATE_DIR"
            )
    return [exe, *argv[1:]]
