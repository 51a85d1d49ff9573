"""YAML reading that remembers where every key and value came from, and ${VAR} expansion."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from agentteams import UserError

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
    yaml = YAML(typ="rt")
    try:
        raw = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        position = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise YamlProblem(f"YAML syntax error: {exc.problem or exc.context}", position) from exc
    doc = LocatedDocument(data=None)
    env = os.environ if environ is None else environ
    doc.data = _convert(raw, (), doc, env, (1, 1))
    return doc


def _convert(node: Any, path: Path, doc: LocatedDocument, env: Mapping[str, str], here: Position) -> Any:
    if isinstance(node, CommentedMap):
        out: dict[Any, Any] = {}
        for key, value in node.items():
            key_line, key_col, value_line, value_col = node.lc.data[key]
            child = (*path, str(key))
            doc.keys[child] = (key_line + 1, key_col + 1)
            doc.values[child] = (value_line + 1, value_col + 1)
            out[str(key)] = _convert(value, child, doc, env, doc.values[child])
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for index, value in enumerate(node):
            line, col = node.lc.data[index]
            doc.values[(*path, index)] = (line + 1, col + 1)
            items.append(_convert(value, (*path, index), doc, env, (line + 1, col + 1)))
        return items
    if isinstance(node, str):
        return _expand(str(node), env, here)
    return node


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
