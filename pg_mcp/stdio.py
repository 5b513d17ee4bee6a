"""A stdio transport without worker threads, for the SDK's `stdio_server`.

The SDK reads stdin and writes stdout through `anyio.wrap_file`, which runs every readline,
write and flush in a worker thread: about 2 ms per tool call, more than the database work.
Here the same `stdio_server` is given non-blocking asyncio pipes instead. As the SDK does, the
real stdin/stdout descriptors are moved out of reach while serving (fd 0 reads /dev/null, fd 1
goes to stderr), so stray prints from any library can never corrupt the protocol stream.
When stdin or stdout is not a pipe (a file, a terminal), the SDK's own transport is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from mcp.server.stdio import stdio_server

MAX_LINE_BYTES = 64 * 1024 * 1024


class _Lines:
    """Async iterator of decoded lines, what `stdio_server` expects of stdin."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    def __aiter__(self) -> _Lines:
        return self

    async def __anext__(self) -> str:
        line = await self._reader.readline()
        if not line:
            raise StopAsyncIteration
        return line.decode("utf-8", errors="replace")


class _Writer:
    """`write` and `flush`, what `stdio_server` expects of stdout."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    async def write(self, text: str) -> None:
        self._writer.write(text.encode("utf-8"))

    async def flush(self) -> None:
        await self._writer.drain()


def _is_pipe(fd: int) -> bool:
    """Pipes and sockets can be polled; files, /dev/null and terminals go to the SDK's transport."""
    mode = os.fstat(fd).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


@asynccontextmanager
async def _pipes() -> AsyncIterator[tuple[_Lines, _Writer]]:
    if not (_is_pipe(0) and _is_pipe(1)):
        raise ValueError("stdin or stdout is not a pipe")
    loop = asyncio.get_running_loop()
    wire_in, wire_out = os.dup(0), os.dup(1)
    reader = asyncio.StreamReader(limit=MAX_LINE_BYTES)
    in_transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(wire_in, "rb", buffering=0)
    )
    out_transport, out_protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(wire_out, "wb", buffering=0)
    )
    writer = asyncio.StreamWriter(out_transport, out_protocol, None, loop)
    saved_in, saved_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    os.close(devnull)
    try:
        yield _Lines(reader), _Writer(writer)
    finally:
        os.dup2(saved_in, 0)
        os.dup2(saved_out, 1)
        os.close(saved_in)
        os.close(saved_out)
        with contextlib.suppress(Exception):
            await writer.drain()
        out_transport.close()
        in_transport.close()


@asynccontextmanager
async def fast_stdio_server() -> AsyncIterator[tuple[Any, Any]]:
    """The SDK's `stdio_server` over non-blocking pipes; its default transport otherwise."""
    async with contextlib.AsyncExitStack() as stack:
        try:
            stdin, stdout = await stack.enter_async_context(_pipes())
        except (OSError, ValueError):  # not pipes: a regular file, /dev/null or a terminal
            streams = await stack.enter_async_context(stdio_server())
        else:
            streams = await stack.enter_async_context(
                stdio_server(stdin=cast(Any, stdin), stdout=cast(Any, stdout))
            )
        yield streams
