"""`python -m scenarios`: run, list, validate scenarios and print the JSON Schema."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from agentteams import AgentTeamsError

# `--help` imports only argparse; `list`, `validate`, `schema` add pydantic and the YAML
# reader; `run` and `index` import AutoGen, openai and mcp (tests/test_quick_commands.py keeps it so).

EXIT_USER_ERROR = 2
EXIT_RUN_FAILED = 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scenarios", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a scenario by name or path")
    run.add_argument("scenario", help="a scenario name (see `list`) or a YAML file")
    run.add_argument("--task", help="the task (default: the scenario's `task:`)")
    run.add_argument("--base-url", help="model endpoint for every model (default: the scenario's, or auto)")
    run.add_argument("--model", help="model id for every model")
    run.add_argument("--api-key", help="API key for every model")
    run.add_argument("--no-stream", action="store_true", help="print whole messages, not tokens as they come")
    run.add_argument("--transcript", type=Path, metavar="FILE", help="write every event as JSON lines")
    run.add_argument("--max-messages", type=int, metavar="N", help="safety cap on agent messages")
    run.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="where files the code writes are saved (default: a new folder here)",
    )
    run.add_argument(
        "--scenarios", action="append", default=[], metavar="DIR", help="extra scenario directory"
    )
    run.add_argument("-v", "--verbose", action="store_true", help="log what happens underneath")

    lst = sub.add_parser("list", help="list the scenarios found")
    lst.add_argument("--scenarios", action="append", default=[], metavar="DIR")

    validate = sub.add_parser("validate", help="check scenario files without running them")
    validate.add_argument("paths", nargs="+", help="YAML files or scenario names")

    sub.add_parser("schema", help="print the JSON Schema of scenario files")

    index = sub.add_parser("index", help="build or refresh the knowledge bases a scenario declares")
    index.add_argument("scenario", help="a scenario name or a YAML file")
    index.add_argument("--base-url", help="embedding endpoint (default: the scenario's, or auto)")
    index.add_argument("--api-key", help="API key for the embedding endpoint")
    index.add_argument("--rebuild", action="store_true", help="drop the index and embed everything again")
    index.add_argument("--scenarios", action="append", default=[], metavar="DIR")
    return parser


class _LogFormat(logging.Formatter):
    """Progress lines plain, problems prefixed with their level, details only with -v."""

    def __init__(self, verbose: bool) -> None:
        super().__init__()
        self.verbose = verbose

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if self.verbose:
            return f"{record.levelname.lower()} {record.name}: {message}"
        return message if record.levelno <= logging.INFO else f"{record.levelname.lower()}: {message}"


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LogFormat(verbose))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    logging.getLogger("serving").setLevel(logging.INFO)
    logging.getLogger("mcp_servers.search").setLevel(logging.INFO)
    if verbose:
        logging.getLogger().setLevel(logging.INFO)
    else:
        # We report MCP start failures ourselves, in one line.
        logging.getLogger("autogen_ext.tools.mcp").setLevel(logging.CRITICAL)


async def _run(args: argparse.Namespace) -> int:
    import contextlib

    from scenarios._console import ConsoleView, TranscriptWriter
    from scenarios._runtime import load_scenario
    from teams import RunResult

    scenario = load_scenario(
        args.scenario,
        base_url=args.base_url,
        model=args.model,
        api_key=args.api_key,
        scenario_dirs=args.scenarios,
        max_messages=args.max_messages,
    )
    view = ConsoleView(stream=not args.no_stream)
    with contextlib.ExitStack() as files:
        transcript = None
        if args.transcript:
            transcript = TranscriptWriter(files.enter_context(args.transcript.open("w", encoding="utf-8")))
        view.console.print(f"[bold]{scenario.name}[/bold]: {args.task or scenario.spec.task or ''}")
        out = output_dir(args.out, scenario.name) if scenario.spec.uses_code() else None
        if out is not None:
            view.console.print(f"Files go to {out}", highlight=False)
        async with scenario:
            result: RunResult | None = None
            async for event in scenario.run_stream(args.task, output_dir=out):
                view.show(event)
                if transcript:
                    transcript.write(event)
                if isinstance(event, RunResult):
                    result = event
    return 0 if result is not None else EXIT_RUN_FAILED


def output_dir(given: Path | None, name: str) -> Path:
    """`--out DIR`, or a new folder `NAME-output-N` in the current directory."""
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        return given
    n = 1
    while (candidate := Path(f"{name}-output-{n}")).exists():
        n += 1
    candidate.mkdir()
    return candidate


def _validate(paths: Sequence[str]) -> int:
    from scenarios._errors import ScenarioError
    from scenarios._loader import read_spec, scenario_path

    failed = 0
    for name in paths:
        try:
            loaded = read_spec(scenario_path(name))
        except ScenarioError as exc:
            print(exc.line(), file=sys.stderr)
            failed += 1
            continue
        spec = loaded.spec
        team = spec.effective_team()
        print(f"{loaded.file}: ok ({spec.name}: {len(spec.agents)} agents, {team.type} team)")
    return EXIT_USER_ERROR if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from scenarios._loader import list_scenarios
    from scenarios.spec import json_schema

    try:
        if args.command == "list":
            for info in list_scenarios(args.scenarios):
                print(f"{info.name:<20} {info.description}")
            return 0
        if args.command == "validate":
            return _validate(args.paths)
        if args.command == "schema":
            print(json.dumps(json_schema(), indent=2))
            return 0
    except AgentTeamsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    return _run_command(args)


def _run_command(args: argparse.Namespace) -> int:
    import asyncio

    from rich.console import Console

    try:
        if args.command == "index":
            from scenarios._knowledge import index_scenario
            from scenarios._loader import read_spec, scenario_path

            _setup_logging(False)
            loaded = read_spec(scenario_path(args.scenario, args.scenarios))
            return asyncio.run(
                index_scenario(loaded, base_url=args.base_url, api_key=args.api_key, rebuild=args.rebuild)
            )
        _setup_logging(args.verbose)
        return asyncio.run(_run(args))
    except AgentTeamsError as exc:
        Console(stderr=True, highlight=False).print(
            f"[bold red]error:[/bold red] {exc}", markup=True, soft_wrap=True
        )
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a failed run: one line, the details in the log with -v
        logging.getLogger(__name__).debug("run failed", exc_info=True)
        print(f"error: run failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_RUN_FAILED
