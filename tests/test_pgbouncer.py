"""pg-mcp through a real PgBouncer in transaction mode: the tools work, and nothing a call does to its
backend reaches the next client of that backend (another pg-mcp, or any other application).

The PgBouncer has one server connection per database and user, so every client in these tests runs
its transactions on the same backend, one after another: whatever a call left on that backend, the
next client would see.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from conftest import DemoDatabase
from mcp_helpers import mcp_client, password_of, run_cli, text_of
from replica_helpers import PgBouncer, start_pgbouncer

#: A statement that runs far longer than a 1 s statement timeout (the plan budget is off to allow it).
SLOW = "SELECT count(*) FROM sales.order_items a CROSS JOIN sales.order_items b"
NO_BUDGET = {"max_cost": 0, "max_plan_rows": 0}

#: Settings pg-mcp sets for its own transactions, which must be back at their defaults afterwards.
SETTINGS = (
    "statement_timeout",
    "lock_timeout",
    "temp_file_limit",
    "client_connection_check_interval",
    "standard_conforming_strings",
    "transaction_read_only",
    "default_transaction_read_only",
    "search_path",
    "role",
)
SETTINGS_SQL = "SELECT " + ", ".join(f"current_setting('{name}') AS {name}" for name in SETTINGS)

#: What a call could leave behind on its backend besides settings.
LEFTOVERS_SQL = """
SELECT (SELECT count(*) FROM pg_prepared_statements) AS prepared_statements,
       (SELECT count(*) FROM pg_cursors WHERE name <> '') AS cursors,
       (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS advisory_locks,
       (SELECT count(*) FROM pg_listening_channels()) AS channels,
       current_user = session_user AS own_role
"""


@pytest.fixture(scope="module")
def bouncer(pg: DemoDatabase) -> Iterator[PgBouncer]:
    bouncer = start_pgbouncer(pg.url, pool_size=1)
    yield bouncer
    bouncer.stop()


async def _plain(url: str) -> asyncpg.Connection:
    """Another application's connection: no statement cache, which PgBouncer 1.18's transaction mode
    needs of every client (it does not track prepared statements before 1.21)."""
    return await asyncpg.connect(url, statement_cache_size=0)


async def _settings(url: str) -> dict[str, Any]:
    conn = await _plain(url)
    try:
        return dict(await conn.fetchrow(SETTINGS_SQL))
    finally:
        await conn.close()


async def test_the_tools_work_through_pgbouncer(pg: DemoDatabase, bouncer: PgBouncer) -> None:
    async with mcp_client(bouncer.url, statement_timeout=1, **NO_BUDGET) as client:
        tables = await client.call_tool("list_tables", {"schema": "hr"})
        described = await client.call_tool("describe_table", {"table": "sales.orders"})
        counted = await client.call_tool("query", {"sql": "SELECT count(*) AS n FROM hr.employees"})
        sample = await client.call_tool("sample_rows", {"table": "hr.departments", "n": 3})
        stats = await client.call_tool("column_stats", {"table": "hr.employees"})
        plan = await client.call_tool("explain", {"sql": "SELECT * FROM sales.orders WHERE customer_id = 42"})
        slow = await client.call_tool("query", {"sql": SLOW})
        after = await client.call_tool("query", {"sql": "SELECT 42 AS answer"})
    for result in (tables, described, counted, sample, stats, plan, after):
        assert not result.is_error, text_of(result)
    assert {t["name"] for t in tables.structured_content["tables"]} >= {"employees", "departments"}
    assert described.structured_content["primary_key"] == ["id"]
    assert counted.structured_content["rows"] == [[300]]
    assert sample.structured_content["row_count"] == 3
    assert "department_id integer" in text_of(stats)
    assert "orders_customer_id_idx" in text_of(plan)
    assert slow.is_error and "cancelled" in text_of(slow) and "statement timeout" in text_of(slow).lower()
    assert after.structured_content["rows"] == [[42]]


def test_check_through_pgbouncer(bouncer: PgBouncer) -> None:
    result = run_cli("check", bouncer.url)
    assert result.returncode == 0, result.stderr
    assert "Role: mcp_reader" in result.stdout and "no risks found" in result.stdout
    assert password_of(bouncer.url) not in result.stdout + result.stderr


async def test_nothing_a_call_sets_reaches_the_next_client(pg: DemoDatabase, bouncer: PgBouncer) -> None:
    defaults = await _settings(pg.url)  # a fresh session of the same role, straight to PostgreSQL
    async with mcp_client(bouncer.url, statement_timeout=1, **NO_BUDGET) as client:
        inside = await client.call_tool(
            "query", {"sql": "SELECT pg_backend_pid() AS pid, current_setting('statement_timeout') AS t"}
        )
        for _ in range(10):  # named prepared statements, cursors, a cancelled and a failed statement
            assert not (await client.call_tool("query", {"sql": "SELECT * FROM hr.employees"})).is_error
            assert not (await client.call_tool("describe_table", {"table": "hr.employees"})).is_error
        assert (await client.call_tool("query", {"sql": SLOW})).is_error
        assert (await client.call_tool("query", {"sql": "SELECT 1/0 AS boom"})).is_error
    [[pid, timeout]] = inside.structured_content["rows"]
    assert timeout == "1s", "pg-mcp's own timeout is in force inside its transaction"
    conn = await _plain(bouncer.url)
    try:
        assert await conn.fetchval("SELECT pg_backend_pid()") == pid, "PgBouncer gave us pg-mcp's backend"
        assert dict(await conn.fetchrow(SETTINGS_SQL)) == defaults
        assert dict(await conn.fetchrow(LEFTOVERS_SQL)) == {
            "prepared_statements": 0, "cursors": 0, "advisory_locks": 0, "channels": 0, "own_role": True,
        }  # fmt: skip
        async with conn.transaction():  # its own named statements: no name is taken
            for n in range(20):
                statement = await conn.prepare(f"SELECT {n} AS n")
                assert await statement.fetchval() == n
    finally:
        await conn.close()


async def test_the_idle_transaction_timeout_does_not_reach_the_next_client(
    pg: DemoDatabase, bouncer: PgBouncer
) -> None:
    sql = "SELECT current_setting('idle_in_transaction_session_timeout')"
    direct = await _plain(pg.url)
    try:
        default = await direct.fetchval(sql)
    finally:
        await direct.close()
    async with mcp_client(bouncer.url, statement_timeout=1) as client:
        assert not (await client.call_tool("query", {"sql": "SELECT 1 AS one"})).is_error
    conn = await _plain(bouncer.url)
    try:
        assert await conn.fetchval(sql) == default
    finally:
        await conn.close()


async def test_two_servers_and_another_client_share_one_backend(pg: DemoDatabase, bouncer: PgBouncer) -> None:
    """Interleaved on one backend, each pg-mcp sees its own timeout and the other client none of them."""
    defaults = await _settings(pg.url)
    probe = {"sql": "SELECT current_setting('statement_timeout') AS t, count(*) AS n FROM hr.employees"}
    seen: dict[str, list[Any]] = {"fast": [], "slow": [], "plain": []}

    async def calls(name: str, timeout: str) -> None:
        async with mcp_client(bouncer.url, statement_timeout=timeout, **NO_BUDGET) as client:
            for _ in range(15):
                result = await client.call_tool("query", probe)
                assert not result.is_error, text_of(result)
                seen[name].append(result.structured_content["rows"][0])
            if name == "fast":
                assert (await client.call_tool("query", {"sql": SLOW})).is_error

    async def plain() -> None:
        conn = await _plain(bouncer.url)
        try:
            for _ in range(15):
                async with conn.transaction():
                    statement = await conn.prepare(SETTINGS_SQL)
                    seen["plain"].append(dict(await statement.fetchrow()))
                await asyncio.sleep(0)
        finally:
            await conn.close()

    await asyncio.gather(calls("fast", "1"), calls("slow", "7"), plain())
    assert seen["fast"] == [["1s", 300]] * 15
    assert seen["slow"] == [["7s", 300]] * 15
    assert seen["plain"] == [defaults] * 15
    assert await _settings(bouncer.url) == defaults
