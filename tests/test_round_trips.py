"""Round trips a call waits for: on a distant database a call does not stop the server printing trees
(one round trip saved), on a near one it does (the printing would cost the server more). Which is
which is decided by the relay's delay against the reprinting's cost, never by this machine's speed.
On a connection straight to the server the judged statement is named, explained by name and run as
analysed: its text is parsed once per call.

A relay between pg-mcp and PostgreSQL holds what the server sends for a few milliseconds, as a
network would, and keeps the simple-protocol statements pg-mcp sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import pytest
from conftest import DemoDatabase
from factories import context_for, relayed

from pg_mcp import explore
from pg_mcp.database import session
from pg_mcp.database.session import (
    CUT_COLUMN_TREE_CHARS,
    EXPLAIN_JUDGED,
    JUDGED_NAME,
    TREE_SECONDS_PER_CHAR,
)

LOOKUP = "SELECT * FROM sales.orders WHERE id = 42"
STOP_PRINTING = "debug_print_rewritten = off"
#: No TLS through the relay, so that it can read what it passes on.
PLAIN = "sslmode=disable"
#: What the relay adds to each answer: a round trip of this many seconds, like a nearby zone's.
DELAY_SECONDS = 0.004


class DelayRelay:
    """A TCP relay to PostgreSQL that holds each chunk the server sends for `delay` seconds, in order,
    and records the text of each simple Query message the client sends."""

    def __init__(self, upstream: tuple[str, int], delay: float) -> None:
        self._upstream = upstream
        self._delay = delay
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.queries: list[str] = []
        #: The client's messages that wait for the server's answer (Query, Sync, Flush), a Query's with its
        #: text; and its Parse messages as (statement name, text), in order.
        self.exchanges: list[str] = []
        self.parsed: list[tuple[str, str]] = []
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(self._relay(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(*self._upstream)
        try:
            await asyncio.gather(
                self._pump(client_reader, server_writer, delay=0.0, record=True),
                self._pump(server_reader, client_writer, delay=self._delay, record=False),
            )
        finally:
            client_writer.transport.abort()
            server_writer.transport.abort()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, delay: float, record: bool
    ) -> None:
        pending = b""
        started = False  # the client's first message (startup) has a length and no type
        while data := await reader.read(65536):
            if delay:
                await asyncio.sleep(delay)
            if record:
                pending += data
                if not started and len(pending) >= 4:
                    startup = int.from_bytes(pending[:4], "big")
                    if len(pending) >= startup:
                        pending, started = pending[startup:], True
                if started:
                    pending = self._record(pending)
            writer.write(data)
            await writer.drain()
        writer.close()

    def _record(self, data: bytes) -> bytes:
        """Keep the Query messages complete in `data`; return what is left of an incomplete one."""
        offset = 0
        while offset + 5 <= len(data):
            length = int.from_bytes(data[offset + 1 : offset + 5], "big")
            if offset + 1 + length > len(data):
                break
            kind, body = data[offset : offset + 1], data[offset + 5 : offset + 1 + length]
            if kind == b"Q":
                self.queries.append(body.rstrip(b"\0").decode(errors="replace"))
            elif kind == b"P":
                name, text, _ = body.split(b"\0", 2)
                self.parsed.append((name.decode(), text.decode(errors="replace")))
            if kind in (b"Q", b"S", b"H"):
                self.exchanges.append(self.queries[-1] if kind == b"Q" else kind.decode())
            offset += 1 + length
        return data[offset:]


@pytest.fixture
async def relay(pg: DemoDatabase) -> AsyncIterator[DelayRelay]:
    parts = urlsplit(pg.url)
    relay = DelayRelay((parts.hostname or "127.0.0.1", parts.port or 5432), DELAY_SECONDS)
    await relay.start()
    yield relay
    await relay.close()


async def _lookups(url: str, relay: DelayRelay, calls: int) -> list[str]:
    """The simple-protocol statements sent during the last of `calls` lookups, and checks each answer."""
    ctx = context_for(url, pool_min=1, pool_max=1)
    try:
        for _ in range(calls):
            sent = len(relay.queries)
            answer = await explore.query(ctx, LOOKUP)
            assert "42" in answer.text and "1 row" in answer.text
        return relay.queries[sent:]
    finally:
        await ctx.db.close()


async def test_a_distant_database_is_not_told_to_stop_printing_trees(
    pg: DemoDatabase, relay: DelayRelay
) -> None:
    # the tree of this lookup costs far less to print again than the relay's round trip
    # (its wrapper cuts 4 of the 7 columns)
    assert (10_000 + 4 * CUT_COLUMN_TREE_CHARS) * TREE_SECONDS_PER_CHAR < DELAY_SECONDS
    sent = await _lookups(relayed(pg.url, relay.port, query=PLAIN), relay, calls=3)
    assert any(statement.startswith("BEGIN") for statement in sent)
    assert not any(STOP_PRINTING in statement for statement in sent)


async def test_a_database_nearer_than_the_reprinting_is_told_to_stop_printing_trees(
    pg: DemoDatabase, relay: DelayRelay, monkeypatch: pytest.MonkeyPatch
) -> None:
    # reprinting made dearer than any round trip: the same relay is now near
    monkeypatch.setattr(session, "TREE_SECONDS_PER_CHAR", 1.0)
    sent = await _lookups(relayed(pg.url, relay.port, query=PLAIN), relay, calls=3)
    assert any(STOP_PRINTING in statement for statement in sent)


async def test_trees_the_server_would_log_are_stopped_however_far_it_is(
    pg: DemoDatabase, relay: DelayRelay
) -> None:
    database = urlsplit(pg.url).path.lstrip("/")
    await pg.admin_execute(  # may read the table, may not keep trees out of the server's log
        f"CREATE ROLE mcp_loud LOGIN PASSWORD 'loud'; GRANT CONNECT ON DATABASE {database} TO mcp_loud; "
        "GRANT USAGE ON SCHEMA sales TO mcp_loud; GRANT SELECT ON sales.orders TO mcp_loud"
    )
    try:
        parts = urlsplit(pg.url)
        loud = urlunsplit(parts._replace(netloc=f"mcp_loud:loud@127.0.0.1:{relay.port}", query=PLAIN))
        sent = await _lookups(loud, relay, calls=3)
        assert any(STOP_PRINTING in statement for statement in sent)
    finally:
        await pg.admin_execute("DROP OWNED BY mcp_loud; DROP ROLE mcp_loud")


async def test_a_direct_connection_parses_the_judged_text_once_and_waits_for_five_answers(
    pg: DemoDatabase, relay: DelayRelay
) -> None:
    ctx = context_for(relayed(pg.url, relay.port, query=PLAIN), pool_min=1, pool_max=1)
    try:
        for _ in range(3):
            parsed = len(relay.parsed)
            answer = await explore.query(ctx, LOOKUP)
            assert "42" in answer.text and "1 row" in answer.text
    finally:
        await ctx.db.close()  # after the last call's reset
    call = relay.parsed[parsed:]
    # the statement under its name, then the value-cutting wrapper around it, described in an earlier
    # call, so parsed with the message that runs it; EXPLAIN names the statement
    assert [name for name, text in call if LOOKUP in text] == [JUDGED_NAME, ""], call
    assert ("", EXPLAIN_JUDGED) in call
    # BEGIN; Parse of the statement; its EXPLAIN; the wrapper's rows; the reset
    last_call = relay.exchanges[
        max(i for i, sent in enumerate(relay.exchanges) if sent.startswith("BEGIN")) :
    ]
    assert len(last_call) == 5, last_call
