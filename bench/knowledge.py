"""Retrieval quality and speed of the knowledge code.

`python -m bench knowledge [--base-url URL | --scripted] [--units 10000]`

Builds a repository with one commit per entry of bench/_knowledge_eval.py (32 hand-written
questions, each answered by one commit), indexes it with `unit: commit`, and reports hit@1,
hit@5 and MRR for embedding search, embedding + rerank, and BM25 (bm25s) as the baseline;
then index build time per 1,000 units and query latency p50/p95 over a store of --units units.
The default endpoint is the bundled server (its embedding and rerank models); --scripted uses
the hashed bag-of-words test double instead: that checks the machinery, not retrieval quality.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench._knowledge_eval import EVAL
from bench._report import print_table, write_json
from mcp_servers.search import KnowledgeSpec, LocalStore, ModelTarget, Unit, open_knowledge
from mcp_servers.search._index import KnowledgeBase
from mcp_servers.search._store import DocumentRows, IndexMeta, Store

log = logging.getLogger(__name__)


def build_repo(path: Path) -> list[str]:
    """One commit per eval entry; returns their shas in EVAL order."""
    import os
    import subprocess

    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Bench",
        "GIT_AUTHOR_EMAIL": "bench@example.invalid",
        "GIT_COMMITTER_NAME": "Bench",
        "GIT_COMMITTER_EMAIL": "bench@example.invalid",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(path), *args], check=True, capture_output=True, text=True, env=env
        ).stdout

    path.mkdir(parents=True)
    git("init", "-q", "-b", "main")
    shas = []
    for i, (subject, body, name, _) in enumerate(EVAL):
        file = path / name
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(f"# change {i}\n", encoding="utf-8")
        git("add", name)
        git("commit", "-q", "-m", subject, "-m", body)
        shas.append(git("rev-parse", "HEAD").strip())
    return shas


def rank_of(answer: str, ranked: Sequence[str]) -> int | None:
    return ranked.index(answer) + 1 if answer in ranked else None


def scores(ranks: Sequence[int | None]) -> dict[str, float]:
    n = len(ranks)
    return {
        "hit@1": sum(1 for r in ranks if r == 1) / n,
        "hit@5": sum(1 for r in ranks if r is not None and r <= 5) / n,
        "mrr": sum(1 / r for r in ranks if r is not None) / n,
    }


def percentiles(samples: Sequence[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return statistics.median(ordered), p95


def bm25_ranker(units: Sequence[Unit]) -> Callable[[str, int], list[str]]:
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(
        bm25s.tokenize([u.embed_text() for u in units], stopwords="en", show_progress=False),
        show_progress=False,
    )
    ids = [u.id for u in units]

    def rank(query: str, k: int) -> list[str]:
        found, _ = retriever.retrieve(
            bm25s.tokenize([query], stopwords="en", show_progress=False), k=k, show_progress=False
        )
        return [ids[int(i)] for i in found[0]]

    return rank


@contextlib.asynccontextmanager
async def endpoint(args: argparse.Namespace) -> AsyncIterator[str]:
    if not args.scripted:
        yield args.base_url
        return
    from serving._scripted_embeddings import ScriptedEmbeddings
    from serving.testing import Reply, ScriptedModelServer

    async with ScriptedModelServer(
        [Reply.text("-")], embeddings=ScriptedEmbeddings(dimension=args.dimension)
    ) as server:
        yield server.base_url


def fill_store(store: Store, meta: IndexMeta, n: int, dimension: int) -> float:
    """n synthetic one-unit documents with random unit vectors; returns seconds per 1,000 units."""
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for start in range(0, n, 500):
        vectors = rng.standard_normal((min(500, n - start), dimension)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        rows = []
        for j, vector in enumerate(vectors):
            i = start + j
            unit = Unit(f"u{i}", f"u{i}", f"synthetic {i}", f"u{i}", f"synthetic unit {i} " * 20, {})
            rows.append(DocumentRows(unit.id, str(i), [unit], vector[None, :]))
        for k in range(0, len(rows), 32):  # as refresh() writes: one transaction per embedding batch
            store.replace_documents(meta, rows[k : k + 32])
    return (time.perf_counter() - started) / n * 1000


async def quality(kb: KnowledgeBase, shas: list[str]) -> tuple[list[list[Any]], dict[str, Any]]:
    units = [u for sha in shas for u in kb.store.units(sha)]
    bm25 = bm25_ranker(units)
    ranks: dict[str, list[int | None]] = {"embedding": [], "embedding + rerank": [], "BM25 (bm25s)": []}
    for (_, _, _, question), sha in zip(EVAL, shas, strict=True):
        ranks["embedding"].append(
            rank_of(sha, [h.unit.id for h in await kb.search(question, 5, rerank=False)])
        )
        if kb.models.reranker is not None:
            ranks["embedding + rerank"].append(
                rank_of(sha, [h.unit.id for h in await kb.search(question, 5)])
            )
        ranks["BM25 (bm25s)"].append(rank_of(sha, bm25(question, 5)))
    rows: list[list[Any]] = []
    data: dict[str, Any] = {}
    for method, found in ranks.items():
        if not found:
            rows.append([method, "n/a: the server's only reranker is its embedding model", "", ""])
            continue
        s = scores(found)
        data[method] = s
        rows.append([method, s["hit@1"], s["hit@5"], s["mrr"]])
    return rows, data


async def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="bench-knowledge-") as tmp:
        root = Path(tmp)
        shas = await asyncio.to_thread(build_repo, root / "repo")
        spec = KnowledgeSpec.model_validate(
            {"source": {"type": "git", "repo": str(root / "repo"), "unit": "commit"}, "rerank": True}
        )
        async with endpoint(args) as base_url:
            started = time.perf_counter()
            async with open_knowledge(
                "eval", spec, ModelTarget(base_url), cache_dir=root / "cache", index=False
            ) as kb:
                open_s = time.perf_counter() - started
                started = time.perf_counter()
                await kb.refresh()
                build_s = time.perf_counter() - started
                rows, quality_data = await quality(kb, shas)
                model, rerank_model = (
                    kb.models.embedder.model,
                    kb.models.reranker.model if kb.models.reranker else None,
                )
                dimension = kb.store.meta().dimension  # type: ignore[union-attr]
                print_table(
                    f"retrieval on {len(EVAL)} questions (embedding {model}, rerank {rerank_model})",
                    ["method", "hit@1", "hit@5", "MRR"],
                    rows,
                )
                # scale: a store of --units synthetic units in the model's dimension
                big = LocalStore(root / "big.sqlite")
                meta = IndexMeta(model, dimension, "synthetic")
                write_per_1000 = await asyncio.to_thread(fill_store, big, meta, args.units, dimension)
                rng = np.random.default_rng(1)
                probes = rng.standard_normal((args.queries, dimension)).astype(np.float32)
                probes /= np.linalg.norm(probes, axis=1, keepdims=True)
                big.search(probes[0], 5)  # loads the matrix, once per process
                store_ms = []
                for probe in probes:
                    t = time.perf_counter()
                    big.search(probe, 5)
                    store_ms.append((time.perf_counter() - t) * 1000)
                pg_rows = (
                    await asyncio.to_thread(postgres_speed, args, meta, dimension, probes)
                    if args.postgres
                    else []
                )
                scaled = KnowledgeBase("big", kb.source, big, kb.models)
                e2e_ms, rerank_ms = [], []
                for _, _, _, question in EVAL:
                    t = time.perf_counter()
                    await scaled.search(question, 5, rerank=False)
                    e2e_ms.append((time.perf_counter() - t) * 1000)
                    if kb.models.reranker is not None:
                        t = time.perf_counter()
                        await scaled.search(question, 5)
                        rerank_ms.append((time.perf_counter() - t) * 1000)
                big.close()
        per_1000 = build_s / len(EVAL) * 1000
        store_p = percentiles(store_ms)
        e2e_p = percentiles(e2e_ms)
        rerank_p = percentiles(rerank_ms) if rerank_ms else (float("nan"), float("nan"))
        print_table(
            f"speed (local store: SQLite + numpy, {args.units} units of {dimension} dimensions)",
            ["measure", "value"],
            [
                ["open: imports, model lookup (s, once per process)", open_s],
                ["index build, embedding included (s per 1,000 units)", per_1000],
                ["store writes only (s per 1,000 units)", write_per_1000],
                [f"store search p50 / p95 (ms, {args.units} units)", f"{store_p[0]:.2f} / {store_p[1]:.2f}"],
                [
                    f"query incl. embedding p50 / p95 (ms, {args.units} units)",
                    f"{e2e_p[0]:.1f} / {e2e_p[1]:.1f}",
                ],
                [
                    "query incl. embedding + rerank p50 / p95 (ms)",
                    f"{rerank_p[0]:.1f} / {rerank_p[1]:.1f}" if rerank_ms else "n/a",
                ],
                *pg_rows,
            ],
        )
        path = write_json(
            "knowledge",
            {
                "endpoint": "scripted test double" if args.scripted else base_url,
                "embedding_model": model,
                "rerank_model": rerank_model,
                "dimension": dimension,
                "questions": len(EVAL),
                "quality": quality_data,
                "open_s": open_s,
                "build_s_per_1000_units": per_1000,
                "store_write_s_per_1000_units": write_per_1000,
                "units": args.units,
                "store_search_ms_p50_p95": store_p,
                "query_ms_p50_p95": e2e_p,
                "query_rerank_ms_p50_p95": rerank_p,
                "postgres": {str(r[0]): r[1] for r in pg_rows},
            },
        )
        print(f"wrote {path}")
    return 0


def postgres_speed(
    args: argparse.Namespace, meta: IndexMeta, dimension: int, probes: np.ndarray
) -> list[list[Any]]:
    """The same store measures on PostgreSQL + pgvector (HNSW), in a throwaway cluster."""
    from mcp_servers.search._postgres import PostgresStore
    from tests._postgres import pgvector_bin_dir, postgres_cluster  # a source checkout's test helper

    bin_dir = pgvector_bin_dir()
    if bin_dir is None:
        return [["postgres + pgvector", "not available"]]
    with postgres_cluster(bin_dir) as cluster:
        store = PostgresStore(cluster.dsn, "bench")
        write_per_1000 = fill_store(store, meta, args.units, dimension)
        samples = []
        for probe in probes:
            t = time.perf_counter()
            store.search(probe, 5)
            samples.append((time.perf_counter() - t) * 1000)
        store.close()
    p50, p95 = percentiles(samples)
    return [
        ["pgvector: store writes (s per 1,000 units)", write_per_1000],
        [f"pgvector HNSW search p50 / p95 (ms, {args.units} units)", f"{p50:.2f} / {p95:.2f}"],
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench knowledge", description=__doc__)
    parser.add_argument("--base-url", default="auto", help="server with embedding (and rerank) models")
    parser.add_argument("--scripted", action="store_true", help="the hashed bag-of-words test double")
    parser.add_argument("--dimension", type=int, default=384, help="--scripted: vector size")
    parser.add_argument("--units", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200, help="store-only latency probes")
    parser.add_argument(
        "--postgres", action="store_true", help="also measure PostgreSQL + pgvector (checkout only)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from agentteams import AgentTeamsError

    try:
        return asyncio.run(run(args))
    except AgentTeamsError as exc:
        print(f"error: {exc}")
        return 2
