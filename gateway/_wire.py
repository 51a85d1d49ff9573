"""Frames between the gateway and its worker processes: a 4-byte length, then one JSON object.

Requests:  {"op": "run", "id", "scenario", "request": RunRequest.to_json()},
           {"op": "cancel", "id"} (stop gracefully through the cancellation token),
           {"op": "abort", "id"} (cancel the task).
Replies:   {"op": "ready"}, then per run: {"op": "event", "id", "event": event.to_json()}...,
           possibly {"op": "error", "id", "kind", "message", "url"} with kind
           "unknown" | "model_server" | "failed", and always {"op": "end", "id"} last.
"""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

__all__ = ["frame", "read_frame"]

_LENGTH = struct.Struct(">I")


def frame(message: dict[str, Any]) -> bytes:
    data = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()
    return _LENGTH.pack(len(data)) + data


async def read_frame(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    """The next message, or None at end of stream."""
    try:
        header = await reader.readexactly(_LENGTH.size)
        data = await reader.readexactly(_LENGTH.unpack(header)[0])
    except asyncio.IncompleteReadError:
        return None
    message = json.loads(data)
    assert isinstance(message, dict)
    return message
