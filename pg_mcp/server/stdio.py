"""A stdio transport without worker threads, for the SDK's `stdio_server`.

The SDK reads stdin and writes stdout through `anyio.wrap_file`, which runs every readline,
write and flush in a worker thread: about 2 ms per tool call, more than the database work.
Here the same `stdio_server` is given non-blocking asyncio pipes instead. As the SDK does, the
real stdin/stdout descriptors are moved out of reach while serving (fd 0 reads /dev/null, fd 1
goes to stderr), so stray prints from any library can never corrupt the protocol stream.
When stdin or stdout is not a pipe (a file, a terminal), the SDK's own transport is used.

A line longer than MAX_LINE_BYTES is read and thrown away piece by piece, never held whole, and
answered with a JSON-RPC parse error; the server keeps serving the lines after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import stat
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

from mcp.server.stdio import stdio_server

from pg_mcp.render.json_text import nests_deeper_than

log = logging.getLogger(__name__)

#: The longest request line accepted: far more than any real one (the guard caps SQL at 100,000
#: characters, at most 600 kB as a JSON string).
MAX_LINE_BYTES = 4 * 1024 * 1024
#: What the reader buffers before a line is taken in pieces: the bound on memory for a skipped line.
READ_LIMIT = 64 * 1024
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
#: MCP's code for a request that was cancelled before it finished.
REQUEST_CANCELLED = -32800
#: Seconds to let in-flight requests finish once stdin has closed (a first call also starts the guard and
#: the pool), before answering them as cancelled.
SHUTDOWN_GRACE = 5.0
#: The id at the start of a response the SDK writes (`{"jsonrpc":"2.0","id":…,"result"|"error"`).
_RESPONSE_ID = re.compile(r'\{"jsonrpc":"2\.0","id":(-?\d+|"(?:[^"\\]|\\.)*"),"(?:result|error)"')
#: Deeper JSON than any real message; Python's parser would recurse once per level.
MAX_JSON_DEPTH = 200


class _Lines:
    """Async iterator of decoded lines, what `stdio_server` expects of stdin; over-long lines are
    skipped and answered with a parse error on `out`."""

    def __init__(self, reader: asyncio.StreamReader, out: _Writer) -> None:
        self._reader = reader
        self._out = out
        self._initialized = False

    def __aiter__(self) -> _Lines:
        return self

    async def __anext__(self) -> str:
        while True:
            line, size = await self._read_line()
            if line is None and not size:
                await self._out.settle(SHUTDOWN_GRACE)
                raise StopAsyncIteration
            error: dict[str, Any] | None
            if line is None:
                log.warning("skipped an input line of %d bytes (the limit is %d)", size, MAX_LINE_BYTES)
                error = _error(
                    None,
                    PARSE_ERROR,
                    f"Parse error: a line of {size:,} bytes is over the {MAX_LINE_BYTES:,}-byte limit and "
                    "was skipped.",
                )
            else:
                error, message = _inspect(line)
                if error is None:
                    error = self._before_initialize(message)
                if error is None:
                    if "method" in message and message.get("id") is not None:
                        self._out.expect(message["id"])
                    return line.decode("utf-8")
                if not error:  # a blank line: nothing to answer
                    continue
            await self._out.write(json.dumps(error) + "\n")
            await self._out.flush()

    def _before_initialize(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """Requests before `initialize` are answered plainly instead of the SDK's bare -32602."""
        method = message.get("method")
        if method == "initialize":
            if not self._initialized and message.get("id") is not None:
                self._out.watch_initialize(message["id"])
            self._initialized = True
        elif not self._initialized and method not in (None, "ping") and message.get("id") is not None:
            return _error(
                message["id"],
                INVALID_REQUEST,
                "Invalid request: the session is not initialised yet; send initialize first.",
            )
        return None

    async def _read_line(self) -> tuple[bytes | None, int]:
        """The next line and its size; (None, size) for a line over the limit, (None, 0) at the end.

        `readuntil` raises LimitOverrunError, leaving the data buffered, when no newline is within
        READ_LIMIT bytes: that piece is taken out and kept only while the line is within
        MAX_LINE_BYTES, so a line of any size costs at most about MAX_LINE_BYTES of memory.
        """
        pieces: list[bytes] = []
        size = 0
        while True:
            try:
                piece = await self._reader.readuntil(b"\n")
                done = True
            except asyncio.LimitOverrunError as exc:
                piece = await self._reader.readexactly(exc.consumed)
                done = False
            except (
                asyncio.IncompleteReadError
            ) as exc:  # end of input, perhaps after a last line without newline
                piece, done = exc.partial, True
            size += len(piece)
            if size <= MAX_LINE_BYTES:
                pieces.append(piece)
            else:
                pieces.clear()
            if done:
                if size > MAX_LINE_BYTES:
                    return None, size
                return (b"".join(pieces), size) if size else (None, 0)


