"""Faults during a call are explained honestly, and the connection they broke is not reused."""

from __future__ import annotations

import asyncio

import pytest
from conftest import DemoDatabase

from pg_mcp.config import load_settings
from pg_mcp.db import Database
from pg_mcp.errors import QueryError
from pg_mcp.tools import Explorer

pytestmark = pytest.mark.asyncio(loop_scope="session")

LONG = "SELECT count(*) FROM generate_series(1, 300000000) AS pg_mcp_fault_test"


async def test_a_backend_terminated_during_the_query_is_explained(pg: DemoDatabase) -> None:
    settings = load_settings({"database_url": pg.url}, dotenv=False)
    db = Database(settings)
    explorer = Explorer(settings, db)

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
            await explorer.query(LONG)
        await killer
        assert "PostgreSQL closed the connection during the query" in caught.value.message
        assert "Nothing was changed" in caught.value.message and "Internal error" not in str(caught.value)
        assert (await explorer.query("SELECT 42 AS answer")).structured["rows"] == [[42]]
    finally:
        await db.close()
