"""User mistakes in a scenario, as one line: FILE:LINE:COL: what is wrong."""

from __future__ import annotations

import types
import typing
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from agentteams import UserError
from scenarios._yaml import LocatedDocument, Path, Position
from scenarios.spec import did_you_mean


class ScenarioError(UserError):
    """A mistake in a scenario or its use. `str()` is one line; nothing was started."""

    def __init__(self, message: str, *, file: str | None = None, position: Position | None = None) -> None:
        self.message = message
        self.file = file
        self.position = position
        super().__init__(self.line())

    def line(self) -> str:
        if self.file is None:
            return self.message
        line, col = self.position or (1, 1)
        return f"{self.file}:{line}:{col}: {self.message}"


_EXPECTED_TYPE = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "string": "a string",
    "list": "a list",
    "dict": "a mapping",
    "model": "a mapping",
    "literal": "one of the listed values",
}


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {
        dict: "mapping",
        list: "list",
        str: "string",
        bool: "boolean",
        int: "integer",
        float: "number",
    }.get(type(value), type(value).__name__)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def data_path(loc: tuple[int | str, ...], data: Any) -> Path:
    """Map a pydantic error location onto the document, dropping union tags and branch names."""
    path: list[str | int] = []
    node = data
    for i, segment in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict) and isinstance(segment, str) and segment in node:
            path.append(segment)
            node = node[segment]
        elif isinstance(node, list) and isinstance(segment, int) and 0 <= segment < len(node):
            path.append(segment)
            node = node[segment]
        elif isinstance(node, dict) and last and isinstance(segment, str):
            path.append(segment)  # a missing key
        # else: a union tag or branch name that is not in the document
    return tuple(path)


def _unwrap(annotation: Any) -> Any:
    while get_origin(annotation) is typing.Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _branches(annotation: Any) -> list[Any]:
    """The alternatives of an annotation, unions and Annotated flattened at any depth."""
    annotation = _unwrap(annotation)
    if get_origin(annotation) in (Union, types.UnionType):
        return [b for a in get_args(annotation) if a is not type(None) for b in _branches(a)]
    return [annotation]


def _models(annotation: Any) -> list[type[BaseModel]]:
    return [b for b in _branches(annotation) if isinstance(b, type) and issubclass(b, BaseModel)]


def union_tag(model: type[BaseModel]) -> list[str]:
    """The `type:` values that select `model` in a discriminated union (none if it has no tag)."""
    field = model.model_fields.get("type")
    return [str(t) for t in get_args(_unwrap(field.annotation))] if field is not None else []


def annotation_at(root: type[BaseModel], path: Path, data: Any) -> Any:
    """The type of the value at `path`, following fields, lists, dicts and tagged unions."""
    annotation: Any = root
    node = data
    for segment in path:
        model = _pick_model(annotation, node)
        if model is not None and isinstance(segment, str) and segment in model.model_fields:
            annotation = model.model_fields[segment].annotation
        else:
            container = next((b for b in _branches(annotation) if get_origin(b) in (list, dict)), None)
            if container is None:
                return None
            annotation = get_args(container)[-1]
        node = node[segment] if isinstance(node, dict | list) and _has(node, segment) else None  # type: ignore[index]
    return annotation


def model_at(root: type[BaseModel], path: Path, data: Any) -> type[BaseModel] | None:
    """The spec model describing the mapping at `path` (the branch its `type:` selects)."""
    return _pick_model(annotation_at(root, path, data), _node(data, path))


def models_at(root: type[BaseModel], path: Path, data: Any) -> list[type[BaseModel]]:
    """Every model the value at `path` may be (all branches of a union)."""
    return _models(annotation_at(root, path, data))


def _has(node: dict[str, Any] | list[Any], segment: str | int) -> bool:
    if isinstance(node, dict):
        return segment in node
    return isinstance(segment, int) and 0 <= segment < len(node)


def _pick_model(annotation: Any, node: Any) -> type[BaseModel] | None:
    models = _models(annotation)
    if len(models) > 1 and isinstance(node, dict):
        for model in models:
            if str(node.get("type")) in union_tag(model):
                return model
    return models[0] if models else None