def invalid_message(line: bytes) -> dict[str, Any] | None:
    """The JSON-RPC 2.0 error answering a line that is not a valid message; None for a valid one, {}
    for a blank line. Checked here because the SDK drops such lines without a word, and a client
    would wait for ever."""
    return _inspect(line)[0]


def _inspect(line: bytes) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(error, message): the error for an invalid line (None when valid, {} when blank), and the
    message when valid."""
    error = _invalid(line)
    return (error, {}) if error is not None else (None, json.loads(line))


def _invalid(line: bytes) -> dict[str, Any] | None:
    text = line.strip()
    if not text:
        return {}
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        return _error(None, PARSE_ERROR, "Parse error: the line is not valid UTF-8.")
    if nests_deeper_than(decoded, MAX_JSON_DEPTH):
        return _error(None, INVALID_REQUEST, f"Invalid request: JSON nested more than {MAX_JSON_DEPTH} deep.")
    try:
        message = json.loads(decoded)
    except json.JSONDecodeError as exc:
        return _error(None, PARSE_ERROR, f"Parse error: the line is not one JSON value ({exc.msg}).")
    if not isinstance(message, dict):
        return _error(None, INVALID_REQUEST, "Invalid request: a message must be a JSON object (no batches).")
    raw_id = message.get("id")
    request_id = raw_id if isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool) else None
    if message.get("jsonrpc") != "2.0":
        return _error(request_id, INVALID_REQUEST, 'Invalid request: "jsonrpc" must be "2.0".')
    if "method" in message:
        if not isinstance(message["method"], str):
            return _error(request_id, INVALID_REQUEST, 'Invalid request: "method" must be a string.')
        if "params" in message and not isinstance(message["params"], dict):
            return _error(request_id, INVALID_REQUEST, 'Invalid request: "params" must be an object.')
        if "id" in message and raw_id is not None and request_id is None:
            return _error(None, INVALID_REQUEST, 'Invalid request: "id" must be a string or an integer.')
    elif "id" not in message or not ("result" in message or "error" in message):
        return _error(
            request_id, INVALID_REQUEST, "Invalid request: neither a request, a notification nor a response."
        )
    try:
        json.dumps(message, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return _error(
            request_id,
            INVALID_REQUEST,
            "Invalid request: a string holds an unpaired UTF-16 surrogate (e.g. \\udcff).",
        )
    return None


def _response_id(text: str) -> str | int | None:
    """The id a response answers; the SDK's compact form is matched cheaply, anything else parsed."""
    matched = _RESPONSE_ID.match(text)
    if matched:
        found: str | int = json.loads(matched.group(1))
        return found
    try:
        message = json.loads(text)
    except ValueError:
        return None
    if isinstance(message, dict) and ("result" in message or "error" in message):
        raw = message.get("id")
        return raw if isinstance(raw, (str, int)) and not isinstance(raw, bool) else None
    return None


