"""The ONNX Runtime embedding backend with the real packaged model (23 MB, loads in about a
second, so not marked slow): the endpoints the front uses, over its ASGI app."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import httpx
import pytest

from serving._onnx_child import OnnxEmbedder, app
from serving._onnx_model import MINILM_ONNX, onnx_embedding_model


@pytest.fixture(scope="module")
def embedder() -> OnnxEmbedder:
    files = onnx_embedding_model()
    return OnnxEmbedder(str(files.model), str(files.tokenizer), threads=1, context=MINILM_ONNX.context)


@pytest.fixture
async def client(embedder: OnnxEmbedder) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app(embedder, MINILM_ONNX.alias))
    async with httpx.AsyncClient(transport=transport, base_url="http://onnx") as c:
        yield c


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


async def test_paraphrases_are_closer_than_unrelated(client: httpx.AsyncClient) -> None:
    texts = [
        "How do I reset my password?",
        "What are the steps to change my password?",
        "The weather is sunny in Madrid.",
    ]
    got = (await client.post("/v1/embeddings", json={"input": texts})).json()
    vectors = [d["embedding"] for d in sorted(got["data"], key=lambda d: d["index"])]
    assert [len(v) for v in vectors] == [384, 384, 384]
    assert all(math.isclose(_dot(v, v), 1.0, abs_tol=1e-5) for v in vectors)
    assert _dot(vectors[0], vectors[1]) > _dot(vectors[0], vectors[2]) + 0.3
    assert got["model"] == "all-MiniLM-L6-v2"


async def test_tokens_are_bert_wordpieces_and_embed_like_the_text(client: httpx.AsyncClient) -> None:
    tokens = (
        await client.post(
            "/tokenize", json={"content": "The capital of France is Paris.", "add_special": True}
        )
    ).json()["tokens"]
    assert tokens == [101, 1996, 3007, 1997, 2605, 2003, 3000, 1012, 102]  # [CLS] ... [SEP], uncased
    by_text = (await client.post("/v1/embeddings", json={"input": "The capital of France is Paris."})).json()
    by_ids = (await client.post("/v1/embeddings", json={"input": [tokens]})).json()
    assert by_text["data"][0]["embedding"] == pytest.approx(by_ids["data"][0]["embedding"], abs=1e-6)
    assert by_text["usage"]["prompt_tokens"] == 9


async def test_a_long_input_among_short_ones_is_padded_alone(client: httpx.AsyncClient) -> None:
    short = "a short sentence about cats"
    alone = (await client.post("/v1/embeddings", json={"input": short})).json()["data"][0]["embedding"]
    mixed = (await client.post("/v1/embeddings", json={"input": ["word " * 400, short, short]})).json()
    for row in mixed["data"][1:]:
        assert row["embedding"] == pytest.approx(alone, abs=1e-5)


async def test_over_the_context_is_llama_cpp_s_error(client: httpx.AsyncClient) -> None:
    resp = await client.post("/v1/embeddings", json={"input": ["ok", "word " * 700]})
    assert resp.status_code == 400
    assert resp.json()["error"] == {
        "code": 400,
        "message": "input is larger than the max context size (512 tokens). skipping",
        "type": "exceed_context_size_error",
    }
    bad = await client.post("/v1/embeddings", json={"input": [1, "a"]})
    assert bad.status_code == 400
    assert bad.json()["error"]["message"] == "input: a string, a list of strings or of token-id lists"
