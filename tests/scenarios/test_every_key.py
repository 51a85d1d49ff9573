"""Every key of every section, at any depth, misspelt: one line naming the choices and the fix.

The walk starts at ScenarioSpec and follows every field into every model it can hold (lists,
mappings, unions, the `any`/`all` nesting of termination), so a section added to the schema
is covered without touching this file.
"""

from __future__ import annotations

import io
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from ruamel.yaml import YAML

from scenarios import ScenarioError, ScenarioSpec
from scenarios._loader import read_spec

Segment = str | int


def _unwrap(annotation: Any) -> Any:
    while get_origin(annotation) is typing.Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _branches(annotation: Any) -> list[Any]:
    annotation = _unwrap(annotation)
    if get_origin(annotation) in (Union, types.UnionType):
        return [b for a in get_args(annotation) if a is not type(None) for b in _branches(a)]
    return [annotation]


def _tag(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("type")
    if field is None:
        return None
    return str(get_args(_unwrap(field.annotation))[0])


def _sample(annotation: Any, info: FieldInfo | None = None) -> Any:
    """A small value that validates against the annotation (and the field's constraints)."""
    for branch in _branches(annotation):
        for value in _candidates(branch):
            try:
                if info is not None:
                    TypeAdapter(typing.Annotated[annotation, info]).validate_python(value)
                else:
                    TypeAdapter(annotation).validate_python(value)
            except ValidationError:
                continue
            return value
    raise AssertionError(f"no sample value for {annotation!r}")


def _candidates(branch: Any) -> list[Any]:
    origin = get_origin(branch)
    if isinstance(branch, type) and issubclass(branch, BaseModel):
        return [minimal(branch)]
    if origin is Literal:
        return list(get_args(branch))
    if origin is list:
        return [[], [_sample(get_args(branch)[0])]]
    if origin is dict:
        return [{"default": _sample(get_args(branch)[1])}]
    if branch is bool:
        return [True]
    if branch in (int, float):
        return [1, 1000, 1_000_000]  # the first that meets the field's bounds
    if isinstance(branch, type) and issubclass(branch, int):  # pydantic's ByteSize: code.memory
        return ["1GiB", 1_000_000]  # the first that meets the field's bounds
    if branch is str:
        return ["x", "tools:calculator", "http://127.0.0.1:9/v1"]
    return []


def minimal(model: type[BaseModel], also: str | None = None) -> dict[str, Any]:
    """The model's required keys with sample values (and its `type:` tag, which unions need).

    With `also`, that key too. A model that needs one of its optional keys (a termination
    condition) gets the first that makes it valid.
    """
    data: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if field.is_required() or (name == "type" and _tag(model) is not None) or name == also:
            data[name] = _tag(model) if name == "type" else _sample(field.annotation, field)
    if _valid(model, data):
        return data
    for name, field in model.model_fields.items():
        if name not in data:
            extended = {**data, name: _sample(field.annotation, field)}
            if _valid(model, extended):
                return extended
    raise AssertionError(f"no minimal valid {model.__name__} with {also!r}")


def _valid(model: type[BaseModel], data: dict[str, Any]) -> bool:
    try:
        model.model_validate(data)
    except ValidationError:
        return False
    return True


@dataclass(frozen=True)
class Place:
    """Where one model sits in a scenario document: the path, and the models along the way."""

    path: tuple[Segment, ...]
    chain: tuple[tuple[type[BaseModel], str, tuple[str, ...]], ...]  # (parent, field, containers)
    model: type[BaseModel]

    @property
    def label(self) -> str:
        return ".".join(map(str, self.path)) or "scenario"


def _children(
    annotation: Any, containers: tuple[str, ...] = ()
) -> Iterator[tuple[type[BaseModel], tuple[str, ...]]]:
    for branch in _branches(annotation):
        origin = get_origin(branch)
        if isinstance(branch, type) and issubclass(branch, BaseModel):
            yield branch, containers
        elif origin is list:
            yield from _children(get_args(branch)[0], (*containers, "list"))
        elif origin is dict:
            yield from _children(get_args(branch)[1], (*containers, "dict"))


def places(root: type[BaseModel] = ScenarioSpec) -> list[Place]:
    """Every place a model can sit; a model may appear twice on one path (termination.any.0)."""
    found = [Place((), (), root)]
    stack = [found[0]]
    while stack:
        place = stack.pop()
        for name, field in place.model.model_fields.items():
            for child, containers in _children(field.annotation):
                models_on_path = [parent for parent, _, _ in place.chain] + [place.model]
                if models_on_path.count(child) >= 2:
                    continue
                steps: list[Segment] = [name, *(0 if c == "list" else "default" for c in containers)]
                new = Place((*place.path, *steps), (*place.chain, (place.model, name, containers)), child)
                found.append(new)
                stack.append(new)
    return found


def document(place: Place, leaf: dict[str, Any]) -> dict[str, Any]:
    """A minimal valid scenario with `leaf` as the mapping at `place`."""
    value: Any = leaf
    for parent, name, containers in reversed(place.chain):
        for container in reversed(containers):
            value = [value] if container == "list" else {"default": value}
        data = minimal(parent, also=name)
        data[name] = value
        value = data
    assert isinstance(value, dict)
    return value


def _typo(name: str) -> str:
    """A plausible misspelling: two inner letters swapped (or one doubled for short names)."""
    if len(name) >= 4:
        for i in [*range(len(name) // 2, len(name) - 1), *range(1, len(name) // 2)]:
            if name[i] != name[i + 1]:
                return name[:i] + name[i + 1] + name[i] + name[i + 2 :]
    return name + name[-1]


def _misspelt(mapping: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    return {(new if k == old else k): v for k, v in mapping.items()}


def _dump(data: dict[str, Any]) -> str:
    yaml = YAML()
    yaml.default_flow_style = False
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


CASES = [
    pytest.param(place, field, id=f"{place.label}:{field}")
    for place in places()
    for field in place.model.model_fields
]


def test_the_walk_reaches_every_section_and_the_termination_nesting() -> None:
    labels = {p.label for p in places()}
    assert {
        "team.termination.any.0",
        "team.termination.all.0",
        "agents.0.context",
        "mcp_servers.default",
    } <= labels
    models = {p.model.__name__ for p in places()}
    assert {"ModelOptions", "ModelInfoSpec", "StdioServerSpec", "HttpServerSpec", "PythonToolSpec"} <= models


@pytest.mark.parametrize(("place", "field"), CASES)
def test_a_misspelt_key_names_the_choices_and_the_right_one(place: Place, field: str, tmp_path: Path) -> None:
    leaf = minimal(place.model, also=field)
    valid = document(place, leaf)
    ScenarioSpec.model_validate(valid)  # the file is valid before the typo

    typo = _typo(field)
    path = tmp_path / "scenario.yaml"
    text = _dump(document(place, _misspelt(leaf, field, typo)))
    path.write_text(text)
    with pytest.raises(ScenarioError) as caught:
        read_spec(path)
    line = str(caught.value)

    row = next(i for i, t in enumerate(text.splitlines()) if t.lstrip(" -").startswith(f"{typo}:"))
    col = text.splitlines()[row].index(typo)
    assert line.startswith(f"{path}:{row + 1}:{col + 1}: unknown key {typo!r} in "), line
    assert f"did you mean {field!r}?" in line, line
    expected = line.split("(expected one of ", 1)[1].split(";")[0].split(", ")
    assert set(place.model.model_fields) <= set(expected), line


TAGGED = [p for p in places() if _tag(p.model) is not None and p.model.model_fields["type"].is_required()]
VARIANT_CASES = [pytest.param(place, id=place.label + ":" + str(_tag(place.model))) for place in TAGGED]


def test_every_tagged_union_is_walked() -> None:
    assert {p.label for p in TAGGED} >= {"team", "agents.0.context", "mcp_servers.default"}


@pytest.mark.parametrize("place", VARIANT_CASES)
def test_a_misspelt_variant_names_the_choices_and_the_right_one(place: Place, tmp_path: Path) -> None:
    tag = str(_tag(place.model))
    leaf = {**minimal(place.model), "type": _typo(tag)}
    path = tmp_path / "scenario.yaml"
    text = _dump(document(place, leaf))
    path.write_text(text)
    with pytest.raises(ScenarioError) as caught:
        read_spec(path)
    line = str(caught.value)
    row = next(i for i, t in enumerate(text.splitlines()) if t.lstrip(" -").startswith(f"type: {_typo(tag)}"))
    col = text.splitlines()[row].index(_typo(tag))
    assert line.startswith(f"{path}:{row + 1}:{col + 1}: unknown {place.label} type {_typo(tag)!r} "), line
    assert f"did you mean {tag!r}?" in line, line
    parent = place.chain[-1]
    siblings = {str(_tag(m)) for m, _ in _children(parent[0].model_fields[parent[1]].annotation)}
    assert siblings <= set(line.split("(expected one of ", 1)[1].split(";")[0].split(", ")), line
