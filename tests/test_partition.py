"""A network partition never holds a call past its deadline.

A black-holed network closes nothing: packets just stop arriving, so whoever waits on a socket
waits until TCP gives up, minutes or hours later. `PartitionProxy` is that network between
pg-mcp and the real PostgreSQL: a TCP relay on 127.0.0.1 that, once partitioned, delivers
nothing in either direction while every socket stays open (what each side sends is held, and
delivered once healed, as TCP's retransmissions would). Each call must still answer at its
deadline (statement_timeout + connect_timeout) with an honest message, close the connection it
gave up on instead of reusing it, and the backend it left behind must end even while the
partition lasts. PostgreSQL itself is watched through a direct admin connection, never through
the proxy. The bounds below are generous outer limits for a busy machine, not timings.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from urllib.parse import urlsplit

import asyncpg
import pytest
from conftest import DemoDatabase
from factories import context_for, relayed, server_for
from mcp import Client
from mcp_helpers import password_of, text_of

from pg_mcp import explore
from pg_mcp.errors import DatabaseUnavailableError, PgMcpError, QueryError

pytestmark = pytest.mark.asyncio(loop_scope="session")

STATEMENT_TIMEOUT = 1.0
CONNECT_TIMEOUT = 1.0
#: A call's deadline by its rule, and an outer bound far above it that a hang would still pass.
DEADLINE = STATEMENT_TIMEOUT + CONNECT_TIMEOUT
OUTER_BOUND = DEADLINE + 15
#: Runs far longer than the statement timeout; the alias marks it in pg_stat_activity.
LONG = "SELECT count(*) FROM generate_series(1, 300000000) AS pg_mcp_partition_test"
LONG_BACKEND = (
    "SELECT pid FROM pg_stat_activity WHERE query LIKE '%pg_mcp_partition_test%' "
    "AND query NOT LIKE 'EXPLAIN%' AND pid <> pg_backend_pid()"
)
BACKEND = "SELECT pg_backend_pid() AS pid"


class PartitionProxy:
    """A TCP relay to PostgreSQL whose `partition()` black-holes the network until `heal()`.

    Partitioned, it delivers nothing either way and closes nothing: bytes and closes are received
    and held, so each side sees a silent peer, exactly as when packets are dropped. A new
    connection is accepted but never answered, like a SYN into the void.

    `partition_at_next_execute(marker)` partitions just after the next Execute message (type `E`, the
    extended protocol's "run the bound statement") of a statement whose text holds `marker` (and is
    not an EXPLAIN), named or not, has been passed to the server: the statement then runs on the server and
    nothing of its end gets back. `client_closes` counts
    the connections the server had answered that pg-mcp then closed, whether or not the partition
    let the close reach the server.
    """

    def __init__(self, host: str, port: int) -> None:
        self._upstream = (host, port)
        self._open = asyncio.Event()
        self._open.set()
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0
        self.client_closes = 0
        self._execute_marker: bytes | None = None
        self.partitioned = asyncio.Event()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def partition(self) -> None:
        self._open.clear()
        self.partitioned.set()

    def partition_at_next_execute(self, marker: str) -> None:
        self._execute_marker = marker.encode()

    def heal(self) -> None:
        self._open.set()
        self.partitioned.clear()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self._writers.append(client_writer)
        self._spawn(self._relay(client_reader, client_writer))

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers.append(server_writer)
        answered = asyncio.Event()  # set once the server's bytes reached the client
        await asyncio.gather(
            self._pump(client_reader, server_writer, answered, from_client=True),
            self._pump(server_reader, client_writer, answered, from_client=False),
        )

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        answered: asyncio.Event,
        *,
        from_client: bool,
    ) -> None:
        """Forward one direction; partitioned, what arrives (the end of the stream too) is held.

        The client's close is counted if the server had answered that connection: not one opened
        during the partition (such as the background request to end an abandoned backend).
        """
        held: asyncio.Queue[bytes] = asyncio.Queue()
        parsed: dict[bytes, bytes] = {}  # the text of each statement parsed on this connection, by name
        bound = b""  # the text of the statement last bound

        async def receive() -> None:
            try:
                while data := await reader.read(65536):
                    held.put_nowait(data)
            except OSError:
                pass
            if from_client and answered.is_set():
                self.client_closes += 1
            held.put_nowait(b"")

        receiving = self._spawn(receive())
        try:
            while data := await held.get():
                await self._open.wait()
                writer.write(data)
                await writer.drain()
                if not from_client:
                    answered.set()
                elif (marker := self._execute_marker) is not None:
                    for kind, body in _messages(data):
                        if kind == b"P":
                            name, text, _ = body.split(b"\0", 2)
                            parsed[name] = text
                        elif kind == b"B":
                            bound = parsed.get(body.split(b"\0", 2)[1], b"")
                        elif kind == b"E" and marker in bound and not bound.startswith(b"EXPLAIN"):
                            self._execute_marker = None
                            self.partition()
            await self._open.wait()
        except OSError:
            pass
        finally:
            receiving.cancel()
            writer.transport.abort()


#: The timeouts every database here has, behind the proxy.
TIMEOUTS = {"statement_timeout": STATEMENT_TIMEOUT, "connect_timeout": CONNECT_TIMEOUT}


@pytest.fixture
async def proxy(pg: DemoDatabase) -> AsyncIterator[PartitionProxy]:
    parts = urlsplit(pg.url)
    relay = PartitionProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await relay.start()
    yield relay
    await relay.close()


@pytest.fixture
async def admin(pg: DemoDatabase) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection to PostgreSQL, around the proxy."""
    conn = await asyncpg.connect(pg.admin_url)
    yield conn
    await conn.close()


