"""The file store behind the Files API, and the files of thread messages and runs.

Metadata lives in the gateway's database (tables `files` and `message_files`, schema step
4), read and written through the same connections as everything else. The bytes: over
PostgreSQL in the database too (`file_data`, bytea), so every replica on every machine reads
every file; over SQLite in a directory beside the database file (`<db>.files/<file id>`),
which the processes of one machine share. Every file belongs to the key that made it:
another key gets 404, and each key has a storage quota.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import mimetypes
import os
import secrets
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from openai.types.chat import ChatCompletionChunk
from openai.types.chat.chat_completion_chunk import ChoiceDelta
from pydantic import BaseModel

from tools import InputFile, ProducedFile

from ._db import Database, SqliteDatabase
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

_log = logging.getLogger(__name__)

PURPOSES = ("assistants", "assistants_output", "vision", "user_data")
UPLOAD_PURPOSES = ("assistants", "vision", "user_data")
Kind = Literal["attachment", "image"]


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


_COLUMNS = "id, key_id, created_at, filename, purpose, bytes, media_type"


def _row(r: dict[str, Any]) -> FileRow:
    return FileRow(
        r["id"], r["key_id"], r["created_at"], r["filename"], r["purpose"], r["bytes"], r["media_type"]
    )


def _not_found(file_id: str) -> GatewayError:
    return GatewayError(404, f"No such File object: {file_id}", "file_not_found")


class FileStore:
    """File rows in the gateway database; bytes there too over PostgreSQL, else in `directory`.

    `directory` defaults to `<db file>.files` beside a SQLite file."""

    def __init__(self, db: Database, *, quota_bytes: int, directory: Path | None = None) -> None:
        self.db = db
        self.quota_bytes = quota_bytes
        self.in_database = db.dialect == "postgresql"
        if directory is not None:
            self.directory: Path | None = directory
        elif self.in_database:
            self.directory = None
        elif isinstance(db, SqliteDatabase) and db.path != ":memory:":
            self.directory = Path(db.path).with_name(Path(db.path).name + ".files")
        else:  # an in-memory database: the bytes go with the process
            self.directory = Path(tempfile.mkdtemp(prefix="gateway-files-"))

    async def open(self) -> None:
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)

    async def close(self) -> None:
        pass  # the database is the Store's

    def _path(self, file_id: str) -> Path:
        assert self.directory is not None
        return self.directory / file_id

    async def create(
        self, key_id: str, filename: str, purpose: str, data: bytes, media_type: str | None = None
    ) -> FileRow:
        file_id = f"file-{secrets.token_hex(12)}"
        media = media_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        row = FileRow(file_id, key_id, int(time.time()), filename, purpose, len(data), media)
        if not self.in_database:
            await asyncio.to_thread(self._write, file_id, data)
        try:
            async with self.db.transaction() as tx:
                if self.in_database:  # the quota's sum and the insert, one key at a time
                    await tx.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (f"files:{key_id}",))
                found = await tx.execute(
                    "SELECT COALESCE(SUM(bytes), 0) AS used FROM files WHERE key_id = ?", (key_id,)
                )
                used = int(found.rows[0]["used"])
                if used + len(data) > self.quota_bytes:
                    raise GatewayError(
                        400,
                        f"file storage quota exceeded for this key: {used} bytes stored, {len(data)} more"
                        f" would pass the limit of {self.quota_bytes}; delete files first",
                        "storage_quota_exceeded",
                    )
                await tx.execute(
                    f"INSERT INTO files ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    dataclasses.astuple(row),
                )
                if self.in_database:
                    await tx.execute("INSERT INTO file_data (file_id, data) VALUES (?, ?)", (file_id, data))
        except BaseException:
            if not self.in_database:
                self._path(file_id).unlink(missing_ok=True)
            raise
        return row

    def _write(self, file_id: str, data: bytes) -> None:
        temporary = self._path(file_id + ".partial")
        temporary.write_bytes(data)
        os.replace(temporary, self._path(file_id))

    async def get(self, key_id: str, file_id: str) -> FileRow:
        found = (await self.db.execute(f"SELECT {_COLUMNS} FROM files WHERE id = ?", (file_id,))).one()
        if found is None or found["key_id"] != key_id:
            raise _not_found(file_id)
        return _row(found)

    async def list_files(
        self, key_id: str, *, purpose: str | None, limit: int, order: str, after: str | None
    ) -> list[FileRow]:
        # `rowid`: SQLite's own; on PostgreSQL an identity column of that name (schema step 4)
        sql, args = f"SELECT {_COLUMNS} FROM files WHERE key_id = ?", [key_id]
        if purpose is not None:
            sql += " AND purpose = ?"
            args.append(purpose)
        if after is not None:
            mark = (await self.db.execute("SELECT rowid AS r FROM files WHERE id = ?", (after,))).one()
            if mark is not None:
                sql += " AND rowid > ?" if order == "asc" else " AND rowid < ?"
                args.append(mark["r"])
        sql += f" ORDER BY rowid {'ASC' if order == 'asc' else 'DESC'} LIMIT ?"
        return [_row(r) for r in (await self.db.execute(sql, [*args, limit])).rows]

    async def content(self, key_id: str, file_id: str) -> tuple[FileRow, bytes]:
        row = await self.get(key_id, file_id)
        if not self.in_database:
            return row, await asyncio.to_thread(self._path(file_id).read_bytes)
        found = (await self.db.execute("SELECT data FROM file_data WHERE file_id = ?", (file_id,))).one()
        if found is None:
            raise FileNotFoundError(file_id)
        return row, bytes(found["data"])

    async def delete(self, key_id: str, file_id: str) -> None:
        await self.get(key_id, file_id)
        await self.db.execute("DELETE FROM files WHERE id = ?", (file_id,))  # file_data: cascade
        if not self.in_database:
            self._path(file_id).unlink(missing_ok=True)

    async def attach(self, message_id: str, files: Sequence[tuple[str, Kind]]) -> None:
        if not files:
            return
        async with self.db.transaction() as tx:
            found = await tx.execute(
                "SELECT COALESCE(MAX(position), -1) + 1 AS start FROM message_files WHERE message_id = ?",
                (message_id,),
            )
            start = int(found.rows[0]["start"])
            for i, (file_id, kind) in enumerate(files):
                await tx.execute(
                    "INSERT INTO message_files (message_id, position, file_id, kind) VALUES (?, ?, ?, ?)",
                    (message_id, start + i, file_id, kind),
                )

    async def of_messages(self, message_ids: Iterable[str]) -> dict[str, list[tuple[str, Kind]]]:
        ids = list(message_ids)
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        result = await self.db.execute(
            f"SELECT message_id, file_id, kind FROM message_files WHERE message_id IN ({marks}) "
            "ORDER BY message_id, position",
            ids,
        )
        found: dict[str, list[tuple[str, Kind]]] = {}
        for r in result.rows:
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
