"""Faults during a call are explained honestly, and the connection they broke is not reused."""

from __future__ import annotations

import asyncio

import pytest
from conftest import DemoDatabase
from factories import context_for, database_for, unguarded

from pg_mcp import explore
from pg_mcp.errors import DatabaseUnavailableError, QueryError, ServerBusyError

pytestmark = pytest.mark.asyncio(loop_scope="session")

LONG = "SELECT count(*) FROM generate_series(1, 300000000) AS pg_mcp_fault_test"


async def test_a_backend_terminated_during_the_query_is_explained(pg: DemoDatabase) -> None:
    explorer = context_for(pg.url)
    db = explorer.db

    async def terminate_when_running() -> None:
        for _ in range(600):
            rows = await pg.admin_fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query LIKE '%pg_mcp_fault_test%' AND state = 'active' AND pid <> pg_backend_pid()"
            )
            if rows:
                return
            await asyncio.sleep(0.05)

    try:
        killer = asyncio.create_task(terminate_when_running())
        with pytest.raises(QueryError) as caught:
            await explore.query(explorer, LONG)
        await killer
        assert "PostgreSQL closed the connection during the query" in caught.value.message
        assert "Nothing was changed" in caught.value.message and "Internal error" not in str(caught.value)
        assert (await explore.query(explorer, "SELECT 42 AS answer")).structured["rows"] == [[42]]
    finally:
        await db.close()


async def test_the_audit_line_holds_a_bounded_statement(
    pg: DemoDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    import json
    import logging

    from mcp_helpers import mcp_client

    huge = "SELECT 1 -- " + "x" * 5_000_000
    with caplog.at_level(logging.INFO, logger="pg_mcp.audit"):
        async with mcp_client(pg.url) as client:
            refused = await client.call_tool("query", {"sql": huge})
    assert refused.is_error
    [entry] = [json.loads(r.getMessage()) for r in caplog.records if r.name == "pg_mcp.audit"]
    assert entry["sql_length"] == len(huge) and len(entry["sql"]) < 25_000
    assert entry["outcome"].startswith("refused:")


async def test_sample_rows_names_its_own_argument_when_cut(pg: DemoDatabase) -> None:
    explorer = context_for(pg.url)
    try:
        output = await explore.sample_rows(explorer, "hr.departments", n=2)
    finally:
        await explorer.db.close()
    assert "cut at n=2" in output.text and "pass n up to 100" in output.text and "max_rows" not in output.text


async def test_a_quick_call_behind_slow_ones_is_told_the_server_is_busy(pg: DemoDatabase) -> None:
    """With every pooled connection held by a slow query, a new call gets a clear 'busy' answer after a
    bounded wait instead of queueing for as long as the slow ones run; slow ones are then cancelled."""
    explorer = context_for(pg.url, pool_max=1)
    db = explorer.db
    slow = [asyncio.create_task(explore.query(explorer, LONG)) for _ in range(1)]
    try:
        for _ in range(600):  # both slow queries hold their connections
            active = await pg.admin_fetch(
                "SELECT pid FROM pg_stat_activity WHERE query LIKE '%pg_mcp_fault_test%' AND state = 'active' "
                "AND pid <> pg_backend_pid()"
            )
            if len(active) == 1:
                break
            await asyncio.sleep(0.05)
        with pytest.raises(ServerBusyError) as caught:  # a pool of one keeps no connection for short calls
            await explore.query(explorer, "SELECT 1 AS quick")
        assert "The server is busy" in caught.value.message and caught.value.retryable
    finally:
        for task in slow:
            task.cancel()
        await asyncio.gather(*slow, return_exceptions=True)
        await db.close()


async def test_calls_waiting_for_a_connection_are_served_in_arrival_order(pg: DemoDatabase) -> None:
    """Forty callers that each call again as soon as answered, on one pooled connection: every call is
    served in the order it arrived. Without turns, asyncpg's queue lets a newcomer take the connection
    just handed to a waiter, and some calls are sent to the back again and again."""
    db = database_for(pg.url, pool_max=1)
    arrived: list[int] = []
    served: list[int] = []
    counter = iter(range(1_000_000))

    async def caller() -> None:
        for _ in range(10):
            number = next(counter)
            arrived.append(number)
            [row] = await db.fetch_fixed("SELECT $1::int AS n", number)
            served.append(row["n"])

    try:
        await db.connect()  # from here on a call's first wait is for its turn
        await asyncio.gather(*(caller() for _ in range(40)))
    finally:
        await db.close()
    diff = [(i, a, s) for i, (a, s) in enumerate(zip(arrived, served, strict=True)) if a != s]
    assert len(served) == 400 and served == arrived, diff[:10]


async def test_a_connection_refused_for_lack_of_slots_is_explained(pg: DemoDatabase) -> None:
    """The pool opens a second connection while the role may hold only one (as when the server's
    max_connections is full): the call is told so, like a refused first connection, never an internal
    error."""
    db = database_for(pg.url, pool_min=1, pool_max=3)
    slow_sql = "SELECT pg_sleep(2)"
    await pg.admin_fetch("ALTER ROLE mcp_reader CONNECTION LIMIT 1")
    try:
        await db.connect()  # one connection: all the role may have
        slow = asyncio.create_task(db.run_query(unguarded(slow_sql, 1)))
        await asyncio.sleep(0.3)
        with pytest.raises(DatabaseUnavailableError) as caught:
            await db.fetch_fixed("SELECT 1")
        await slow
    finally:
        await pg.admin_fetch("ALTER ROLE mcp_reader CONNECTION LIMIT -1")
        await db.close()
    assert "no free connection slots" in caught.value.message, caught.value.message
