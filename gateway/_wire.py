"""Frames between the gateway and its worker processes: a 4-byte length, then a pickle.

Both ends are this package, started by the gateway itself, so pickle is safe here; it
carries the `_runner` dataclasses as they are.
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from typing import Any

__all__ = ["frame", "read_frame"]

_LENGTH = struct.Struct(">I")


def frame(message: tuple[Any, ...]) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


async def read_frame(reader: asyncio.StreamReader) -> tuple[Any, ...] | None:
    """The next message, or None at end of stream."""
    try:
        header = await reader.readexactly(_LENGTH.size)
        data = await reader.readexactly(_LENGTH.unpack(header)[0])
    except asyncio.IncompleteReadError:
        return None
    message = pickle.loads(data)
    assert isinstance(message, tuple)
    return message
