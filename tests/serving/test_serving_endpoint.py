from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

import serving
from serving import Endpoint, EndpointError, open_endpoint
from serving._endpoint import normalize_base_url
from serving._front import Backend, BackendSpec, Router
from serving.testing import Reply, ScriptedModelServer


def test_public_names() -> None:
    assert sorted(serving.__all__) == sorted(
        [
            "CAPABILITIES",
            "Capability",
            "Endpoint",
            "EndpointError",
            "ModelInfoLookup",
            "detect_engine",
            "entry_capabilities",
            "list_model_entries",
            "list_models",
            "model_info_for",
            "open_endpoint",
            "resolve_model_id",
            "server_down",
        ]
    )


@pytest.mark.parametrize(
    "given",
    [
        "http://127.0.0.1:8080",
        "http://127.0.0.1:8080/",
        "http://127.0.0.1:8080/v1",
        " http://127.0.0.1:8080/v1/ ",
    ],
)
def test_base_url_normalised(given: str) -> None:
    assert normalize_base_url(given) == "http://127.0.0.1:8080/v1"


def test_base_url_not_http() -> None:
    with pytest.raises(EndpointError, match="not an http"):
        normalize_base_url("127.0.0.1:8080")


async def test_auto_model_resolves_to_the_one_listed() -> None:
    async with ScriptedModelServer([Reply.text("hi")]) as srv:
        root = srv.base_url.removesuffix("/v1")
        async with open_endpoint(root, "auto", "k") as ep:
            assert ep == Endpoint(base_url=srv.base_url, model=srv.model, api_key="k", started_server=False)


async def test_explicit_model_kept(models_server: Callable[[list[str]], str]) -> None:
    url = models_server(["a"])
    async with open_endpoint(url + "/v1/", "other") as ep:
        assert (ep.base_url, ep.model) == (url + "/v1", "other")


async def test_several_models_listed_in_error(models_server: Callable[[list[str]], str]) -> None:
    url = models_server(["qwen-a", "llama-b"])
    with pytest.raises(EndpointError) as info:
        async with open_endpoint(url, "auto"):
            pass
    assert "several chat models (qwen-a, llama-b)" in str(info.value)
    assert info.value.url == url + "/v1"


async def test_no_models(models_server: Callable[[list[str]], str]) -> None:
    url = models_server([])
    with pytest.raises(EndpointError, match="lists no models"):
        async with open_endpoint(url, "auto"):
            pass


async def test_rejected_key(models_server: Callable[[list[str], int], str]) -> None:
    url = models_server(["a"], 401)
    with pytest.raises(EndpointError, match=r"rejected the API key \(HTTP 401\)"):
        async with open_endpoint(url, "auto"):
            pass


async def test_connection_refused_names_url_and_fix(closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/v1"
    with pytest.raises(EndpointError) as info:
        async with open_endpoint(url, "auto"):
            pass
    message = str(info.value)
    assert "\n" not in message
    assert message == (
        f"cannot reach the model server at {url} (connection refused); "
        "`python -m serving up` starts the bundled server"
    )
    assert info.value.url == url


async def test_llm_base_url_env_used_for_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    async with ScriptedModelServer([Reply.text("hi")]) as srv:
        monkeypatch.setenv("LLM_BASE_URL", srv.base_url)
        async with open_endpoint("auto", "auto") as ep:
            assert (ep.base_url, ep.model, ep.started_server) == (srv.base_url, srv.model, False)


async def test_server_lost_during_run_becomes_endpoint_error(
    models_server: Callable[[list[str]], str],
) -> None:
    url = models_server(["a"])
    with pytest.raises(EndpointError, match="lost the connection to the model server at .* during the run"):
        async with open_endpoint(url, "auto"):
            raise httpx.ConnectError("refused")


async def test_other_errors_pass_through(models_server: Callable[[list[str]], str]) -> None:
    url = models_server(["a"])
    with pytest.raises(KeyError):
        async with open_endpoint(url, "auto"):
            raise KeyError("x")


async def test_wrapped_error_after_server_died_becomes_endpoint_error() -> None:
    """AutoGen re-raises a participant's connection error as RuntimeError: the server is asked."""
    srv = ScriptedModelServer([Reply.text("hi")]).start()
    with pytest.raises(EndpointError) as info:
        async with open_endpoint(srv.base_url, "auto"):
            srv.stop()
            raise RuntimeError("APIConnectionError: Connection error.")
    assert str(info.value) == f"lost the connection to the model server at {srv.base_url} during the run"
    assert isinstance(info.value.__cause__, RuntimeError)


async def test_unrelated_error_with_server_up_passes_through() -> None:
    async with ScriptedModelServer([Reply.text("hi")]) as srv:
        with pytest.raises(RuntimeError, match="tool failed"):
            async with open_endpoint(srv.base_url, "auto"):
                raise RuntimeError("tool failed")


async def test_resolve_model_id_by_capability(front_url: Callable[[Router], str]) -> None:
    """The contract other packages code against: `auto` per capability at the bundled URL."""
    from serving import resolve_model_id

    router = Router(
        [
            Backend(
                BackendSpec(
                    model="chat-m", capabilities=["chat"], engine="external", url="http://127.0.0.1:9/v1"
                )
            ),
            Backend(
                BackendSpec(
                    model="emb-m",
                    capabilities=["embedding", "rerank", "score"],
                    engine="llama.cpp",
                    url="http://127.0.0.1:9/v1",
                )
            ),
        ]
    )
    url = front_url(router)
    assert [await resolve_model_id(url, cap) for cap in ("chat", "embedding", "rerank", "score")] == [
        "chat-m",
        "emb-m",
        "emb-m",
        "emb-m",
    ]
    assert await resolve_model_id(url.removesuffix("/v1"), "embedding", model="other") == "other"
    async with open_endpoint(url, "auto") as chat, open_endpoint(url, "auto", capability="embedding") as emb:
        assert (chat.model, emb.model) == ("chat-m", "emb-m")
    only_chat = front_url(Router(router.backends[:1]))
    with pytest.raises(EndpointError) as info:
        await resolve_model_id(only_chat, "embedding")
    assert (
        str(info.value)
        == f"the model server at {only_chat} serves no embedding model (it lists chat-m (chat))"
    )


async def test_a_server_that_does_not_list_capabilities(models_server: Callable[[list[str]], str]) -> None:
    from serving import resolve_model_id

    url = models_server(["bge-m3"])
    assert await resolve_model_id(url, "embedding") == "bge-m3"
    with pytest.raises(ValueError, match="capability 'embeddings'; valid: chat, embedding, rerank, score"):
        await resolve_model_id(url, "embeddings")  # type: ignore[arg-type]
