"""Long queries: progress for a client that asks for it, and a cancelled call's statement stopped on
the server, over stdio (a real `pg-mcp` process) and in process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager

import pytest
from conftest import DemoDatabase
from mcp import Client
from mcp_helpers import mcp_client, stdio_client, text_of

pytestmark = pytest.mark.asyncio(loop_scope="session")

#: pg_sleep is refused unless the operator allows it: these tests do, for a query of a known duration.
SLEEP_ALLOWED = ("--allow-functions", "pg_sleep")


def _client(transport: str, url: str) -> AbstractAsyncContextManager[Client]:
    """An MCP client of a server that allows pg_sleep: in process, or a `pg-mcp` process over stdio."""
    if transport == "in process":
        return mcp_client(url, allow_functions=("pg_sleep",))
    return stdio_client(url, *SLEEP_ALLOWED)


RUNNING_SLEEP = (
    "SELECT pid FROM pg_stat_activity WHERE query LIKE '%pg_sleep(%' AND query LIKE '%{marker}%' "
    "AND pid <> pg_backend_pid()"
)


@pytest.mark.parametrize("transport", ["in process", "stdio"])
async def test_a_long_query_reports_progress_to_a_client_that_asked(pg: DemoDatabase, transport: str) -> None:
    reports: list[tuple[float, str | None]] = []

    async def progress(progress: float, total: float | None, message: str | None) -> None:
        reports.append((progress, message))

    async with _client(transport, pg.url) as client:
        started = time.monotonic()
        result = await client.call_tool(
            "query", {"sql": "SELECT pg_sleep(2.5) IS NULL AS slept"}, progress_callback=progress
        )
        took = time.monotonic() - started
        quick = await client.call_tool("query", {"sql": "SELECT 1 AS one"}, progress_callback=progress)
    assert not result.is_error and not quick.is_error, text_of(result)
    assert reports, "a query of 2.5 s reports its progress"
    assert all(message and message.startswith("running for") for _, message in reports), reports
    values = [value for value, _ in reports]
    assert values == sorted(values) and len(set(values)) == len(values), "progress always increases"
    assert len(reports) <= took, "one report a second, the first after a second"


async def _until(condition: Callable[[], Awaitable[bool]], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        if time.monotonic() > deadline:
            pytest.fail(what)
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("transport", ["in process", "stdio"])
async def test_a_cancelled_call_stops_its_statement_on_the_server(pg: DemoDatabase, transport: str) -> None:
    """The client gives up on a call (`notifications/cancelled`): the server stops its statement at
    once, instead of letting it run to its timeout, and keeps serving."""
    marker = f"cancel_{transport.replace(' ', '_')}"
    running = RUNNING_SLEEP.format(marker=marker)
    async with _client(transport, pg.url) as client:
        call = asyncio.create_task(
            client.call_tool("query", {"sql": f"SELECT pg_sleep(60) IS NULL AS {marker}"})
        )
        await _until(lambda: _any(pg, running), "the slow statement never started")
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await _until(lambda: _none(pg, running), "the cancelled statement still runs on the server")
        after = await client.call_tool("query", {"sql": "SELECT 1 AS one"})
    assert not after.is_error, text_of(after)


async def _any(pg: DemoDatabase, sql: str) -> bool:
    return bool(await pg.admin_fetch(sql))


async def _none(pg: DemoDatabase, sql: str) -> bool:
    return not await pg.admin_fetch(sql)
