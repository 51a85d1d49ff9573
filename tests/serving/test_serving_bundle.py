"""The bundled server as a process tree (front + backends), and the multi-profile vLLM plan:
golden command lines, the GPU memory split, and the front routing to vLLM-shaped backends."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from serving._bundle import FrontPlan, bundled_server, gpu_memory_split, vllm_plan
from serving._cli import main
from serving._embedded import free_port
from serving._errors import ServingError
from serving._front import Backend, BackendSpec, Front, Router
from serving._state import pid_alive
from tests.serving.fake_backend import start_in_thread

FAKE = str(Path(__file__).with_name("fake_backend.py"))
T = "/opt/vllm/examples"
PROFILES = ["llama-3.1-8b-instruct", "bge-m3", "bge-reranker-v2-m3"]
GOLDEN = [
    "vllm serve meta-llama/Llama-3.1-8B-Instruct --served-model-name meta-llama/Llama-3.1-8B-Instruct"
    " --host 127.0.0.1 --port 8001 --gpu-memory-utilization 0.72 --max-model-len 32768"
    " --enable-auto-tool-choice --tool-call-parser llama3_json"
    f" --chat-template {T}/tool_chat_template_llama3.1_json.jinja",
    "vllm serve BAAI/bge-m3 --served-model-name BAAI/bge-m3 --host 127.0.0.1 --port 8002"
    " --runner pooling --convert embed --gpu-memory-utilization 0.09 --max-model-len 8192",
    "vllm serve BAAI/bge-reranker-v2-m3 --served-model-name BAAI/bge-reranker-v2-m3 --host 127.0.0.1"
    " --port 8003 --runner pooling --gpu-memory-utilization 0.09 --max-model-len 8192",
]


def _wait(predicate: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_print_command_multi_profile(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["up", "--engine", "vllm", "--chat-template-dir", T, "--print-command"]
    for p in PROFILES:
        argv += ["--profile", p]
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines() == GOLDEN


def test_plan_routes_by_profile_capabilities() -> None:
    plan = vllm_plan(PROFILES, port=9000, chat_template_dir=Path(T))
    assert [(b.model, b.capabilities, b.url) for b in plan.backends] == [
        ("meta-llama/Llama-3.1-8B-Instruct", ["chat"], "http://127.0.0.1:9001/v1"),
        ("BAAI/bge-m3", ["embedding", "rerank", "score"], "http://127.0.0.1:9002/v1"),
        ("BAAI/bge-reranker-v2-m3", ["rerank", "score"], "http://127.0.0.1:9003/v1"),
    ]
    assert (plan.host, plan.port) == ("127.0.0.1", 9000)


@pytest.mark.parametrize(
    ("weights", "shares"),
    [([0.8, 0.1, 0.1], [0.72, 0.09, 0.09]), ([0.5, 0.5], [0.45, 0.45]), ([1, 1, 1], [0.3, 0.3, 0.3])],
)
def test_gpu_memory_split_sums_to_at_most_0_9(weights: list[float], shares: list[float]) -> None:
    assert gpu_memory_split(weights) == shares
    assert sum(gpu_memory_split(weights)) <= 0.9


def test_same_profile_twice(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["up", "--engine", "vllm", "--profile", "bge-m3", "--profile", "bge-m3", "--print-command"]) == 1
    )
    assert capsys.readouterr().err.strip() == "error: --profile given twice: bge-m3, bge-m3"


async def test_front_routes_to_vllm_backends() -> None:
    servers = {name: start_in_thread("vllm", name) for name in ("llama", "bge-m3", "reranker")}
    caps = {"llama": ["chat"], "bge-m3": ["embedding", "rerank", "score"], "reranker": ["rerank", "score"]}
    router = Router(
        [
            Backend(BackendSpec(model=name, capabilities=caps[name], engine="vllm", url=url))  # type: ignore[arg-type]
            for name, (_, _, url) in servers.items()
        ]
    )
    app = Front(router)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app.app()), base_url="http://f") as client:
            rerank = {"model": "reranker", "query": "q", "documents": ["a", "b"], "top_n": 1}
            got = (await client.post("/v2/rerank", json=rerank)).json()
            assert got == {"echo_path": "/v1/rerank", "echo_body": rerank}
            score = {"model": "bge-m3", "text_1": "a", "text_2": ["b"]}
            assert (await client.post("/score", json=score)).json()["echo_path"] == "/v1/score"
            emb = {"model": "bge-m3", "input": ["a"], "encoding_format": "base64"}
            assert (await client.post("/v1/embeddings", json=emb)).json() == {
                "echo_path": "/v1/embeddings",
                "echo_body": emb,
            }
            chat = {"messages": [{"role": "user", "content": "hi"}], "stream": False}
            assert (await client.post("/v1/chat/completions", json=chat)).json()[
                "echo_path"
            ] == "/v1/chat/completions"
            missing = await client.post("/rerank", json={"query": "q", "documents": ["a"]})
            assert missing.status_code == 400
            assert missing.json()["error"]["message"] == (
                "model: required; models that serve rerank: bge-m3, reranker"
            )
        assert servers["llama"][1] == [("/v1/chat/completions", chat)]
    finally:
        await app.client.aclose()
        for server, _, _ in servers.values():
            server.shutdown()
            server.server_close()


def _embedding_plan(
    tmp_path: Path, *extra: str, engine: str = "llama.cpp", kind: str = "embedding"
) -> FrontPlan:
    ports = [free_port(), free_port()]
    return FrontPlan(
        host="127.0.0.1",
        port=free_port(),
        backends=[
            BackendSpec(
                model="fake-chat",
                capabilities=["chat"],
                engine="llama.cpp",
                url=f"http://127.0.0.1:{ports[0]}/v1",
                command=[sys.executable, FAKE, "chat", "fake-chat", str(ports[0])],
            ),
            BackendSpec(
                model="fake-minilm",
                capabilities=["embedding", "rerank", "score"],
                engine=engine,  # type: ignore[arg-type]
                url=f"http://127.0.0.1:{ports[1]}/v1",
                command=[sys.executable, FAKE, kind, "fake-minilm", str(ports[1]), *extra],
                log=str(tmp_path / "embedding.log"),
            ),
        ],
    )


def _health(base: str) -> dict[str, Any]:
    backends: dict[str, Any] = httpx.get(base.removesuffix("/v1") + "/health").json()["backends"]
    return backends


def test_a_killed_backend_is_restarted_and_the_other_keeps_serving(tmp_path: Path) -> None:
    plan = _embedding_plan(tmp_path)
    server = bundled_server(plan, alias="fake-chat", log_path=tmp_path / "server.log")
    server.start(timeout=60)
    base = server.base_url
    try:
        chat_pid, emb_pid = (_health(base)[m]["pid"] for m in ("fake-chat", "fake-minilm"))
        assert httpx.post(f"{base}/embeddings", json={"input": "a"}).status_code == 200
        os.kill(emb_pid, signal.SIGKILL)
        # answered while it restarts (503 naming it and what happens) or once it is back (200)
        resp = httpx.post(f"{base}/embeddings", json={"input": "a"})
        if resp.status_code == 503:
            assert resp.json()["error"]["message"] == (
                f"the llama.cpp backend of fake-minilm (pid {emb_pid}, {plan.backends[1].url}) was killed "
                "by SIGKILL; it is being restarted (restart 1 of at most 3 within 60 s): retry the request"
            )
        else:
            assert resp.status_code == 200
        _wait(lambda: _health(base)["fake-minilm"]["status"] == "ok", "the embedding backend to be back")
        health = _health(base)["fake-minilm"]
        assert health["restarts"] == 1 and health["pid"] not in (emb_pid, None)
        assert httpx.post(f"{base}/embeddings", json={"input": "a"}).json()["data"][0]["embedding"]
        chat = httpx.post(f"{base}/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
        assert chat.json()["choices"][0]["message"]["content"] == "chat from fake-chat"
        assert _health(base)["fake-chat"] == {"status": "ok", "pid": chat_pid, "restarts": 0}
        new_pid = health["pid"]
    finally:
        server.stop()
    assert server.exit_code() == 0
    _wait(lambda: not pid_alive(chat_pid) and not pid_alive(new_pid), "both backends to stop with the front")


def test_a_request_in_flight_fails_at_once_when_its_backend_dies(tmp_path: Path) -> None:
    plan = _embedding_plan(tmp_path, str(tmp_path / "arrived"), engine="vllm", kind="hang")
    server = bundled_server(plan, alias="fake-chat", log_path=tmp_path / "server.log")
    server.start(timeout=60)
    base = server.base_url
    try:
        emb_pid = _health(base)["fake-minilm"]["pid"]
        answers: list[httpx.Response] = []
        pending = threading.Thread(
            target=lambda: answers.append(httpx.post(f"{base}/embeddings", json={"input": "a"}, timeout=60))
        )
        pending.start()
        _wait(lambda: (tmp_path / "arrived").exists(), "the request to reach the backend")
        killed = time.monotonic()
        os.kill(emb_pid, signal.SIGKILL)
        pending.join(60)
        # the exit is seen at once; generous for a loaded machine, far below any request timeout
        assert time.monotonic() - killed < 10
        assert answers[0].status_code == 503
        killed_by = (
            f"the vllm backend of fake-minilm (pid {emb_pid}, {plan.backends[1].url}) was killed by SIGKILL"
        )
        # the front reports the exit it saw; on a loaded machine the restart may be over by then
        assert answers[0].json()["error"]["message"] in (
            f"{killed_by} during the request; it is being restarted (restart 1 of at most 3 within 60 s): "
            "retry the request",
            f"{killed_by} during the request; it was restarted (restart 1): retry the request",
        )
    finally:
        server.stop()
    assert server.exit_code() == 0


def test_a_stream_whose_backend_dies_ends_with_an_error_the_sdk_raises(tmp_path: Path) -> None:
    from openai import APIError, OpenAI

    plan = _embedding_plan(tmp_path)
    server = bundled_server(plan, alias="fake-chat", log_path=tmp_path / "server.log")
    server.start(timeout=60)
    base = server.base_url
    try:
        chat_pid = _health(base)["fake-chat"]["pid"]
        with OpenAI(base_url=base, api_key="x", max_retries=0) as client:
            stream = client.chat.completions.create(
                model="fake-chat", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            chunks = iter(stream)
            assert next(chunks).choices[0].delta.content == "Hel"
            os.kill(chat_pid, signal.SIGKILL)
            with pytest.raises(APIError) as info:
                next(chunks)
            stream.close()
        assert info.value.message == (
            f"the llama.cpp backend of fake-chat (pid {chat_pid}, {plan.backends[0].url}) was killed by "
            "SIGKILL during the request; it is being restarted (restart 1 of at most 3 within 60 s): "
            "retry the request"
        )
        _wait(lambda: _health(base)["fake-chat"]["status"] == "ok", "the chat backend to be back")
    finally:
        server.stop()
    assert server.exit_code() == 0


def test_a_backend_that_dies_at_every_start_is_reported_broken(tmp_path: Path) -> None:
    marker = tmp_path / "broken"
    plan = _embedding_plan(tmp_path, "--fail-if", str(marker))
    server = bundled_server(plan, alias="fake-chat", log_path=tmp_path / "server.log")
    server.start(timeout=60)
    base = server.base_url
    try:
        emb_pid = _health(base)["fake-minilm"]["pid"]
        marker.write_text("model file is gone")
        os.kill(emb_pid, signal.SIGKILL)
        _wait(lambda: _health(base)["fake-minilm"]["status"] == "broken", "the backend to be given up")
        assert _health(base)["fake-minilm"]["restarts"] == 3
        resp = httpx.post(f"{base}/embeddings", json={"input": "a"})
        assert resp.status_code == 503
        assert resp.json()["error"]["message"] == (
            f"the llama.cpp backend of fake-minilm ({plan.backends[1].url}) is broken: it ended 4 times "
            "within 60 s (last: the llama.cpp backend for fake-minilm exited with code 3 while starting: "
            "error: model file is gone), so it is not restarted again; last stderr: error: model file is gone"
        )
        chat = httpx.post(f"{base}/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
        assert chat.json()["choices"][0]["message"]["content"] == "chat from fake-chat"
    finally:
        server.stop()
    assert server.exit_code() == 0


def test_backend_that_fails_to_start_stops_the_others(tmp_path: Path) -> None:
    port = free_port()
    plan = FrontPlan(
        host="127.0.0.1",
        port=free_port(),
        backends=[
            BackendSpec(
                model="fake-chat",
                capabilities=["chat"],
                engine="llama.cpp",
                url=f"http://127.0.0.1:{port}/v1",
                command=[sys.executable, FAKE, "chat", "fake-chat", str(port)],
            ),
            BackendSpec(
                model="broken",
                capabilities=["embedding"],
                engine="llama.cpp",
                url=f"http://127.0.0.1:{free_port()}/v1",
                command=[sys.executable, "-c", "import sys; print('error: no such model file'); sys.exit(3)"],
                log=str(tmp_path / "broken.log"),
            ),
        ],
    )
    server = bundled_server(plan, alias="fake-chat", log_path=tmp_path / "server.log")
    with pytest.raises(ServingError) as info:
        server.start(timeout=60)
    assert str(info.value) == (
        "the embedded model server (llama.cpp via xllamacpp) for fake-chat exited with code 1 "
        "while starting: error: the llama.cpp backend for broken exited with code 3 while starting: "
        "error: no such model file"
    )
    _wait(lambda: _free(port), "the chat backend to be stopped")


def _free(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
    except httpx.TransportError:
        return True
    return False


def test_stop_does_not_wait_for_a_request_a_backend_never_answers(tmp_path: Path) -> None:
    port = free_port()
    plan = FrontPlan(
        host="127.0.0.1",
        port=free_port(),
        backends=[
            BackendSpec(
                model="stuck",
                capabilities=["embedding"],
                engine="vllm",
                url=f"http://127.0.0.1:{port}/v1",
                command=[sys.executable, FAKE, "hang", "stuck", str(port), str(tmp_path / "arrived")],
            )
        ],
    )
    server = bundled_server(plan, alias="stuck", log_path=tmp_path / "server.log")
    server.start(timeout=60)
    backend_pid = httpx.get(server.base_url.removesuffix("/v1") + "/health").json()["backends"]["stuck"][
        "pid"
    ]
    pending = threading.Thread(
        target=lambda: _ignore(
            lambda: httpx.post(f"{server.base_url}/embeddings", json={"input": "a"}, timeout=60)
        )
    )
    pending.start()
    _wait(lambda: (tmp_path / "arrived").exists(), "the request to reach the stuck backend")
    started = time.monotonic()
    server.stop(timeout=15)
    assert server.exit_code() == 0  # stopped by SIGTERM, not killed after 15 s
    assert time.monotonic() - started < 12  # uvicorn's graceful shutdown is bounded at 5 s
    _wait(lambda: not pid_alive(backend_pid), "the stuck backend to stop")
    pending.join(60)


def _ignore(call: Callable[[], object]) -> None:
    try:
        call()
    except httpx.HTTPError:
        pass
