"""`python -m serving check`: probe what an OpenAI-compatible server can do for agents."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx
from openai import AsyncOpenAI, OpenAIError

from agentteams import AgentTeamsError
from serving._endpoint import entry_capabilities, list_model_entries

TOOL_NAME = "get_current_time"
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": TOOL_NAME,
            "description": "Get the current time in a given IANA timezone",
            "parameters": {
                "type": "object",
                "properties": {
                    "timezone": {"type": "string", "description": "IANA timezone name, e.g. Europe/Paris"}
                },
                "required": ["timezone"],
            },
        },
    }
]
TOOL_PROMPT: list[Any] = [
    {"role": "system", "content": "You are a helpful assistant. Use the provided tools when they help."},
    {"role": "user", "content": "What time is it now in Seoul, South Korea?"},
]


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    seconds: float
    required: bool  # a failure makes `check` exit non-zero


@dataclass(frozen=True)
class CheckReport:
    base_url: str
    model: str
    results: list[CheckResult]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results if r.required)


def _tool_call_ok(name: str | None, arguments: str) -> tuple[bool, str]:
    try:
        args = json.loads(arguments or "")
    except ValueError:
        return False, f"{name}({arguments!r}): arguments are not valid JSON"
    call = f"{name}({json.dumps(args)})"
    if name != TOOL_NAME:
        return False, f"called {call}, expected {TOOL_NAME}"
    if not isinstance(args, dict) or not isinstance(args.get("timezone"), str):
        return False, f"{call}: no string 'timezone' argument"
    return True, call


class Checker:
    def __init__(self, client: AsyncOpenAI, model: str, max_tokens: int = 96) -> None:
        self.client = client
        self.model = model
        self.max_tokens = max_tokens

    async def models(self) -> tuple[bool, str]:
        ids = [m.id async for m in self.client.models.list()]
        return bool(ids), ", ".join(ids) or "no models listed"

    async def plain(self) -> tuple[bool, str]:
        r = await self.client.chat.completions.create(
            model=self.model,
            messages=[{"role": "user", "content": "Reply with one short friendly sentence."}],
            max_tokens=self.max_tokens,
            temperature=0,
        )
        text = (r.choices[0].message.content or "").strip()
        return bool(text), repr(text[:60])

    async def streamed(self) -> tuple[bool, str]:
        chunks, text = 0, ""
        stream = await self.client.chat.completions.create(
            model=self.model,
            messages=[{"role": "user", "content": "Count from 1 to 5."}],
            max_tokens=self.max_tokens,
            temperature=0,
            stream=True,
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                chunks += 1
                text += chunk.choices[0].delta.content
        return chunks > 1, f"{chunks} chunks, {text.strip()[:40]!r}"

    async def tool_call(self) -> tuple[bool, str]:
        r = await self.client.chat.completions.create(
            model=self.model, messages=TOOL_PROMPT, tools=TOOLS, max_tokens=self.max_tokens, temperature=0
        )
        calls = r.choices[0].message.tool_calls or []
        if not calls:
            return False, f"no tool call; replied {(r.choices[0].message.content or '')[:60]!r}"
        fn = getattr(calls[0], "function", None)
        return _tool_call_ok(getattr(fn, "name", None), getattr(fn, "arguments", ""))

    async def streamed_tool_call(self) -> tuple[bool, str]:
        names: dict[int, str] = {}
        args: dict[int, str] = {}
        stream = await self.client.chat.completions.create(
            model=self.model,
            messages=TOOL_PROMPT,
            tools=TOOLS,
            max_tokens=self.max_tokens,
            temperature=0,
            stream=True,
        )
        async for chunk in stream:
            for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                if tc.function and tc.function.name:
                    names[tc.index] = names.get(tc.index, "") + tc.function.name
                if tc.function and tc.function.arguments:
                    args[tc.index] = args.get(tc.index, "") + tc.function.arguments
        if not names:
            return False, "no tool call in the stream"
        first = min(names)
        return _tool_call_ok(names[first], args.get(first, ""))

    async def json_mode(self) -> tuple[bool, str]:
        r = await self.client.chat.completions.create(
            model=self.model,
            messages=[
                {"role": "system", "content": "Reply with a JSON object only."},
                {"role": "user", "content": 'Give the capital of France as {"capital": "..."}.'},
            ],
            response_format={"type": "json_object"},
            max_tokens=self.max_tokens,
            temperature=0,
        )
        text = r.choices[0].message.content or ""
        try:
            value = json.loads(text)
        except ValueError:
            return False, f"not JSON: {text[:60]!r}"
        return isinstance(value, dict), json.dumps(value)[:60]


PARAPHRASES = ["The cat sits on the mat.", "A cat is sitting on a mat.", "Stock markets fell sharply today."]
RERANK_QUERY = "What is the capital of France?"
RERANK_DOCS = [
    "The capital of France is Paris.",
    "Bananas are rich in potassium.",
    "France capital city is known for the Eiffel Tower.",
]


def _cos(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / ((sum(x * x for x in a) ** 0.5) * (sum(y * y for y in b) ** 0.5) or 1.0)


class PoolingChecker:
    """Embeddings, rerank and score: the seed's shapes, sent as its curl examples send them."""

    def __init__(
        self, client: AsyncOpenAI, http: httpx.AsyncClient, root: str, models: dict[str, str]
    ) -> None:
        self.client = client
        self.http = http
        self.root = root  # the base URL without /v1: /rerank and /score live there
        self.models = models  # capability -> model id

    async def embeddings(self) -> tuple[bool, str]:
        r = await self.client.embeddings.create(model=self.models["embedding"], input=PARAPHRASES)
        vectors = [d.embedding for d in r.data]
        near, far = _cos(vectors[0], vectors[1]), _cos(vectors[0], vectors[2])
        detail = f"{len(vectors[0])} dims; paraphrase {near:.2f} > unrelated {far:.2f}"
        return near > far, detail if near > far else detail.replace(">", "NOT >")

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = await self.http.post(self.root + path, json=body)
        data: dict[str, Any] = resp.json()
        if resp.status_code != 200:
            raise _Refused(f"HTTP {resp.status_code}: {data.get('error', {}).get('message', data)}")
        return data

    async def rerank(self) -> tuple[bool, str]:
        body = {"model": self.models["rerank"], "query": RERANK_QUERY, "documents": RERANK_DOCS, "top_n": 2}
        best = (await self._post("/rerank", body))["results"][0]
        return best["index"] == 0, f"best {RERANK_DOCS[best['index']]!r} {best['relevance_score']:.2f}"

    async def score(self) -> tuple[bool, str]:
        body = {"model": self.models["score"], "text_1": RERANK_QUERY, "text_2": RERANK_DOCS[:2]}
        scores = [d["score"] for d in (await self._post("/score", body))["data"]]
        return scores[0] > scores[1], f"answer {scores[0]:.2f}, unrelated {scores[1]:.2f}"


