"""Request body size limit, as plain ASGI middleware (before any parsing happens)."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._errors import error_body

__all__ = ["BodyLimitMiddleware"]


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int, max_upload_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_upload_bytes = max_upload_bytes or max_bytes  # POST /v1/files

    async def _reject(self, send: Send, size: str, limit: int) -> None:
        body = json.dumps(
            error_body(413, f"request body too large ({size} bytes; limit {limit})", "request_too_large")
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_upload_bytes if scope.get("path") == "/v1/files" else self.max_bytes
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await self._reject(send, value.decode(), limit)
                return
        # No (trustworthy) length: read the body here, up to the limit, then replay it.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                chunks_message: Message = message
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._reject(send, f"more than {limit}", limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                chunks_message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return chunks_message
            return await receive()

        await self.app(scope, replay, send)
