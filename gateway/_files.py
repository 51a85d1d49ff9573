"""The Files API routes: POST /v1/files (multipart), GET list / one / content, DELETE."""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import Response

from ._auth import Caller
from ._errors import GatewayError
from ._filestore import UPLOAD_PURPOSES, FileDeletedOut, FileOut, FileStore, file_out
from ._service import caller

__all__ = ["router"]

# ---- routes ------------------------------------------------------------------------------

router = APIRouter(prefix="/v1/files")

CallerDep = Annotated[Caller, Depends(caller)]


def file_store(request: Request) -> FileStore:
    store = getattr(request.app.state, "files", None)
    assert isinstance(store, FileStore)
    return store


FilesDep = Annotated[FileStore, Depends(file_store)]


@router.post("")
async def upload_file(
    files: FilesDep,
    who: CallerDep,
    file: Annotated[UploadFile, File()],
    purpose: Annotated[str, Form()],
) -> FileOut:
    if purpose not in UPLOAD_PURPOSES:
        raise GatewayError(
            400,
            f"purpose {purpose!r} is not supported (expected one of {', '.join(UPLOAD_PURPOSES)})",
            "invalid_purpose",
            param="purpose",
        )
    data = await file.read()
    name = os.path.basename(file.filename or "") or "upload"
    media = file.content_type if file.content_type not in (None, "application/octet-stream") else None
    return file_out(await files.create(who.key_id, name, purpose, data, media))


@router.get("")
async def list_files(
    files: FilesDep,
    who: CallerDep,
    purpose: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 10000,
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
    after: str | None = None,
) -> dict[str, Any]:
    rows = await files.list_files(who.key_id, purpose=purpose, limit=limit + 1, order=order, after=after)
    items = [file_out(r) for r in rows[:limit]]
    return {
        "object": "list",
        "data": items,
        "first_id": items[0].id if items else None,
        "last_id": items[-1].id if items else None,
        "has_more": len(rows) > limit,
    }


@router.get("/{file_id}")
async def get_file(file_id: str, files: FilesDep, who: CallerDep) -> FileOut:
    return file_out(await files.get(who.key_id, file_id))


@router.get("/{file_id}/content")
async def file_content(file_id: str, files: FilesDep, who: CallerDep) -> Response:
    row, data = await files.content(who.key_id, file_id)
    quoted = row.filename.replace('"', "")
    return Response(
        data, media_type=row.media_type, headers={"content-disposition": f'attachment; filename="{quoted}"'}
    )


@router.delete("/{file_id}")
async def delete_file(file_id: str, files: FilesDep, who: CallerDep) -> FileDeletedOut:
    await files.delete(who.key_id, file_id)
    return FileDeletedOut(id=file_id)
