"""YAML reading that remembers where every key and value came from, and ${VAR} expansion."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from agentteams import UserError

# PyYAML's composer in C (libyaml) gives every node its line and column; ruamel's round-trip
# loader did the same in pure python at ten times the cost of `scenarios validate`'s start
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SCALARS = yaml.constructor.SafeConstructor()

Path = tuple[str | int, ...]
Position = tuple[int, int]  # 1-based line and column

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class YamlProblem(UserError):
    def __init__(self, message: str, position: Position) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


@dataclass
class LocatedDocument:
    data: Any
    values: dict[Path, Position] = field(default_factory=dict)
    keys: dict[Path, Position] = field(default_factory=dict)

    def position(self, path: Path, *, at_key: bool = False) -> Position:
        """The closest known position: the value (or key) at `path`, else its nearest parent."""
        probe = path
        while probe:
            table = self.keys if at_key else self.values
            if probe in table:
                return table[probe]
            if probe in self.keys:
                return self.keys[probe]
            probe = probe[:-1]
            at_key = False
        return (1, 1)


def parse(text: str, environ: Mapping[str, str] | None = None) -> LocatedDocument:
    """Parse YAML text, expanding ${VAR} and ${VAR:-default} in string values."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        position = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise YamlProblem(f"YAML syntax error: {exc.problem or exc.context}", position) from exc
    doc = LocatedDocument(data=None)
    env = os.environ if environ is None else environ
    doc.data = None if root is None else _convert(root, (), doc, env)
    return doc


def _at(node: yaml.Node) -> Position:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _convert(node: yaml.Node, path: Path, doc: LocatedDocument, env: Mapping[str, str]) -> Any:
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(_scalar(key_node)) if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            child = (*path, key)
            if key in out:
                raise YamlProblem(f"duplicate key {key!r} (it is already set above)", _at(key_node))
            doc.keys[child] = _at(key_node)
            doc.values[child] = _at(value_node)
            out[key] = _convert(value_node, child, doc, env)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            doc.values[(*path, index)] = _at(item)
            items.append(_convert(item, (*path, index), doc, env))
        return items
    value = _scalar(node)
    return _expand(value, env, _at(node)) if isinstance(value, str) else value


def _scalar(node: yaml.Node) -> Any:
    try:
        return _SCALARS.construct_object(node)
    except yaml.constructor.ConstructorError as exc:
        raise YamlProblem(f"YAML error: {exc.problem}", _at(node)) from exc


def _expand(value: str, env: Mapping[str, str], position: Position) -> str:
    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if env.get(name):
            return env[name]
        if default is not None:
            return default
        raise YamlProblem(
            f"environment variable {name} is not set and ${{{name}}} has no default "
            f"(set {name}, or write ${{{name}:-value}})",
            position,
        )

    return _VARIABLE.sub(substitute, value)
