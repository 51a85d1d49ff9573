"""`python -m bench NAME [args]`: run one benchmark; it prints a table and writes JSON."""

import importlib
import sys

BENCHMARKS = {
    "overhead": "per-turn cost of our layer over raw SDK calls and bare AutoGen; long conversations",
    "model": "the embedded model server: tok/s, TTFT, prompt layouts on travel_planning; embeddings/rerank",
    "busy_core": "the chat backend's reply time, quiet and with one core busy, per OpenMP wait setting",
    "gateway": "concurrent chat-completion runs through the HTTP gateway",
    "gateway_db": "the gateway store's hot queries: its own layer vs SQLAlchemy Core (SQLite, PostgreSQL)",
    "faults": "injected faults (model errors, hangs, drops, MCP crashes, gateway SIGKILL): how each run ends",
    "quality": "the shipped scenarios on the local model: time answers right, travel plans complete",
    "knowledge": "retrieval hit@1/hit@5/MRR (embedding, +rerank, BM25), index build time, query p50/p95",
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in BENCHMARKS:
        print("usage: python -m bench NAME [args]\n")
        for name, what in BENCHMARKS.items():
            print(f"  {name:<10} {what}")
        return 2
    module = importlib.import_module(f"bench.{argv[0]}")
    return int(module.main(argv[1:]))


sys.exit(main(sys.argv[1:]))
