"""A call answers at its deadline even when its backend cannot be stopped.

`translate` never checks for interrupts, so statement_timeout does not stop it: a real backend
that stays busy after the call's deadline (statement_timeout + connect_timeout). The call must
answer while that backend is still running, the pool must serve the next call on a fresh
connection, and the stuck backend must end (terminated in the background).
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from conftest import DemoDatabase
from factories import database_for, unguarded

from pg_mcp.errors import QueryError
from pg_mcp.guard import CheckedQuery

pytestmark = pytest.mark.asyncio(loop_scope="session")

#: Seconds of uninterruptible CPU work on a typical machine; far past the 0.2 s deadline below.
UNINTERRUPTIBLE = (
    "SELECT translate(repeat('a', 400000), repeat('b', 1000) || 'a', repeat('c', 1000) || 'd') IS NULL"
)
STUCK = "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'SELECT translate(repeat(%'"


async def test_the_call_answers_at_its_deadline_while_its_backend_is_stuck(pg: DemoDatabase) -> None:
    database = database_for(
        pg.url, statement_timeout=0.1, connect_timeout=0.1, lock_timeout=60, pool_min=1, pool_max=1
    )
    admin = await asyncpg.connect(pg.admin_url)
    try:
        await database.connect()
        with pytest.raises(QueryError, match=r"did not finish within 0\.2 s"):
            await database.run_query(unguarded(UNINTERRUPTIBLE, 1))
        stuck = [row["pid"] for row in await admin.fetch(STUCK)]
        assert len(stuck) == 1, "the call answered while its backend was still running"
        after = await database.run_query(
            CheckedQuery(statement="x", sql="SELECT pg_backend_pid()", max_rows=1)
        )
        assert after.rows[0][0] != stuck[0], "the next call runs on a fresh connection"
        for _ in range(
            600
        ):  # the stuck backend ends once translate returns; bounded wait, no timing asserted
            if not await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", stuck[0]):
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the abandoned backend never ended")
    finally:
        await admin.close()
        await database.close()
