"""Small git repositories with merges, built in a temp dir for the knowledge tests."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

# (branch, merge title, [(commit message, file, content)])
FEATURES = [
    (
        "auth",
        "Merge pull request #1 from dev/auth: bearer token authentication for the gateway",
        [
            ("Add bearer token check to the gateway requests", "gateway/auth.py", "def check(token): ...\n"),
            ("Reject requests with an expired API key", "gateway/keys.py", "EXPIRED = 401\n"),
        ],
    ),
    (
        "tz",
        "Merge pull request #2 from dev/tz: time zone conversion fixes",
        [("Fix daylight saving conversion for Europe/Paris", "tools/timezones.py", "PARIS = 'CET'\n")],
    ),
    (
        "cache",
        "Merge pull request #3 from dev/cache: cache embeddings in SQLite",
        [
            ("Store embedding vectors in a SQLite table", "search/cache.py", "TABLE = 'vectors'\n"),
            ("Evict the oldest cached vectors when the disk is full", "search/evict.py", "LIMIT = 10\n"),
        ],
    ),
    (
        "docs",
        "Merge pull request #4 from dev/docs: playground screenshots in the README",
        [("Document the web playground with screenshots", "README.md", "# Playground\n")],
    ),
]


@dataclass
class Repo:
    path: Path
    merges: dict[str, str]  # branch -> merge sha

    def git(self, *args: str) -> str:
        return git(self.path, *args)

    def commit_file(self, message: str, name: str, content: str) -> str:
        (self.path / name).parent.mkdir(parents=True, exist_ok=True)
        (self.path / name).write_text(content, encoding="utf-8")
        self.git("add", name)
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD").strip()

    def merge_feature(self, branch: str, title: str, commits: list[tuple[str, str, str]]) -> str:
        self.git("checkout", "-q", "-b", branch)
        for message, name, content in commits:
            self.commit_file(message, name, content)
        self.git("checkout", "-q", "main")
        self.git("merge", "-q", "--no-ff", "-m", title, branch)
        sha = self.git("rev-parse", "HEAD").strip()
        self.merges[branch] = sha
        return sha


def git(path: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Dev One",
        "GIT_AUTHOR_EMAIL": "dev@example.invalid",
        "GIT_COMMITTER_NAME": "Dev One",
        "GIT_COMMITTER_EMAIL": "dev@example.invalid",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    return subprocess.run(
        ["git", "-C", str(path), *args], capture_output=True, text=True, check=True, env=env
    ).stdout


def make_repo(path: Path) -> Repo:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    repo = Repo(path, {})
    repo.commit_file("Initial commit", "README.md", "# Project\n")
    for branch, title, commits in FEATURES:
        repo.merge_feature(branch, title, commits)
    return repo
