"""The database layer on its own, with the guard bypassed: it must still keep the read-only promise.

Statements are handed to `Database.run_query` exactly as written (no guard, no LIMIT wrapper, no
parsing), which is what would happen if the guard had a hole.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from conftest import DemoDatabase
from factories import database_for, unguarded

from pg_mcp.database.driver_limits import never_closed, underlying
from pg_mcp.database.executor import Database
from pg_mcp.database.session import CELLS_NAME, JUDGED_NAME
from pg_mcp.errors import PgMcpError, QueryError

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def db(pg: DemoDatabase) -> AsyncIterator[Database]:
    # One connection, so every statement below runs on the session the previous one may have tainted.
    database = database_for(pg.url, pool_min=1, pool_max=1)
    yield database
    await database.close()


@pytest_asyncio.fixture(loop_scope="session")
async def admin_db(pg: DemoDatabase) -> AsyncIterator[Database]:
    """A superuser session: only the session layer stands between it and the data."""
    database = database_for(pg.admin_url, pool_max=1)
    yield database
    await database.close()


async def _snapshot(pg: DemoDatabase) -> tuple[object, ...]:
    conn = await asyncpg.connect(pg.admin_url)
    try:
        return (
            await conn.fetchval("SELECT count(*) FROM sales.products"),
            await conn.fetchval("SELECT sum(price) FROM sales.products"),
            await conn.fetchval("SELECT count(*) FROM pg_class"),
            await conn.fetchval("SELECT count(*) FROM pg_roles"),
            await conn.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"),
        )
    finally:
        await conn.close()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1; DROP TABLE sales.products",
        "SELECT 1; COMMIT; DROP SCHEMA sales CASCADE;",
        "DELETE FROM sales.products",
        "UPDATE sales.products SET price = 0",
        "INSERT INTO sales.products (id, sku, name, price) VALUES (-1, 'x', 'x', 1)",
        "WITH d AS (DELETE FROM sales.products RETURNING *) SELECT count(*) FROM d",
        "CREATE TABLE sales.evil (id int)",
        "DROP TABLE sales.products",
        "TRUNCATE sales.products",
        "SELECT * INTO sales.copy FROM sales.products",
        "CREATE TEMP TABLE t AS SELECT 1",
        "SELECT nextval('sales.customers_id_seq')",
        "COPY sales.products FROM STDIN",
        "COPY sales.products TO '/tmp/pg_mcp_copy_attack'",
        "COPY (SELECT 1) TO PROGRAM 'touch /tmp/pg_mcp_program_attack'",
        "VACUUM sales.products",
        "BEGIN; DELETE FROM sales.products; COMMIT",
    ],
)
async def test_writes_fail_without_the_guard(admin_db: Database, pg: DemoDatabase, sql: str) -> None:
    before = await _snapshot(pg)
    with pytest.raises(PgMcpError):
        await admin_db.run_query(unguarded(sql))
    assert await _snapshot(pg) == before
    assert not Path("/tmp/pg_mcp_copy_attack").exists() and not Path("/tmp/pg_mcp_program_attack").exists()
    ok = await admin_db.run_query(unguarded("SELECT count(*) FROM sales.products"))
    assert ok.rows[0][0] == before[0]


async def _scalar(db: Database, sql: str) -> str:
    return str((await db.run_query(unguarded(sql))).rows[0][0])


async def _attempt(db: Database, sql: str) -> None:
    """Run a statement without the guard; whether it is refused or runs, the next call must not see it."""
    with contextlib.suppress(PgMcpError):
        await db.run_query(unguarded(sql))


async def test_session_state_does_not_outlive_a_call(db: Database) -> None:
    async def setting(name: str) -> str:
        return await _scalar(db, f"SELECT current_setting('{name}')")

    timeout_before = await setting("statement_timeout")
    for sql in (
        "SET statement_timeout = 0",
        "SET SESSION statement_timeout = 0",
        "SELECT set_config('statement_timeout', '0', false)",
        "SET search_path = pg_temp",
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
        "SET default_transaction_read_only = off",
    ):
        await _attempt(db, sql)
    assert await setting("statement_timeout") == timeout_before
    assert await setting("search_path") == '"$user", public'
    assert await setting("transaction_read_only") == "on"
    with pytest.raises(QueryError, match="read-only transaction"):
        await db.run_query(unguarded("DELETE FROM sales.products WHERE id = 1 RETURNING id"))


async def test_a_role_switch_does_not_outlive_a_call(admin_db: Database) -> None:
    admin = await _scalar(admin_db, "SELECT current_user::text")
    for sql in (
        "SELECT set_config('role', 'mcp_reader', false)",
        "SELECT set_config('role', 'mcp_reader', true)",
        "SET ROLE mcp_reader",
        "SET SESSION AUTHORIZATION mcp_reader",
    ):
        await _attempt(admin_db, sql)
        assert await _scalar(admin_db, "SELECT current_user::text") == admin, sql


async def test_prepared_statements_cursors_and_listen_do_not_survive(db: Database) -> None:
    for sql in (
        "PREPARE sneaky AS SELECT 1",
        "DECLARE held CURSOR WITH HOLD FOR SELECT 1",
        "LISTEN channel",
    ):
        await _attempt(db, sql)
    prepared = await db.run_query(
        unguarded(
            f"SELECT count(*) FROM pg_prepared_statements WHERE name NOT IN ('{JUDGED_NAME}', '{CELLS_NAME}')"
        )
    )
    cursors = await db.run_query(unguarded("SELECT count(*) FROM pg_cursors"))
    channels = await db.run_query(unguarded("SELECT count(*) FROM pg_listening_channels()"))
    # but the statement itself, named on a connection straight to the server
    assert (prepared.rows[0][0], channels.rows[0][0]) == (0, 0)
    assert cursors.rows[0][0] == 1, "only the cursor of the statement itself"


async def test_advisory_locks_are_released_before_reuse(db: Database, pg: DemoDatabase) -> None:
    await db.run_query(unguarded("SELECT pg_advisory_lock(4242)"))
    await db.run_query(unguarded("SELECT pg_advisory_lock_shared(4343)"))
    conn = await asyncpg.connect(pg.admin_url)
    try:
        held = await conn.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
        got = await conn.fetchval("SELECT pg_try_advisory_lock(4242)")
        await conn.execute("SELECT pg_advisory_unlock_all()")
    finally:
        await conn.close()
    assert held == 0 and got is True


async def test_fetch_is_bounded_without_the_limit_wrapper(db: Database) -> None:
    result = await db.run_query(unguarded("SELECT * FROM sales.order_items", max_rows=7))
    assert len(result.rows) == 7 and result.truncated
    huge = await asyncio.wait_for(db.run_query(unguarded("SELECT generate_series(1, 1000000000)", 3)), 10)
    assert len(huge.rows) == 3 and huge.truncated


async def test_statement_timeout_applies_without_the_guard(pg: DemoDatabase) -> None:
    database = database_for(pg.url, statement_timeout=0.5, pool_max=1)
    try:
        with pytest.raises(QueryError, match="cancelled"):
            await database.run_query(unguarded("SELECT pg_sleep(30)"))
        after = await database.run_query(unguarded("SELECT 1"))
        assert after.rows == [(1,)]
    finally:
        await database.close()


async def test_fetch_at_most_limits_rows_in_one_round_trip_or_says_it_cannot(pg: DemoDatabase) -> None:
    """The installed asyncpg still has the private method behind fetchrow() with a row limit; a
    statement object without it gets None (the caller falls back to a cursor)."""
    from pg_mcp.database.driver_limits import fetch_at_most

    conn = await asyncpg.connect(pg.url)
    try:
        async with conn.transaction():
            statement = await conn.prepare("SELECT g FROM generate_series(1, 50) AS g")
            rows = await fetch_at_most(statement, 7)
            assert rows is not None and [row[0] for row in rows] == list(range(1, 8))
    finally:
        await conn.close()
    assert await fetch_at_most(object(), 7) is None


async def test_a_named_statement_kept_from_closing_stays_on_the_server(pg: DemoDatabase) -> None:
    """asyncpg closes a named statement once its object is gone, at the next statement it prepares:
    `never_closed` keeps it from doing so, for a name the next call uses again."""
    conn = await asyncpg.connect(pg.url, statement_cache_size=0)
    try:
        never_closed(await conn.prepare("SELECT 1", name="kept"))
        await conn.prepare("SELECT 2", name="dropped")
        gc.collect()
        await conn.prepare("SELECT 3")  # asyncpg closes what it may close here
        names = await conn.fetchval("SELECT array_agg(name::text ORDER BY name) FROM pg_prepared_statements")
        assert names == ["kept"]
    finally:
        await conn.close()


async def test_a_pooled_connection_is_the_connection_behind_its_proxy(pg: DemoDatabase) -> None:
    pool = await asyncpg.create_pool(pg.url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as first:
            inner = underlying(first)
            assert inner is not first and isinstance(inner, asyncpg.Connection)
        async with pool.acquire() as second:
            assert underlying(second) is inner
    finally:
        await pool.close()


async def test_the_limits_hold_on_every_call_of_a_connection_straight_to_the_server(pg: DemoDatabase) -> None:
    """Set for the session of such a connection, and again after each reset: in force after a
    cancelled statement, a failed one, and statements that try to change them."""
    database = database_for(pg.url, statement_timeout=0.5, pool_max=1)
    try:
        for sql in (
            "SELECT pg_sleep(30)",
            "SELECT 1/0",
            "SELECT set_config('statement_timeout', '0', false)",
        ):
            with contextlib.suppress(QueryError):
                await database.run_query(unguarded(sql))
            settings = await database.run_query(
                unguarded("SELECT current_setting('statement_timeout'), current_setting('search_path')")
            )
            assert settings.rows == [("500ms", '"$user", public')], sql
        with pytest.raises(QueryError, match="cancelled"):
            await database.run_query(unguarded("SELECT pg_sleep(30)"))
    finally:
        await database.close()


async def test_a_kept_wrapper_is_described_again_when_the_wrapped_columns_change(
    pg: DemoDatabase, admin_db: Database
) -> None:
    """The value-cutting wrapper a connection keeps described is found by the types the statement has
    now: after its column changes type, the same text is described again and read right."""
    await pg.admin_execute(
        "CREATE TABLE kept_wrapper (id int, note text); INSERT INTO kept_wrapper VALUES (7, 'x')"
    )
    try:
        sql = "SELECT * FROM kept_wrapper"
        for _ in range(2):  # described, then kept
            assert (await admin_db.run_query(unguarded(sql))).rows == [(7, "x")]
        # the wrapper's text stays the same (both types are passed through uncut); its columns do not
        await pg.admin_execute("ALTER TABLE kept_wrapper ALTER COLUMN id TYPE bigint USING id + 2^32")
        for _ in range(2):
            assert (await admin_db.run_query(unguarded(sql))).rows == [(7 + 2**32, "x")]
    finally:
        await pg.admin_execute("DROP TABLE kept_wrapper")


async def test_a_snapshot_reads_one_moment_of_the_catalog_on_one_connection(
    db: Database, pg: DemoDatabase
) -> None:
    """describe_table's queries run in one REPEATABLE READ transaction: a table created between two of
    them is not seen by the second, and both run on the same backend."""
    async with db.call(short=True, jit=False, repeatable=True) as session:
        first = await session.fetch(
            "SELECT pg_backend_pid() AS pid, current_setting('transaction_isolation') AS isolation, "
            "current_setting('transaction_read_only') AS read_only, "
            "(SELECT count(*) FROM pg_catalog.pg_class WHERE relname = 'pg_mcp_snapshot_probe') AS seen"
        )
        await pg.admin_fetch("CREATE TABLE public.pg_mcp_snapshot_probe (id int)")
        try:
            second = await session.fetch(
                "SELECT pg_backend_pid() AS pid, "
                "(SELECT count(*) FROM pg_catalog.pg_class WHERE relname = 'pg_mcp_snapshot_probe') AS seen"
            )
        finally:
            await pg.admin_fetch("DROP TABLE public.pg_mcp_snapshot_probe")
    assert first[0]["isolation"] == "repeatable read" and first[0]["read_only"] == "on"
    assert first[0]["pid"] == second[0]["pid"] and first[0]["seen"] == second[0]["seen"] == 0
