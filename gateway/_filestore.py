"""The file store behind the Files API, and the files of thread messages and runs.

Metadata lives in the gateway's database (tables `files` and `message_files`, over a second
SQLite connection: WAL lets both write); the bytes live in a directory beside it
(`<db>.files/<file id>`), so replicas sharing a database share files through a shared
directory. Every file belongs to the key that made it: another key gets 404, and each key
has a storage quota.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import os
import secrets
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from openai.types.chat import ChatCompletionChunk
from openai.types.chat.chat_completion_chunk import ChoiceDelta
from pydantic import BaseModel

from tools import InputFile, ProducedFile

from ._errors import GatewayError
from ._schemas import ImageFileContentOut, ImageFileOut, MessageOut
from ._store import RunRow, Store
from ._stream import ChunkWriter

__all__ = [
    "FileOut",
    "FileRow",
    "FileStore",
    "check_attachments",
    "files_chunk",
    "store_run_files",
    "with_files",
]

T = TypeVar("T")
_log = logging.getLogger(__name__)

PURPOSES = ("assistants", "assistants_output", "vision", "user_data")
UPLOAD_PURPOSES = ("assistants", "vision", "user_data")
Kind = Literal["attachment", "image"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,           -- the key that made it; other keys get 404
    created_at INTEGER NOT NULL,
    filename TEXT NOT NULL,
    purpose TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    media_type TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS files_key ON files(key_id, created_at);
CREATE TABLE IF NOT EXISTS message_files (
    message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    file_id TEXT NOT NULL,
    kind TEXT NOT NULL,             -- image: an image_file content part; attachment: attachments
    PRIMARY KEY (message_id, position)
);
"""


@dataclass(frozen=True)
class FileRow:
    id: str
    key_id: str
    created_at: int
    filename: str
    purpose: str
    bytes: int
    media_type: str


