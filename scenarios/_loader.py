"""Find scenario files by name, read and validate them."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from scenarios._errors import ScenarioError, from_validation_error
from scenarios._yaml import LocatedDocument, YamlProblem, parse
from scenarios.spec import ScenarioSpec, SpecProblem, did_you_mean

BUILTIN_DIR = Path(__file__).parent
SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class ScenarioInfo:
    name: str
    description: str
    path: Path
    default_task: str | None


@dataclass(frozen=True)
class LoadedSpec:
    """A valid spec with the document it came from, for errors found later (MCP start)."""

    spec: ScenarioSpec
    file: str
    doc: LocatedDocument

    def error_at(self, path: tuple[str | int, ...], message: str, *, at_key: bool = False) -> ScenarioError:
        return ScenarioError(message, file=self.file, position=self.doc.position(path, at_key=at_key))


def _search_dirs(extra: Iterable[str | os.PathLike[str]]) -> list[Path]:
    env_dirs = [p for p in os.environ.get("SCENARIOS_PATH", "").split(os.pathsep) if p]
    return [*(Path(d) for d in extra), *(Path(d) for d in env_dirs), BUILTIN_DIR]


def _files(dirs: list[Path]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for directory in dirs:
        if not directory.is_dir():
            continue
        for path in sorted(directory.iterdir()):
            if path.suffix in SUFFIXES and path.stem not in found:
                found[path.stem] = path
    return found


def scenario_path(
    name_or_path: str | os.PathLike[str], scenario_dirs: Iterable[str | os.PathLike[str]] = ()
) -> Path:
    """A scenario file from a path, or from a name looked up in the scenario directories."""
    text = os.fspath(name_or_path)
    if text.endswith(SUFFIXES) or os.sep in text or "/" in text:
        path = Path(text)
        if not path.is_file():
            raise ScenarioError(f"scenario file not found: {text}")
        return path
    known = _files(_search_dirs(scenario_dirs))
    if text not in known:
        names = sorted(known)
        raise ScenarioError(
            f"no scenario named {text!r} (expected one of {', '.join(names)}{did_you_mean(text, names)})"
        )
    return known[text]


def list_scenarios(scenario_dirs: Iterable[str | os.PathLike[str]] = ()) -> list[ScenarioInfo]:
    """Every valid scenario in the search directories; an invalid file is logged and skipped."""
    import logging

    infos = []
    for name, path in _files(_search_dirs(scenario_dirs)).items():
        try:
            loaded = read_spec(path)
        except ScenarioError as exc:
            logging.getLogger(__name__).warning("skipping scenario %s: %s", name, exc)
            continue
        infos.append(ScenarioInfo(name, loaded.spec.description, path, loaded.spec.task))
    return infos


def read_spec(path: Path, *, environ: Mapping[str, str] | None = None) -> LoadedSpec:
    """Parse and validate one file; every mistake is a ScenarioError naming file:line:col."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario file: {exc.strerror}", file=file) from exc
    try:
        doc = parse(text, os.environ if environ is None else environ)
    except YamlProblem as exc:
        raise ScenarioError(exc.message, file=file, position=exc.position) from exc
    if not isinstance(doc.data, dict):
        raise ScenarioError("a scenario is a mapping (name:, agents:, ...)", file=file, position=(1, 1))
    try:
        spec = ScenarioSpec.model_validate(doc.data)
    except ValidationError as exc:
        raise from_validation_error(exc, ScenarioSpec, doc, file) from exc
    loaded = LoadedSpec(spec, file, doc)
    problems = spec.problems()
    if problems:
        raise _located(loaded, problems[0])
    _check_python_tools(loaded)
    return loaded


def _located(loaded: LoadedSpec, problem: SpecProblem) -> ScenarioError:
    return loaded.error_at(problem.path, problem.message, at_key=problem.at_key)


def _check_python_tools(loaded: LoadedSpec) -> None:
    if not loaded.spec.tools:
        return
    from tools import ToolImportError, build_function_tool  # builds AutoGen FunctionTools

    for name, tool in loaded.spec.tools.items():
        try:
            build_function_tool(name, tool)
        except ToolImportError as exc:
            raise loaded.error_at(("tools", name, "function"), f"tool {name!r}: {exc}") from exc
