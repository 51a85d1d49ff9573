from __future__ import annotations

from pathlib import Path

import pytest

from serving._cli import main
from serving._profiles import packaged_profiles
from serving._vllm import VllmOptions, vllm_argv

T = "/opt/vllm/examples"
GOLDEN: dict[str, str] = {
    "llama-3.1-8b-instruct": "vllm serve meta-llama/Llama-3.1-8B-Instruct"
    " --served-model-name meta-llama/Llama-3.1-8B-Instruct --host 127.0.0.1 --port 8000"
    " --max-model-len 32768 --enable-auto-tool-choice --tool-call-parser llama3_json"
    f" --chat-template {T}/tool_chat_template_llama3.1_json.jinja",
    "llama-3.3-70b-instruct": "vllm serve meta-llama/Llama-3.3-70B-Instruct"
    " --served-model-name meta-llama/Llama-3.3-70B-Instruct --host 127.0.0.1 --port 8000"
    " --max-model-len 32768 --tensor-parallel-size 4 --enable-auto-tool-choice --tool-call-parser llama3_json"
    f" --chat-template {T}/tool_chat_template_llama3.1_json.jinja",
    "qwen2.5-7b-instruct": "vllm serve Qwen/Qwen2.5-7B-Instruct --served-model-name Qwen/Qwen2.5-7B-Instruct"
    " --host 127.0.0.1 --port 8000 --max-model-len 32768 --enable-auto-tool-choice --tool-call-parser hermes",
    "qwen3-8b": "vllm serve Qwen/Qwen3-8B --served-model-name Qwen/Qwen3-8B --host 127.0.0.1 --port 8000"
    " --max-model-len 32768 --enable-auto-tool-choice --tool-call-parser hermes --reasoning-parser qwen3",
    "mistral-small-3.2-24b-instruct": "vllm serve mistralai/Mistral-Small-3.2-24B-Instruct-2506"
    " --served-model-name mistralai/Mistral-Small-3.2-24B-Instruct-2506 --host 127.0.0.1 --port 8000"
    " --max-model-len 32768 --tensor-parallel-size 2 --tokenizer-mode mistral --config-format mistral"
    " --load-format mistral --enable-auto-tool-choice --tool-call-parser mistral"
    ' --limit-mm-per-prompt {"image": 10}',
    "gpt-oss-20b": "vllm serve openai/gpt-oss-20b --served-model-name openai/gpt-oss-20b"
    " --host 127.0.0.1 --port 8000 --enable-auto-tool-choice --tool-call-parser openai",
    "bge-m3": "vllm serve BAAI/bge-m3 --served-model-name BAAI/bge-m3 --host 127.0.0.1 --port 8000"
    " --runner pooling --convert embed --max-model-len 8192",
    "bge-reranker-v2-m3": "vllm serve BAAI/bge-reranker-v2-m3 --served-model-name BAAI/bge-reranker-v2-m3"
    " --host 127.0.0.1 --port 8000 --runner pooling --max-model-len 8192",
}


def test_every_profile_has_a_golden_command() -> None:
    assert sorted(GOLDEN) == sorted(packaged_profiles().profiles)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_argv(name: str) -> None:
    argv = vllm_argv(name, VllmOptions(chat_template_dir=Path(T)))
    if name == "mistral-small-3.2-24b-instruct":
        assert argv[-2:] == ["--limit-mm-per-prompt", '{"image": 10}']
    assert " ".join(argv) == GOLDEN[name]


def test_overrides() -> None:
    argv = vllm_argv(
        "llama-3.3-70b-instruct",
        VllmOptions(
            host="0.0.0.0", port=9000, max_model_len=8192, tensor_parallel_size=8, chat_template_dir=Path(T)
        ),
    )
    joined = " ".join(argv)
    assert "--host 0.0.0.0 --port 9000 --max-model-len 8192 --tensor-parallel-size 8" in joined


def test_print_command(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["up", "--engine", "vllm", "--profile", "mistral-small-3.2-24b-instruct", "--print-command"])
    assert rc == 0
    assert capsys.readouterr().out.strip().endswith("""--limit-mm-per-prompt '{"image": 10}'""")


def test_vllm_missing_gives_install_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["up", "--engine", "vllm", "--profile", "qwen3-8b"]) == 1
    assert (
        capsys.readouterr().err.strip()
        == 'error: vLLM is not installed; install it with: pip install -e ".[vllm]"'
    )


def test_unknown_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["up", "--engine", "vllm", "--profile", "llama-9", "--print-command"]) == 1
    assert "unknown vLLM profile 'llama-9'; profiles: llama-3.1-8b-instruct" in capsys.readouterr().err