class FileOut(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: Literal["processed"] = "processed"
    expires_at: int | None = None
    status_details: str | None = None


class FileDeletedOut(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool = True


def file_out(row: FileRow) -> FileOut:
    return FileOut(
        id=row.id, bytes=row.bytes, created_at=row.created_at, filename=row.filename, purpose=row.purpose
    )


def _row(r: sqlite3.Row) -> FileRow:
    return FileRow(
        r["id"], r["key_id"], r["created_at"], r["filename"], r["purpose"], r["bytes"], r["media_type"]
    )


def _not_found(file_id: str) -> GatewayError:
    return GatewayError(404, f"No such File object: {file_id}", "file_not_found")


class FileStore:
    """File rows in the gateway database, bytes in `<db>.files/`. Open after the Store."""

    def __init__(self, db_path: Path | str, *, quota_bytes: int) -> None:
        self.db_path = db_path
        self.quota_bytes = quota_bytes
        if isinstance(db_path, Path):
            self.directory = db_path.with_name(db_path.name + ".files")
        else:  # an in-memory database: the bytes go with the process
            self.directory = Path(tempfile.mkdtemp(prefix="gateway-files-"))
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gateway-files")
        self._conn: sqlite3.Connection | None = None

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._with_conn, fn)

    def _with_conn(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            raise RuntimeError("file store is closed")
        with self._conn:
            return fn(self._conn)

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.db_path), check_same_thread=False, timeout=30, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys=ON")
        conn.executescript(_SCHEMA)
        conn.isolation_level = "DEFERRED"
        self._conn = conn

    async def open(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._open)

    async def close(self) -> None:
        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, close)
        self._executor.shutdown(wait=True)

    def _path(self, file_id: str) -> Path:
        return self.directory / file_id

    async def create(
        self, key_id: str, filename: str, purpose: str, data: bytes, media_type: str | None = None
    ) -> FileRow:
        file_id = f"file-{secrets.token_hex(12)}"
        media = media_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        row = FileRow(file_id, key_id, int(time.time()), filename, purpose, len(data), media)

        def insert(c: sqlite3.Connection) -> None:
            used = c.execute(
                "SELECT COALESCE(SUM(bytes), 0) FROM files WHERE key_id = ?", (key_id,)
            ).fetchone()[0]
            if used + len(data) > self.quota_bytes:
                raise GatewayError(
                    400,
                    f"file storage quota exceeded for this key: {used} bytes stored, {len(data)} more would "
                    f"pass the limit of {self.quota_bytes}; delete files first",
                    "storage_quota_exceeded",
                )
            temporary = self._path(file_id + ".partial")
            temporary.write_bytes(data)
            os.replace(temporary, self._path(file_id))
            c.execute(
                "INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?)",
                (row.id, row.key_id, row.created_at, row.filename, row.purpose, row.bytes, row.media_type),
            )

        await self._call(insert)
        return row

    async def get(self, key_id: str, file_id: str) -> FileRow:
        found = await self._call(
            lambda c: c.execute("SELECT * FROM files WHERE id = ?", (file_id,)).fetchone()
        )
        if found is None or found["key_id"] != key_id:
            raise _not_found(file_id)
        return _row(found)

    async def list_files(
        self, key_id: str, *, purpose: str | None, limit: int, order: str, after: str | None
    ) -> list[FileRow]:
        def query(c: sqlite3.Connection) -> list[sqlite3.Row]:
            sql, args = "SELECT rowid, * FROM files WHERE key_id = ?", [key_id]
            if purpose is not None:
                sql += " AND purpose = ?"
                args.append(purpose)
            if after is not None:
                mark = c.execute("SELECT rowid FROM files WHERE id = ?", (after,)).fetchone()
                if mark is not None:
                    sql += " AND rowid > ?" if order == "asc" else " AND rowid < ?"
                    args.append(mark[0])
            sql += f" ORDER BY rowid {'ASC' if order == 'asc' else 'DESC'} LIMIT ?"
            return c.execute(sql, [*args, limit]).fetchall()

        return [_row(r) for r in await self._call(query)]

    async def content(self, key_id: str, file_id: str) -> tuple[FileRow, bytes]:
        row = await self.get(key_id, file_id)
        data = await asyncio.get_running_loop().run_in_executor(
            self._executor, self._path(file_id).read_bytes
        )
        return row, data

    async def delete(self, key_id: str, file_id: str) -> None:
        await self.get(key_id, file_id)

        def remove(c: sqlite3.Connection) -> None:
            c.execute("DELETE FROM files WHERE id = ?", (file_id,))
            self._path(file_id).unlink(missing_ok=True)

        await self._call(remove)

    async def attach(self, message_id: str, files: Sequence[tuple[str, Kind]]) -> None:
        def insert(c: sqlite3.Connection) -> None:
            start = c.execute(
                "SELECT COALESCE(MAX(position), -1) + 1 FROM message_files WHERE message_id = ?",
                (message_id,),
            ).fetchone()[0]
            c.executemany(
                "INSERT INTO message_files VALUES (?, ?, ?, ?)",
                [(message_id, start + i, file_id, kind) for i, (file_id, kind) in enumerate(files)],
            )

        if files:
            await self._call(insert)

    async def of_messages(self, message_ids: Iterable[str]) -> dict[str, list[tuple[str, Kind]]]:
        ids = list(message_ids)
        if not ids:
            return {}

        def query(c: sqlite3.Connection) -> list[sqlite3.Row]:
            marks = ",".join("?" * len(ids))
            return c.execute(
                f"SELECT message_id, file_id, kind FROM message_files WHERE message_id IN ({marks}) "
                "ORDER BY message_id, position",
                ids,
            ).fetchall()

        found: dict[str, list[tuple[str, Kind]]] = {}
        for r in await self._call(query):
            found.setdefault(r["message_id"], []).append((r["file_id"], r["kind"]))
        return found

    async def inputs(self, key_id: str, message_ids: Iterable[str]) -> list[InputFile]:
        """The files attached to these messages, for the code's working directory (deleted ones skipped)."""
        attached = await self.of_messages(message_ids)
        inputs: list[InputFile] = []
        for entries in attached.values():
            for file_id, kind in entries:
                if kind != "attachment":
                    continue
                try:
                    row, data = await self.content(key_id, file_id)
                except (GatewayError, FileNotFoundError):
                    continue
                inputs.append(InputFile(os.path.basename(row.filename) or row.id, data))
        return inputs

    async def store_outputs(
        self, key_id: str, message_id: str, produced: Sequence[ProducedFile]
    ) -> list[str]:
        """Save what a run's code wrote and show it on `message_id`: images as image_file parts."""
        parts: list[tuple[str, Kind]] = []
        for f in produced:
            row = await self.create(
                key_id, os.path.basename(f.name), "assistants_output", f.data, f.media_type
            )
            parts.append((row.id, "image" if f.is_image else "attachment"))
        await self.attach(message_id, parts)
        return [file_id for file_id, _ in parts]


