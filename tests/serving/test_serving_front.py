"""The bundled front: routing by model, the seed's embeddings/rerank/score shapes, 400s that name
the field, and a dead backend failing only its own model. Backends are real HTTP servers on
127.0.0.1: the scripted chat server and tests/serving/fake_backend.py."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest
from openai import AsyncOpenAI

from serving._front import Backend, BackendSpec, Front, Router
from serving.testing import Reply, ScriptedModelServer
from tests.serving.fake_backend import CONTEXT, DIMS, start_in_thread

EMB = "fake-minilm"
CHAT = "fake-chat"


@dataclass
class Dead:
    """A backend process that has exited."""

    pid: int | None = 4242

    def crash_message(self) -> str | None:
        return "the llama.cpp backend of fake-minilm (pid 4242) exited with code -9"


@pytest.fixture
def chat_server() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer([Reply.text("Paris.")], model=CHAT) as server:
        yield server


@pytest.fixture
def emb_url() -> Iterator[str]:
    server, _, url = start_in_thread("embedding", EMB)
    yield url
    server.shutdown()
    server.server_close()


def _router(chat_url: str, emb_url: str, emb_process: Any = None) -> Router:
    return Router(
        [
            Backend(BackendSpec(model=CHAT, capabilities=["chat"], engine="external", url=chat_url)),
            Backend(
                BackendSpec(
                    model=EMB,
                    capabilities=["embedding", "rerank", "score"],
                    engine="llama.cpp",
                    url=emb_url,
                    max_input_tokens=CONTEXT,
                    dimensions=DIMS,
                ),
                emb_process,
            ),
        ]
    )


@pytest.fixture
async def front(chat_server: ScriptedModelServer, emb_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = Front(_router(chat_server.base_url, emb_url))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app.app()), base_url="http://front") as client:
        yield client
    await app.client.aclose()


def _sdk(front: httpx.AsyncClient) -> AsyncOpenAI:
    # the openai package annotates its own httpx fork's client; httpx's works the same
    return AsyncOpenAI(base_url="http://front/v1", api_key="x", http_client=front)  # type: ignore[arg-type]


async def _error(client: httpx.AsyncClient, path: str, body: Any, status: int = 400) -> str:
    resp = await client.post(path, json=body)
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return str(error["message"])


async def test_models_lists_every_model_with_what_it_serves(front: httpx.AsyncClient) -> None:
    data = (await front.get("/v1/models")).json()["data"]
    assert [(m["id"], m["capabilities"]) for m in data] == [
        (CHAT, ["chat"]),
        (EMB, ["embedding", "rerank", "score"]),
    ]


async def test_chat_and_embeddings_reach_their_backends(front: httpx.AsyncClient) -> None:
    chat = await front.post(
        "/v1/chat/completions", json={"model": CHAT, "messages": [{"role": "user", "content": "Capital?"}]}
    )
    assert chat.json()["choices"][0]["message"]["content"] == "Paris."
    emb = (await front.post("/v1/embeddings", json={"model": EMB, "input": ["a b", "c"]})).json()
    assert [d["index"] for d in emb["data"]] == [0, 1]
    assert len(emb["data"][0]["embedding"]) == DIMS
    assert emb["model"] == EMB
    assert emb["usage"] == {"prompt_tokens": 7, "total_tokens": 7}  # [CLS] a b [SEP] + [CLS] c [SEP]
    # no model: the one model that serves the endpoint; /v1/embedding as the seed's curl sends it
    assert (await front.post("/v1/embeddings", json={"input": "a"})).status_code == 200
    seed = {"model": EMB, "input": "What is the capital of France?", "encoding_format": "float"}
    assert (await front.post("/v1/embedding", json=seed)).json()["data"][0]["object"] == "embedding"


async def test_sdk_base64_default_equals_float(front: httpx.AsyncClient) -> None:
    client = _sdk(front)
    default = await client.embeddings.create(model=EMB, input=["the capital of France", "bananas"])
    floats = await client.embeddings.create(
        model=EMB, input=["the capital of France", "bananas"], encoding_format="float"
    )
    for got, want in zip(default.data, floats.data, strict=True):
        assert got.embedding == pytest.approx(want.embedding, abs=1e-7)
    raw = await front.post("/v1/embeddings", json={"input": "x y", "encoding_format": "base64"})
    vector = np.frombuffer(base64.b64decode(raw.json()["data"][0]["embedding"]), dtype="<f4")
    assert vector.shape == (DIMS,)


async def test_rerank_the_seed_request(front: httpx.AsyncClient) -> None:
    docs = [
        "Bananas are yellow.",
        "The capital of France is Paris.",
        "France is in Europe.",
    ]
    for path in ("/rerank", "/v1/rerank", "/v2/rerank"):
        resp = await front.post(
            path,
            json={
                "model": EMB,
                "query": "What is the capital of France?",
                "documents": docs,
                "top_n": 2,
                "truncate_prompt_tokens": 16,
            },
        )
        body = resp.json()
        assert resp.status_code == 200, body
        assert body["model"] == EMB
        assert body["id"].startswith("rerank-")
        assert [r["index"] for r in body["results"]] == [1, 2]
        assert body["results"][0]["document"] == {"text": "The capital of France is Paris."}
        scores = [r["relevance_score"] for r in body["results"]]
        assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
        assert body["usage"]["total_tokens"] > 0
    every = (await front.post("/rerank", json={"query": "France", "documents": docs, "top_n": 0})).json()
    assert len(every["results"]) == 3


async def test_score_one_to_many_and_pairwise(front: httpx.AsyncClient) -> None:
    one = (
        await front.post("/score", json={"text_1": "red apple", "text_2": ["red apple", "blue sky"]})
    ).json()
    assert one["object"] == "list" and one["model"] == EMB
    assert [d["object"] for d in one["data"]] == ["score", "score"]
    assert one["data"][0]["score"] == pytest.approx(1.0)
    assert one["data"][1]["score"] == 0.0
    pairs = (await front.post("/v1/score", json={"text_1": ["a b", "c d"], "text_2": ["a b", "x y"]})).json()
    assert [round(d["score"], 6) for d in pairs["data"]] == [1.0, 0.0]
    assert pairs["usage"]["completion_tokens"] == 0


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/v1/embeddings", {"input": []}, "input: must be a non-empty string or a non-empty list of strings"),
        ("/v1/embeddings", {"input": ""}, "input: must not be an empty string"),
        ("/v1/embeddings", {"input": ["a", ""]}, "input[1]: must not be an empty string"),
        ("/v1/embeddings", {"input": ["x"] * 10_000}, "input: 10,000 items; at most 2048 per request"),
        ("/v1/embeddings", {"input": 3}, "input: must be a string or a list of strings"),
        ("/v1/embeddings", {"input": ["a", 3]}, "input: must be a string or a list of strings"),
        ("/v1/embeddings", {}, "input: required"),
        (
            "/v1/embeddings",
            {"input": "a", "encoding_format": "int8"},
            "encoding_format: Input should be 'float' or 'base64'",
        ),
        (
            "/v1/embeddings",
            {"input": "a", "inputs": "b"},
            "inputs: unknown field; valid fields: model, truncate_prompt_tokens, input, encoding_format, "
            "dimensions, user",
        ),
        (
            "/v1/embeddings",
            {"input": "a", "dimensions": 8},
            f"dimensions: fake-minilm returns {DIMS}-dimensional vectors only",
        ),
        (
            "/v1/embeddings",
            {"input": "w " * 40},
            f"input: 42 tokens, more than fake-minilm's limit of {CONTEXT}; shorten it or pass "
            "truncate_prompt_tokens",
        ),
        (
            "/v1/embeddings",
            {"input": ["short", "w " * 40]},
            f"input[1]: 42 tokens, more than fake-minilm's limit of {CONTEXT}; shorten it or pass "
            "truncate_prompt_tokens",
        ),
        (
            "/v1/embeddings",
            {"input": "a", "truncate_prompt_tokens": 100},
            f"truncate_prompt_tokens: 100 is more than fake-minilm's limit of {CONTEXT} tokens",
        ),
        (
            "/v1/embeddings",
            {"input": "a", "truncate_prompt_tokens": 0},
            "truncate_prompt_tokens: Input should be greater than 0",
        ),
        ("/rerank", {"query": "q", "documents": []}, "documents: must be a non-empty list of strings"),
        ("/rerank", {"query": "q", "documents": "a doc"}, "documents: Input should be a valid list"),
        ("/rerank", {"query": "q", "documents": ["a", 1]}, "documents[1]: Input should be a valid string"),
        (
            "/rerank",
            {"query": "q", "documents": ["a", "b"], "top_n": 3},
            "top_n: 3 is more than the 2 documents given (0 returns every document)",
        ),
        (
            "/rerank",
            {"query": "q", "documents": ["a"], "top_n": "2"},
            "top_n: Input should be a valid integer",
        ),
        ("/rerank", {"documents": ["a"]}, "query: required"),
        (
            "/score",
            {"text_1": ["a", "b"], "text_2": ["a", "b", "c"]},
            "text_1 has 2 texts and text_2 3: give one text_1, or as many as text_2 (scored pairwise)",
        ),
        ("/score", {"text_1": "a", "text_2": []}, "text_2: must be a non-empty string or list of strings"),
        ("/score", {"text_1": 1, "text_2": "a"}, "text_1: must be a string or a list of strings"),
    ],
)
async def test_bad_input_is_a_400_naming_the_field(
    front: httpx.AsyncClient, path: str, body: dict[str, Any], message: str
) -> None:
    assert await _error(front, path, body) == message


async def test_truncate_prompt_tokens_truncates(front: httpx.AsyncClient) -> None:
    body = {"input": "w " * 40, "truncate_prompt_tokens": 10}
    resp = await front.post("/v1/embeddings", json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["usage"]["prompt_tokens"] == 10


async def test_body_that_is_not_json(front: httpx.AsyncClient) -> None:
    resp = await front.post("/v1/embeddings", content=b"{nope")
    assert resp.status_code == 400
    assert resp.json()["error"]["message"] == "the request body is not valid JSON"


async def test_model_routing_errors_name_the_models_that_can(front: httpx.AsyncClient) -> None:
    assert await _error(front, "/v1/embeddings", {"model": "sds/bge-m3", "input": "a"}, 404) == (
        "model 'sds/bge-m3' is not served here; models that serve embeddings: fake-minilm"
    )
    assert await _error(front, "/v1/embeddings", {"model": CHAT, "input": "a"}) == (
        "model 'fake-chat' does not serve embeddings (it serves chat); models that do: fake-minilm"
    )
    chat = {"model": EMB, "messages": [{"role": "user", "content": "hi"}]}
    assert await _error(front, "/v1/chat/completions", chat) == (
        "model 'fake-minilm' does not serve chat (it serves embedding, rerank, score); "
        "models that do: fake-chat"
    )
    assert await _error(
        front, "/rerank", {"model": "sds/bge-reranker-v2-m3", "query": "q", "documents": ["a"]}, 404
    ) == ("model 'sds/bge-reranker-v2-m3' is not served here; models that serve rerank: fake-minilm")


async def test_no_model_for_an_endpoint(chat_server: ScriptedModelServer) -> None:
    app = Front(
        Router(
            [
                Backend(
                    BackendSpec(
                        model=CHAT, capabilities=["chat"], engine="external", url=chat_server.base_url
                    )
                )
            ]
        )
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app.app()), base_url="http://front") as client:
        assert await _error(client, "/score", {"text_1": "a", "text_2": "b"}, 404) == (
            "no model here serves score; models: fake-chat (chat)"
        )
    await app.client.aclose()


async def test_dead_backend_fails_only_its_own_model(chat_server: ScriptedModelServer, emb_url: str) -> None:
    app = Front(_router(chat_server.base_url, emb_url, Dead()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app.app()), base_url="http://front") as client:
        message = await _error(client, "/v1/embeddings", {"input": "a"}, 503)
        assert message == "the llama.cpp backend of fake-minilm (pid 4242) exited with code -9"
        assert await _error(client, "/rerank", {"query": "a", "documents": ["b"]}, 503) == message
        chat = await client.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]}
        )
        assert chat.json()["choices"][0]["message"]["content"] == "Paris."
        health = (await client.get("/health")).json()
        assert health["backends"][EMB] == {"status": "exited", "pid": 4242, "restarts": 0, "problem": message}
    await app.client.aclose()


async def test_unreachable_backend_names_it(chat_server: ScriptedModelServer, closed_port: int) -> None:
    app = Front(_router(chat_server.base_url, f"http://127.0.0.1:{closed_port}/v1"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app.app()), base_url="http://front") as client:
        message = await _error(client, "/v1/embeddings", {"input": "a"}, 503)
    await app.client.aclose()
    assert message.startswith(
        f"the llama.cpp backend of fake-minilm (http://127.0.0.1:{closed_port}/v1) "
        "did not answer: ConnectError"
    )


async def test_streamed_chat_passes_through(front: httpx.AsyncClient) -> None:
    client = _sdk(front)
    stream = await client.chat.completions.create(
        model=CHAT, messages=[{"role": "user", "content": "Capital?"}], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Paris."