def _error(request_id: str | int | None, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


class _Writer:
    """`write` and `flush`, what `stdio_server` expects of stdout; it also keeps track of requests
    not answered yet, so that none is left without a reply when stdin closes."""

    def __init__(
        self,
        writer: asyncio.StreamWriter,
        on_gone: Callable[[], None] = lambda: None,
        on_initialized: Callable[[], None] = lambda: None,
    ) -> None:
        self._writer = writer
        #: Called once when stdout turns out to be closed (the client died): input is ended too.
        self._on_gone = on_gone
        #: Called once, when the answer to `initialize` has been written.
        self._on_initialized: Callable[[], None] | None = on_initialized
        self._initialize_id: str | int | None = None
        self._gone = False
        self._pending: set[str | int] = set()
        self._answered_by_us: set[str | int] = set()
        self._all_answered = asyncio.Event()
        self._all_answered.set()

    def expect(self, request_id: str | int) -> None:
        self._pending.add(request_id)
        self._all_answered.clear()

    def watch_initialize(self, request_id: str | int) -> None:
        """`request_id` is the `initialize` request: its answer calls `on_initialized`."""
        self._initialize_id = request_id

    async def write(self, text: str) -> None:
        request_id = _response_id(text) if self._pending or self._answered_by_us else None
        if request_id is not None:
            if request_id in self._answered_by_us:
                return  # answered at shutdown already: a second reply would confuse the client
            self._pending.discard(request_id)
            if not self._pending:
                self._all_answered.set()
        self._send(text)
        callback = self._on_initialized
        if callback is not None and request_id is not None and request_id == self._initialize_id:
            self._on_initialized = None
            callback()

    def _send(self, text: str) -> None:
        if not self._gone and not self._writer.is_closing():
            self._writer.write(text.encode("utf-8"))

    async def settle(self, grace: float) -> None:
        """At the end of input: wait up to `grace` seconds for in-flight requests, then answer the
        rest as cancelled (the server cancels their work on the database as it exits)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all_answered.wait(), grace)
        for request_id in sorted(self._pending, key=str):
            self._answered_by_us.add(request_id)
            cancelled = _error(
                request_id, REQUEST_CANCELLED, "Cancelled: stdin closed while the request ran."
            )
            self._send(json.dumps(cancelled) + "\n")
        self._pending.clear()
        await self.flush()

    async def flush(self) -> None:
        """Send what was written; a client that is gone (its end of the pipe closed) is no error:
        its replies are dropped and the input is ended, so the server exits the ordinary way."""
        if self._gone:
            return
        try:
            await self._writer.drain()
        except (ConnectionError, OSError):
            self._gone = True
            log.info("the client closed its end of stdout; ending")
            self._on_gone()


_serving: tuple[asyncio.AbstractEventLoop, asyncio.StreamReader] | None = None
"""The loop and stdin reader of the pipe transport while it serves."""


def end_input() -> bool:
    """End the input as if stdin had closed (safe from a signal handler): in-flight requests are
    answered and the server shuts down the ordinary way. False when not serving over pipes."""
    if _serving is None:
        return False
    loop, reader = _serving
    loop.call_soon_threadsafe(reader.feed_eof)
    return True


def _is_pipe(fd: int) -> bool:
    """Pipes and sockets can be polled; files, /dev/null and terminals go to the SDK's transport."""
    mode = os.fstat(fd).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


@asynccontextmanager
async def _pipes(on_initialized: Callable[[], None]) -> AsyncIterator[tuple[_Lines, _Writer]]:
    if not (_is_pipe(0) and _is_pipe(1)):
        raise ValueError("stdin or stdout is not a pipe")
    loop = asyncio.get_running_loop()
    wire_in, wire_out = os.dup(0), os.dup(1)
    reader = asyncio.StreamReader(limit=READ_LIMIT)
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
    global _serving
    _serving = (loop, reader)
    try:
        out = _Writer(writer, on_gone=reader.feed_eof, on_initialized=on_initialized)
        yield _Lines(reader, out), out
    finally:
        _serving = None
        os.dup2(saved_in, 0)
        os.dup2(saved_out, 1)
        os.close(saved_in)
        os.close(saved_out)
        with contextlib.suppress(Exception):
            await writer.drain()
        out_transport.close()
        in_transport.close()


@asynccontextmanager
async def fast_stdio_server(
    on_initialized: Callable[[], None] = lambda: None,
) -> AsyncIterator[tuple[Any, Any]]:
    """The SDK's `stdio_server` over non-blocking pipes; its default transport otherwise.

    `on_initialized` is called once the client has its answer to `initialize` (at once with the
    SDK's transport, which does not say): the server waits for it before it warms up.
    """
    async with contextlib.AsyncExitStack() as stack:
        try:
            stdin, stdout = await stack.enter_async_context(_pipes(on_initialized))
        except (OSError, ValueError):  # not pipes: a regular file, /dev/null or a terminal
            on_initialized()
            streams = await stack.enter_async_context(stdio_server())
        else:
            streams = await stack.enter_async_context(
                stdio_server(stdin=cast(Any, stdin), stdout=cast(Any, stdout))
            )
        yield streams