async def store_run_files(
    messages: Store,
    store: FileStore | None,
    run: RunRow,
    key_id: str,
    message_id: str | None,
    produced: Sequence[ProducedFile],
) -> None:
    """A thread run's files, on its final message (or a message of their own when it has none)."""
    if store is None:
        return
    if message_id is None:
        row = await messages.add_message(
            run.thread_id, "assistant", "", assistant_id=run.assistant_id, run_id=run.id
        )
        message_id = row.id
    try:
        await store.store_outputs(key_id, message_id, produced)
    except GatewayError as exc:  # over quota: the run still completes, the files are not kept
        _log.warning("run %s: files not stored: %s", run.id, exc.message)


async def store_produced(
    store: FileStore, key_id: str, produced: Sequence[ProducedFile]
) -> list[dict[str, Any]]:
    """A chat run's files, stored as the caller's, as the answer lists them (id, name, agent...)."""
    listed: list[dict[str, Any]] = []
    for f in produced:
        try:
            row = await store.create(
                key_id, os.path.basename(f.name), "assistants_output", f.data, f.media_type
            )
        except GatewayError as exc:
            _log.warning("files not stored: %s", exc.message)
            break
        listed.append(
            {
                "id": row.id,
                "filename": row.filename,
                "media_type": row.media_type,
                "bytes": row.bytes,
                "agent": f.agent,
                "execution": f.execution,
            }
        )
    return listed


async def files_chunk(
    writer: ChunkWriter, store: FileStore, key_id: str, produced: Sequence[ProducedFile]
) -> ChatCompletionChunk:
    """A streamed chat run's files: one `files` event before the answer."""
    listed = await store_produced(store, key_id, produced)
    return writer._chunk(ChoiceDelta(), agent=produced[0].agent, event={"type": "files", "files": listed})


async def with_files(store: FileStore | None, messages: list[MessageOut]) -> list[MessageOut]:
    """Messages with their image_file content parts and attachments."""
    if store is None or not messages:
        return messages
    attached = await store.of_messages(m.id for m in messages)
    shown: list[MessageOut] = []
    for m in messages:
        entries = attached.get(m.id)
        if not entries:
            shown.append(m)
            continue
        images = [ImageFileContentOut(image_file=ImageFileOut(file_id=f)) for f, k in entries if k == "image"]
        attachments = [
            {"file_id": f, "tools": [{"type": "code_interpreter"}]} for f, k in entries if k == "attachment"
        ]
        shown.append(m.model_copy(update={"content": [*images, *m.content], "attachments": attachments}))
    return shown


def attachment_ids(attachments: Sequence[Any] | None) -> list[str]:
    """The file ids of a message's `attachments` ([{file_id, tools}]), or a 400 naming the bad one."""
    ids: list[str] = []
    for i, item in enumerate(attachments or []):
        file_id = item.get("file_id") if isinstance(item, dict) else None
        if not isinstance(file_id, str) or not file_id:
            raise GatewayError(
                400, f"attachments[{i}] needs a file_id", "invalid_attachment", param=f"attachments[{i}]"
            )
        ids.append(file_id)
    return ids


async def check_attachments(
    store: FileStore | None, key_id: str, attachments: Sequence[Any] | None
) -> list[str]:
    ids = attachment_ids(attachments)
    if ids and store is None:
        raise GatewayError(400, "this gateway stores no files", "attachments_not_supported")
    for i, file_id in enumerate(ids):
        try:
            assert store is not None
            await store.get(key_id, file_id)
        except GatewayError:
            raise GatewayError(
                400, f"No such File object: {file_id}", "invalid_attachment", param=f"attachments[{i}]"
            ) from None
    return ids