class _Refused(AgentTeamsError):
    """The server answered a probe with an error (its message is the probe's detail)."""


def pooling_models(entries: list[dict[str, Any]] | None) -> dict[str, str]:
    """capability -> the model listing it (the first), for the capabilities beyond chat."""
    found: dict[str, str] = {}
    for entry in entries or []:
        for cap in entry_capabilities(entry) or []:
            if cap != "chat":
                found.setdefault(cap, entry["id"])
    return found


async def _timed(name: str, probe: Callable[[], Awaitable[tuple[bool, str]]], required: bool) -> CheckResult:
    start = time.perf_counter()
    try:
        ok, detail = await probe()
    except (OpenAIError, _Refused, httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as exc:
        ok, detail = False, f"{type(exc).__name__}: {' '.join(str(exc).split())[:100]}"
    return CheckResult(name, ok, detail, time.perf_counter() - start, required)


async def run_check(base_url: str, model: str, api_key: str = "EMPTY") -> CheckReport:
    """Probe a server; `base_url` ends with /v1 and `model` is resolved."""
    # retries: llama.cpp (cpp-httplib) closes a keep-alive connection after a few requests, and
    # reusing it just then fails once with a connection error
    async with AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=2, timeout=120) as client:
        c = Checker(client, model)
        probes: list[tuple[str, Callable[[], Awaitable[tuple[bool, str]]], bool]] = [
            ("models listed", c.models, True),
            ("plain reply", c.plain, True),
            ("streamed reply", c.streamed, True),
            ("tool call", c.tool_call, True),
            ("streamed tool call", c.streamed_tool_call, True),
            ("JSON mode", c.json_mode, False),
        ]
        results = [await _timed(name, probe, required) for name, probe, required in probes]
        models = pooling_models(await list_model_entries(base_url, api_key))
        async with httpx.AsyncClient(timeout=120, trust_env=False) as http:
            pooling = PoolingChecker(client, http, base_url.removesuffix("/v1"), models)
            for cap, label, pprobe in (
                ("embedding", "embeddings", pooling.embeddings),
                ("rerank", "rerank", pooling.rerank),
                ("score", "score", pooling.score),
            ):
                if cap in models:
                    # the model goes in the detail: a wide name column folds the other details
                    probed = await _timed(label, pprobe, False)
                    results.append(replace(probed, detail=f"{models[cap]}: {probed.detail}"))
                else:
                    results.append(
                        CheckResult(label, False, f"missing: no model here lists {cap!r}", 0.0, False)
                    )
    return CheckReport(base_url, model, results)
