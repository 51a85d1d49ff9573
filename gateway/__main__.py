"""python -m gateway [--host 127.0.0.1 --port 8000 --scenarios DIR --db URL --processes N]
python -m gateway migrate [--db URL]"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

from ._config import KEYS_ENV, GatewayConfig, configure_logging, default_db_path


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
    _db_argument(parser)
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
        "--max-active-runs",
        type=int,
        default=256,
        metavar="N",
        help="runs this process executes at once; queued thread runs beyond it wait for any process"
        " with room (default 256)",
    )
    parser.add_argument(
        "--run-timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="a run still going after this is expired (default 600)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        metavar="N",
        help="N identical gateway processes on this port over the same database, to use N cores",
    )
    # retired: one process's own pool of team workers; --processes does its job (see README)
    parser.add_argument("--workers", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--max-body-bytes", type=int, default=1 << 20, metavar="N")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser.parse_args(argv)


def _db_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        default=None,
        metavar="URL",
        help="the database every gateway process shares: a SQLite file (PATH or sqlite:///PATH, WAL mode,"
        f" one machine) or postgresql://USER:PASS@HOST/DB (default {default_db_path()})",
    )


def _db_config(value: str | None) -> dict[str, Any]:
    if value is None:
        return {}
    return {"db_url": value} if "://" in value else {"db_path": Path(value)}


_CONFIG_ENV = "AGENTTEAMS_GATEWAY_CONFIG"  # how --processes hands the config to its processes


def _config_to_env(config: GatewayConfig) -> str:
    fields = dataclasses.asdict(config)
    fields["scenario_dirs"] = [str(p) for p in config.scenario_dirs]
    fields["db_path"] = str(config.db_path) if config.db_path is not None else None
    return json.dumps(fields)


def _config_from_env() -> GatewayConfig:
    fields = json.loads(os.environ[_CONFIG_ENV])
    fields["scenario_dirs"] = tuple(Path(p) for p in fields["scenario_dirs"])
    fields["db_path"] = Path(fields["db_path"]) if fields["db_path"] is not None else None
    fields["keys"] = tuple(fields["keys"])
    return GatewayConfig(**fields)


def app_from_environment() -> Any:
    """The app of one of --processes N (uvicorn imports this in each process)."""
    from ._app import create_app

    config = _config_from_env()
    configure_logging(config.log_level)
    return create_app(config)


def migrate_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gateway migrate",
        description="Upgrade the gateway's database to this version's schema (the gateway also does"
        " this when it starts).",
    )
    _db_argument(parser)
    args = parser.parse_args(argv)
    configure_logging("warning")
    config = GatewayConfig(**_db_config(args.db))
    from agentteams import UserError

    from ._db import connect, describe_url
    from ._schema import migrate

    async def run() -> tuple[int, int]:
        db = await connect(config.resolved_db_url())
        try:
            return await migrate(db)
        finally:
            await db.close()

    try:
        before, after = asyncio.run(run())
    except (UserError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    where = describe_url(config.resolved_db_url())
    if before == after:
        print(f"{where}: schema version {after}, up to date")
    else:
        print(f"{where}: schema upgraded from version {before} to {after}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["migrate"]:
        return migrate_main(argv[1:])
    args = parse_args(argv)
    if args.workers is not None:
        print(
            f"error: --workers was removed; use --processes {args.workers}: that many gateway processes"
            " over one database",
            file=sys.stderr,
        )
        return 2
    configure_logging(args.log_level)
    from ._auth import load_keys  # here: it imports FastAPI, which `--help` does not need

    try:
        keys = load_keys(args.keys_file)
    except OSError as exc:
        print(f"error: cannot read keys file: {exc}", file=sys.stderr)
        return 2
    config = GatewayConfig(
        scenario_dirs=tuple(args.scenarios),
        **_db_config(args.db),
        keys=tuple(keys),
        base_url=args.base_url,
        model=args.model,
        max_concurrent_per_key=args.max_concurrency,
        max_active_runs=args.max_active_runs,
        run_timeout_s=args.run_timeout,
        max_body_bytes=args.max_body_bytes,
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
    if args.processes > 1:
        from uvicorn.supervisors import Multiprocess

        # each process imports the app itself (spawned, not forked) and reads the config from here
        os.environ[_CONFIG_ENV] = _config_to_env(config)
        multi = uvicorn.Config(
            "gateway.__main__:app_from_environment",
            factory=True,
            workers=args.processes,
            log_level=args.log_level,
            access_log=False,
            timeout_graceful_shutdown=10,
        )
        Multiprocess(multi, sockets=[sock]).run()
        return 0
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config), log_level=args.log_level, access_log=False, timeout_graceful_shutdown=10
        )
    )
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
