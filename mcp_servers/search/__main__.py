"""`python -m mcp_servers.search --path DIR | --repo PATH [--http PORT]`: an MCP search server.

Indexes text files under DIR (or a git history) on start, incrementally, into a cache
directory keyed by the path and the embedding model, then serves `search` and `get` over
stdio, or over streamable HTTP at http://127.0.0.1:PORT/mcp.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mcp_servers.search", description=__doc__)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--path", type=Path, metavar="DIR", help="index the text files under DIR")
    what.add_argument("--repo", type=Path, metavar="PATH", help="index the git history of PATH")
    parser.add_argument(
        "--unit", choices=["merge", "commit"], default="merge", help="git: one unit per merge or per commit"
    )
    parser.add_argument("--glob", action="append", metavar="PATTERN", help='files under DIR (default "**/*")')
    parser.add_argument("--http", type=int, metavar="PORT", help="serve streamable HTTP on 127.0.0.1:PORT")
    parser.add_argument(
        "--base-url", default="auto", help="embedding server (default: LLM_BASE_URL or the bundled one)"
    )
    parser.add_argument(
        "--embedding-model", default="auto", help="model id (default: the server's embedding model)"
    )
    parser.add_argument("--api-key", default="EMPTY")
    parser.add_argument("--rerank", action="store_true", help="rerank candidates with the server's /rerank")
    parser.add_argument(
        "--cache-dir", type=Path, help="where indexes live (default: the user cache directory)"
    )
    parser.add_argument("--rebuild", action="store_true", help="drop the index and embed everything again")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # stdout carries the MCP protocol on stdio: every log line goes to stderr
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    for noisy in ("httpx", "httpx2", "mcp", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from agentteams import AgentTeamsError
    from mcp_servers.search._models import ModelTarget
    from mcp_servers.search._server import ServerOptions, serve
    from mcp_servers.search.spec import FilesSourceSpec, GitSourceSpec, KnowledgeSpec

    if args.repo is not None:
        source: GitSourceSpec | FilesSourceSpec = GitSourceSpec(
            type="git", repo=str(args.repo), unit=args.unit
        )
    else:
        source = FilesSourceSpec(type="files", root=str(args.path), paths=args.glob or ["**/*"])
    options = ServerOptions(
        KnowledgeSpec(source=source, rerank=args.rerank),
        ModelTarget(args.base_url, args.embedding_model, args.api_key),
        cache_dir=args.cache_dir,
        rebuild=args.rebuild,
        http_port=args.http,
    )
    try:
        asyncio.run(serve(options))
    except AgentTeamsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
