"""What gets indexed: documents (a commit, a merge, a file) cut into units (the embedded texts)."""

from __future__ import annotations

import functools
import glob
import hashlib
import logging
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcp_servers.search._errors import KnowledgeError
from mcp_servers.search.spec import FilesSourceSpec, GitSourceSpec, SourceSpec

log = logging.getLogger(__name__)

# Part of every git document's digest: a change to how commits become text re-embeds them.
TEXT_VERSION = "t2"

# What one unit may send to the embedding model; the whole text stays in the store for get().
EMBED_CHARS = 2000


@dataclass(frozen=True)
class Unit:
    """One searchable passage and where it comes from."""

    id: str  # commit sha, or "path:first-last" for a file chunk
    document: str  # the document it belongs to: the sha itself, or the file's path
    title: str  # commit title, or the file's path and heading
    location: str  # what a citation shows: "3f2a1b2 Fix auth", "docs/a.md:1-40"
    text: str
    meta: dict[str, Any] = field(default_factory=dict)

    def embed_text(self) -> str:
        return self.text[:EMBED_CHARS]


@dataclass(frozen=True)
class Document:
    """A thing that changes as a whole; its units are replaced together when its digest changes."""

    id: str
    digest: str
    load: Callable[[], list[Unit]]


class Source:
    """A source's documents; reading them never changes anything."""

    key: str  # identifies the source in cache paths and index metadata
    label: str  # for messages

    def documents(self) -> list[Document]:
        raise NotImplementedError


def open_source(spec: SourceSpec, base_dir: Path | None = None) -> Source:
    base = base_dir or Path.cwd()
    if isinstance(spec, GitSourceSpec):
        return GitSource((base / spec.repo).resolve(), spec.unit)
    return FileSource((base / spec.root).resolve(), spec)


# --- git -----------------------------------------------------------------------------------------

_FIELD, _RECORD = "\x1f", "\x1e"
_LOG_FORMAT = _RECORD + _FIELD.join(["%H", "%P", "%an", "%aI", "%s", "%b"]) + _FIELD


@dataclass(frozen=True)
class _Commit:
    sha: str
    parents: list[str]
    author: str
    date: str
    subject: str
    body: str
    files: list[str]


class GitSource(Source):
    def __init__(self, repo: Path, unit: str) -> None:
        self.repo = repo
        self.unit = unit
        self.key = f"git:{repo}:{unit}"
        self.label = f"git repository {repo}"

    def _git(self, *args: str) -> str:
        try:
            done = subprocess.run(
                ["git", "-C", str(self.repo), *args], capture_output=True, text=True, check=False
            )
        except FileNotFoundError as exc:
            raise KnowledgeError("git is not installed (needed to index a repository)") from exc
        if done.returncode != 0:
            raise KnowledgeError(
                f"git {args[0]} failed in {self.repo}: {done.stderr.strip().splitlines()[-1:]}"
            )
        return done.stdout

    def check(self) -> None:
        if not self.repo.is_dir():
            raise KnowledgeError(f"repository path {self.repo} is not a directory")
        probe = subprocess.run(
            ["git", "-C", str(self.repo), "rev-parse", "--git-dir"], capture_output=True, text=True
        )
        if probe.returncode != 0:
            raise KnowledgeError(f"{self.repo} is not a git repository")
        head = subprocess.run(
            ["git", "-C", str(self.repo), "rev-parse", "--verify", "-q", "HEAD"],
            capture_output=True,
            text=True,
        )
        if head.returncode != 0:
            raise KnowledgeError(f"git repository {self.repo} has no commits yet")

    def _commits(self, *rev: str) -> list[_Commit]:
        out = self._git("log", "--no-color", f"--format={_LOG_FORMAT}", "--name-only", *rev)
        commits = []
        for record in out.split(_RECORD)[1:]:
            parts = record.split(_FIELD)
            sha, parents, author, date, subject, body, rest = (parts + [""] * 7)[:7]
            files = [line for line in rest.splitlines() if line.strip()]
            commits.append(_Commit(sha, parents.split(), author, date, subject, body.strip(), files))
        return commits

    def documents(self) -> list[Document]:
        self.check()
        if self.unit == "commit":
            return [self._commit_document(c) for c in self._commits("--no-merges", "HEAD")]
        merges = self._commits("--merges", "HEAD")
        if not merges:
            raise KnowledgeError(
                f"git repository {self.repo} has no merge commits; use `unit: commit` (--unit commit) for it"
            )
        return [self._merge_document(m) for m in merges]

    def _commit_document(self, c: _Commit) -> Document:
        lines = [f"Commit {c.sha[:10]}: {c.subject}", f"Author: {c.author}  Date: {c.date}"]
        if c.body:
            lines += ["", c.body]
        if c.files:
            lines += ["", "Changed files: " + ", ".join(c.files), "Areas: " + areas(c.files)]
        unit = Unit(
            id=c.sha,
            document=c.sha,
            title=c.subject,
            location=f"{c.sha[:7]} {c.subject}",
            text="\n".join(lines),
            meta={"kind": "commit", "sha": c.sha, "author": c.author, "date": c.date, "files": c.files},
        )
        return Document(c.sha, f"{c.sha}:{TEXT_VERSION}", lambda: [unit])

    def _merge_document(self, m: _Commit) -> Document:
        def load() -> list[Unit]:
            inner = self._commits(f"{m.parents[0]}..{m.parents[1]}") if len(m.parents) > 1 else []
            lines = [f"Merge {m.sha[:10]}: {m.subject}", f"Merged by: {m.author}  Date: {m.date}"]
            if m.body:
                lines += ["", m.body]
            lines += ["", "Commits:"]
            files: list[str] = []
            for c in inner:
                lines.append(f"- {c.sha[:7]} {c.subject} ({c.author}, {c.date})")
                if c.body:
                    lines += [f"  {line}" for line in c.body.splitlines()[:6]]
                if c.files:
                    lines.append("  files: " + ", ".join(c.files))
                files += [f for f in c.files if f not in files]
            if files:
                lines.append("Areas: " + areas(files))
            meta = {
                "kind": "merge",
                "sha": m.sha,
                "author": m.author,
                "date": m.date,
                "commits": [{"sha": c.sha, "title": c.subject} for c in inner],
                "files": files,
            }
            return [Unit(m.sha, m.sha, m.subject, f"{m.sha[:7]} {m.subject}", "\n".join(lines), meta)]

        return Document(m.sha, f"{m.sha}:{TEXT_VERSION}", load)


