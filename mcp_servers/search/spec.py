"""YAML models of the `knowledge` section: what to index, with which model, into which store."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GitSourceSpec(_Spec):
    """A git history: one unit per merge (with its commits and files) or per commit."""

    type: Literal["git"]
    repo: str = Field(default=".", description="Path of the repository (relative: to the current directory).")
    unit: Literal["merge", "commit"] = Field(
        default="merge",
        description="merge: one unit per merge commit with the commits it brought in; "
        "commit: one unit per commit (for repositories without merges).",
    )


class FilesSourceSpec(_Spec):
    """Text and markdown files, chunked by lines."""

    type: Literal["files"]
    paths: list[str] = Field(min_length=1, description='Glob patterns under `root`, e.g. "docs/**/*.md".')
    root: str = Field(
        default=".",
        description="Directory the patterns are relative to (relative: to the current directory).",
    )
    chunk_chars: int = Field(default=1500, ge=200, le=20000, description="Target size of one chunk.")
    max_file_bytes: int = Field(
        default=5_000_000, gt=0, description="Larger files are skipped with a warning."
    )


SourceSpec = Annotated[GitSourceSpec | FilesSourceSpec, Field(discriminator="type")]


class LocalStoreSpec(_Spec):
    """A SQLite file on this machine: needs no server."""

    type: Literal["local"] = "local"
    path: str | None = Field(
        default=None, description="Index file; default: the user cache directory, keyed by source and model."
    )


class PostgresStoreSpec(_Spec):
    """A PostgreSQL database with the pgvector extension, for indexes shared across machines."""

    type: Literal["postgres"]
    dsn: str = Field(description="libpq connection string, e.g. postgresql://user@host:5432/db")
    table: str = Field(default="knowledge", pattern=r"^[a-z_][a-z0-9_]*$", max_length=48)


StoreSpec = Annotated[LocalStoreSpec | PostgresStoreSpec, Field(discriminator="type")]


class KnowledgeSpec(_Spec):
    """A searchable knowledge base; its name is a tool agents can list (search_NAME)."""

    source: SourceSpec
    embedding_model: str | None = Field(
        default=None,
        description="A `models:` entry whose endpoint embeds; default: the bundled server's embedding model.",
    )
    rerank: bool = Field(default=False, description="Rerank the top candidates with the server's /rerank.")
    store: StoreSpec = LocalStoreSpec()
    description: str | None = Field(default=None, description="What the tool tells the model it searches.")