async def _answer(call: Awaitable[object]) -> PgMcpError:
    """The error a call ends with, within OUTER_BOUND. The call is waited for, not cancelled: a
    call that hangs fails the test instead of hanging it (closing the proxy then frees it)."""
    task = asyncio.ensure_future(call)
    await asyncio.wait([task], timeout=OUTER_BOUND)
    if not task.done():
        pytest.fail(f"the call did not answer within {OUTER_BOUND:g} s of a network partition")
    try:
        task.result()
    except PgMcpError as exc:
        return exc
    pytest.fail("the call succeeded through a partitioned network")


def _messages(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """The frontend messages in one chunk the client sent: (type, body). pg-mcp writes whole messages."""
    offset = 0
    while offset + 5 <= len(data):
        length = int.from_bytes(data[offset + 1 : offset + 5], "big")
        yield data[offset : offset + 1], data[offset + 5 : offset + 1 + length]
        offset += 1 + length


async def _until(condition: Callable[[], bool | Awaitable[bool]], what: str) -> None:
    """Poll `condition()` every 0.1 s for at most 30 s; fail with `what` otherwise."""
    for _ in range(300):
        result = condition()
        if await result if inspect.isawaitable(result) else result:
            return
        await asyncio.sleep(0.1)
    pytest.fail(what)


GONE = "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $1"


async def _one_row(admin: asyncpg.Connection, sql: str) -> bool:
    return len(await admin.fetch(sql)) == 1


async def test_a_partition_during_a_running_query_answers_at_the_deadline(
    pg: DemoDatabase, proxy: PartitionProxy, admin: asyncpg.Connection
) -> None:
    context = context_for(relayed(pg.url, proxy.port), "partitioned", **TIMEOUTS)
    database = context.db
    try:
        await explore.query(context, BACKEND)  # the guard's catalog lookups are done: next comes LONG alone
        # partitioned for the rest of the test: the call, its cleanup and its backend's end
        proxy.partition_at_next_execute("pg_mcp_partition_test")
        call = asyncio.create_task(explore.query(context, LONG))
        async with asyncio.timeout(OUTER_BOUND):
            await proxy.partitioned.wait()
        # The backend reports the statement once it has read the Bind the proxy just passed on.
        await _until(lambda: _one_row(admin, LONG_BACKEND), "the long statement never started")
        [[pid]] = await admin.fetch(LONG_BACKEND)

        error = await _answer(call)
        assert isinstance(error, QueryError), error
        assert f"did not finish within {DEADLINE:g} s" in error.message and "unreachable" in str(error)
        await _until(lambda: proxy.client_closes >= 1, "the connection given up on was not closed")
        # Its backend is past statement_timeout, in an aborted transaction whose rollback cannot
        # arrive: the server ends it (idle_in_transaction_session_timeout), whatever the network does.
        await _until(lambda: admin.fetchval(GONE, pid), "the partitioned query's backend never ended")

        proxy.heal()
        [[after]] = (await explore.query(context, BACKEND)).structured["rows"]
        assert after != pid
    finally:
        proxy.heal()
        await database.close()


async def test_a_partition_while_idle_fails_the_next_call_at_its_deadline(
    pg: DemoDatabase, proxy: PartitionProxy, admin: asyncpg.Connection
) -> None:
    """The pooled connection's BEGIN is never answered: the call answers, and closes that connection
    rather than keep it checked out (with one connection in the pool, that would fail every later call)."""
    context = context_for(relayed(pg.url, proxy.port), "partitioned", **TIMEOUTS, pool_min=1, pool_max=1)
    database = context.db
    try:
        [[before]] = (await explore.query(context, BACKEND)).structured["rows"]
        proxy.partition()
        error = await _answer(explore.query(context, "SELECT 1 AS one"))
        assert isinstance(error, DatabaseUnavailableError), error
        assert "got no answer from the database at" in error.message and "nothing was run" in error.message
        await _until(lambda: proxy.client_closes >= 1, "the connection given up on was not closed")

        proxy.heal()
        [[after]] = (await explore.query(context, BACKEND)).structured["rows"]
        assert after != before
        await _until(lambda: admin.fetchval(GONE, before), "the backend given up on never ended")
    finally:
        proxy.heal()
        await database.close()


async def test_what_the_client_sees_of_a_partition_never_holds_the_password(
    pg: DemoDatabase, proxy: PartitionProxy
) -> None:
    """Through the MCP server in process: a partition from the start (no pool can be created) and one
    that begins once the pool is up; the server then shuts down while the network is still dead."""
    password = password_of(pg.url)
    server = server_for(relayed(pg.url, proxy.port), **TIMEOUTS)
    texts: list[str] = []
    proxy.partition()
    async with asyncio.timeout(4 * OUTER_BOUND):
        async with Client(server) as client:
            for sql in ("SELECT 1 AS one", LONG):
                texts.append(text_of(result := await client.call_tool("query", {"sql": sql})))
                assert result.is_error, texts[-1]
            proxy.heal()
            assert not (await client.call_tool("query", {"sql": BACKEND})).is_error
            proxy.partition()
            texts.append(text_of(result := await client.call_tool("query", {"sql": "SELECT 2 AS two"})))
            assert result.is_error and "got no answer from the database" in texts[-1], texts[-1]
    assert all(f"127.0.0.1:{proxy.port}" in text and password not in text for text in texts), texts
