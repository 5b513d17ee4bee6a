"""The frames guard workers and the server exchange on a pipe: a 4-byte big-endian length and a pickled
tuple (both ends are this package, see `pg_mcp.guard.worker`)."""

from __future__ import annotations

import pickle
import struct
from typing import Any, BinaryIO

#: A frame's header: the length of its payload. Both ends of the pipe frame messages with these.
HEADER = struct.Struct(">I")


def frame(message: tuple[Any, ...]) -> bytes:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(payload)) + payload


def unframe(payload: bytes) -> tuple[Any, ...]:
    message: tuple[Any, ...] = pickle.loads(payload)
    return message


def write_frame(stream: BinaryIO, message: tuple[Any, ...]) -> None:
    stream.write(frame(message))
    stream.flush()


def read_frame(stream: BinaryIO) -> tuple[Any, ...] | None:
    """The next message, or None at end of input."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    return unframe(stream.read(HEADER.unpack(header)[0]))