def areas(files: list[str]) -> str:
    """Path words ("gateway/_auth.py" -> "gateway auth"): what an embedding model can match."""
    words: list[str] = []
    for name in files:
        for part in re.split(r"[/_.\-]+", name.rsplit(".", 1)[0] if "." in name.rsplit("/", 1)[-1] else name):
            if (
                part
                and part.lower() not in words
                and part.lower() not in ("py", "init", "main", "tests", "test")
            ):
                words.append(part.lower())
    return " ".join(words[:40])


# --- files ---------------------------------------------------------------------------------------

_SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv", ".mypy_cache", ".ruff_cache"}


class FileSource(Source):
    def __init__(self, root: Path, spec: FilesSourceSpec) -> None:
        self.root = root
        self.spec = spec
        self.key = f"files:{root}:{','.join(spec.paths)}"
        self.label = f"files {', '.join(spec.paths)} under {root}"

    def _paths(self) -> Iterator[Path]:
        if not self.root.is_dir():
            raise KnowledgeError(f"directory {self.root} does not exist")
        seen: set[Path] = set()
        for pattern in self.spec.paths:
            matched = False
            for name in sorted(glob.glob(pattern, root_dir=self.root, recursive=True)):
                path = self.root / name
                if any(part in _SKIP_DIRS for part in Path(name).parts) or not path.is_file():
                    continue
                matched = True
                if path not in seen:
                    seen.add(path)
                    yield path
            if not matched:
                raise KnowledgeError(f"no file matches {pattern!r} under {self.root}")

    def documents(self) -> list[Document]:
        docs = []
        for path in self._paths():
            rel = path.relative_to(self.root).as_posix()
            data = self._read(path, rel)
            if data is None:
                continue
            digest = hashlib.sha256(data.encode()).hexdigest()
            docs.append(
                Document(rel, digest, functools.partial(chunk_text, rel, data, self.spec.chunk_chars))
            )
        if not docs:
            raise KnowledgeError(f"no text file to index in {self.label}")
        return docs

    def _read(self, path: Path, rel: str) -> str | None:
        size = path.stat().st_size
        if size > self.spec.max_file_bytes:
            log.warning(
                "skipping %s: %.1f MB is over the %.1f MB limit (max_file_bytes)",
                rel,
                size / 1e6,
                self.spec.max_file_bytes / 1e6,
            )
            return None
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            log.warning("skipping %s: a binary file", rel)
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            log.warning("skipping %s: not UTF-8 (byte 0x%02x on line %d)", rel, data[exc.start], line)
            return None


def chunk_text(rel: str, text: str, chunk_chars: int) -> list[Unit]:
    """Consecutive line ranges of about chunk_chars, cut before a markdown heading where one is near.

    Chunks do not overlap, so the document is the concatenation of its chunks (get() relies on it).
    """
    lines = text.splitlines(keepends=True)
    units: list[Unit] = []
    start, size, heading = 0, 0, ""
    chunk_heading = ""

    def flush(end: int) -> None:
        nonlocal start, size, chunk_heading
        if end <= start:
            return
        body = "".join(lines[start:end])
        for i in range(0, max(len(body), 1), chunk_chars * 4):  # a giant line is cut, never sent whole
            piece = body[i : i + chunk_chars * 4]
            first, last = start + 1, end
            uid = f"{rel}:{first}-{last}" + (
                f"#{i // (chunk_chars * 4)}" if len(body) > chunk_chars * 4 else ""
            )
            title = f"{rel} § {chunk_heading}" if chunk_heading else rel
            units.append(
                Unit(
                    uid,
                    rel,
                    title,
                    f"{rel}:{first}-{last}",
                    piece,
                    {"kind": "file", "path": rel, "lines": [first, last]},
                )
            )
        start, size = end, 0
        chunk_heading = heading

    for i, line in enumerate(lines):
        is_heading = line.startswith("#") and rel.endswith((".md", ".markdown"))
        if size and (size + len(line) > chunk_chars or (is_heading and size > chunk_chars // 3)):
            flush(i)
        if is_heading:
            heading = line.strip("# \n")
            if not size:
                chunk_heading = heading
        size += len(line)
    flush(len(lines))
    return units


def default_cache_dir() -> Path:
    env = os.environ.get("AGENTTEAMS_CACHE_DIR")
    if env:
        return Path(env) / "knowledge"
    import platformdirs

    return Path(platformdirs.user_cache_dir("agentteams")) / "knowledge"