def unknown_key(key: str, where: str, fields: list[str]) -> str:
    """The one message for a key that no model at this place has."""
    expected = f" (expected one of {', '.join(fields)}{did_you_mean(key, fields)})" if fields else ""
    return f"unknown key {key!r} in {where}{expected}"


def describe(error: ErrorDetails, root: type[BaseModel], doc: LocatedDocument) -> tuple[str, Path, bool]:
    """A one-line message for one pydantic error, and where in the document it points."""
    kind = error["type"]
    path = data_path(error["loc"], doc.data)
    key = str(path[-1]) if path else "scenario"
    where = ".".join(str(p) for p in path[:-1]) or "the scenario"
    value = error.get("input")
    ctx = error.get("ctx") or {}

    if kind == "extra_forbidden":
        model = model_at(root, path[:-1], doc.data)
        return unknown_key(key, where, list(model.model_fields) if model else []), path, True
    if kind == "missing":
        return f"missing required key {key!r} in {where}", path[:-1], True
    if kind == "union_tag_not_found":
        return _tag_not_found(root, path, doc.data)
    if kind == "union_tag_invalid":
        tags = [t.strip("'") for t in str(ctx.get("expected_tags", "")).split(", ") if t]
        field_name = key
        tag = str(ctx.get("tag", ""))
        return (
            f"unknown {'.'.join(map(str, path)) or field_name} type {tag!r} "
            f"(expected one of {', '.join(tags)}{did_you_mean(tag, tags)})",
            (*path, "type"),
            False,
        )
    if kind == "literal_error":
        choices = [
            c.strip().strip("'") for c in str(ctx.get("expected", "")).replace(" or ", ", ").split(",")
        ]
        return (
            f"bad value {_shown(value)} for {key!r} (expected one of {', '.join(choices)}"
            f"{did_you_mean(str(value), choices)})",
            path,
            False,
        )
    family = kind.split("_")[0]
    if kind.endswith(("_type", "_parsing")) and family in _EXPECTED_TYPE:
        return (
            f"wrong type for {key!r}: got {_shown(value)} ({_type_name(value)}); "
            f"expected {_EXPECTED_TYPE[family]}",
            path,
            False,
        )
    if kind == "string_pattern_mismatch" and key == "name":
        return (
            f"bad name {_shown(value)}: use letters, digits, _ and -, starting with a letter or _",
            path,
            False,
        )
    message = error["msg"].removeprefix("Value error, ")
    if kind == "value_error":
        return f"{'.'.join(map(str, path)) or 'scenario'}: {message}", path, False
    return f"bad value {_shown(value)} for {key!r}: {message}", path, False


def _tag_not_found(root: type[BaseModel], path: Path, data: Any) -> tuple[str, Path, bool]:
    """A mapping of a tagged union without `type:`: often `type` itself is misspelt."""
    branches = models_at(root, path, data)
    tags = [t for model in branches for t in union_tag(model)]
    fields = list(dict.fromkeys(f for model in branches for f in model.model_fields))
    where = ".".join(map(str, path)) or "the scenario"
    node = _node(data, path)
    keys = [str(k) for k in node] if isinstance(node, dict) else []
    unknown = [k for k in keys if k not in fields]
    typo = next((k for k in unknown if did_you_mean(k, ["type"])), None)
    if typo is not None:
        return unknown_key(typo, where, fields), (*path, typo), True
    return f"missing required key 'type' in {where} (expected one of {', '.join(tags)})", path, True


def _node(data: Any, path: Path) -> Any:
    for segment in path:
        if not isinstance(data, dict | list) or not _has(data, segment):
            return None
        data = data[segment]  # type: ignore[index]
    return data


def from_validation_error(
    exc: ValidationError, root: type[BaseModel], doc: LocatedDocument, file: str
) -> ScenarioError:
    # An unknown key is usually a typo of a required one: report the typo, not the absence.
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    # A smart union reports one error per branch; the first is the most specific one.
    message, path, at_key = describe(errors[0], root, doc)
    if len(errors) > 1 and not _same_place(errors):
        message += f" (and {len(errors) - 1} more)"
    return ScenarioError(message, file=file, position=doc.position(path, at_key=at_key))


def _same_place(errors: list[ErrorDetails]) -> bool:
    return len({tuple(e["loc"][:-1]) for e in errors}) == 1
