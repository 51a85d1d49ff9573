"""python -m gateway [--host 127.0.0.1 --port 8000 --scenarios DIR --db PATH]"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

from ._auth import KEYS_ENV, load_keys
from ._config import GatewayConfig, configure_logging, default_db_path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m gateway",
        description="Serve scenarios over an OpenAI-compatible HTTP API, with a web playground at /.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    parser.add_argument(
        "--scenarios",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="extra scenario directory (repeatable); the shipped scenarios are always served",
    )
    parser.add_argument(
        "--db",
        type=Path,
        default=None,
        metavar="PATH",
        help=f"SQLite file for threads and runs (default {default_db_path()})",
    )
    parser.add_argument(
        "--keys-file",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"bearer keys, one per line (also {KEYS_ENV}=k1,k2); none: loopback-only dev mode",
    )
    parser.add_argument(
        "--base-url", default=None, help="model server for every scenario (default: the YAML's)"
    )
    parser.add_argument("--model", default=None, help="model id for every scenario (default: the YAML's)")
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=16,
        metavar="N",
        help="concurrent runs per key before 429 (default 16)",
    )
    parser.add_argument(
        "--run-timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="a run still going after this is expired (default 600)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="run teams in N worker processes, to use N cores (default 1: in the gateway process)",
    )
    parser.add_argument("--max-body-bytes", type=int, default=1 << 20, metavar="N")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.log_level)
    try:
        keys = load_keys(args.keys_file)
    except OSError as exc:
        print(f"error: cannot read keys file: {exc}", file=sys.stderr)
        return 2
    config = GatewayConfig(
        scenario_dirs=tuple(args.scenarios),
        db_path=args.db,
        keys=tuple(keys),
        base_url=args.base_url,
        model=args.model,
        max_concurrent_per_key=args.max_concurrency,
        run_timeout_s=args.run_timeout,
        max_body_bytes=args.max_body_bytes,
        workers=args.workers,
        log_level=args.log_level,
    )
    import uvicorn

    from ._app import create_app

    # bind here so that --port 0 can report the port it got
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if family == socket.AF_INET6 else args.host
    print(f"gateway: playground http://{host}:{port}/  OpenAI base_url http://{host}:{port}/v1", flush=True)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config), log_level=args.log_level, access_log=False, timeout_graceful_shutdown=10
        )
    )
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
