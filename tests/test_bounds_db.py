"""Memory bounds of `Database.run_query`: row cap, cell cap in characters and bytes, and the
result-byte budget applied while fetching; and temp_file_limit only where the role may set it.

Every test checks the mechanism (what was fetched, how it was cut, what the backend ran), never a
duration.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from urllib.parse import quote, urlsplit

import asyncpg
import pytest
import pytest_asyncio
from conftest import DemoDatabase
from factories import database_for, unguarded

from pg_mcp.database.executor import Database
from pg_mcp.database.value_cutting import CELL_BYTES_PER_CHAR, CutValue, cell_capped
from pg_mcp.render.results import render_result
from pg_mcp.render.values import Limits

pytestmark = pytest.mark.asyncio(loop_scope="session")
EMOJI_COLUMNS = 550


#: Every database here: one pooled connection, and callers may ask for up to 1,000 rows.
POOL_OF_ONE = {"pool_min": 1, "pool_max": 1, "max_rows_limit": 1000}


@pytest_asyncio.fixture(loop_scope="session")
async def small_budget(pg: DemoDatabase) -> AsyncIterator[Database]:
    database = database_for(pg.url, **POOL_OF_ONE, max_result_bytes=50_000)
    yield database
    await database.close()


def _text_bytes(rows: list[tuple[object, ...]]) -> int:
    return sum(len(str(value).encode()) for row in rows for value in row)


async def test_wide_rows_stop_at_the_byte_budget_before_max_rows(small_budget: Database) -> None:
    sql = "SELECT g, repeat('x', 900) AS a FROM generate_series(1, 100000) AS g"
    result = await small_budget.run_query(unguarded(sql, 1000))
    assert result.truncated and result.byte_cut
    assert 30 < len(result.rows) < 1000
    assert _text_bytes(result.rows) <= 50_000
    assert [row[0] for row in result.rows] == list(range(1, len(result.rows) + 1)), "rows in order, none lost"
    rendered = render_result(result, 1000, Limits(1000, 50_000), 1000)
    assert rendered.structured["truncated"] is True
    assert "output cut at 50,000 bytes" in rendered.text.splitlines()[-1]
    assert "max_rows=" not in rendered.text.splitlines()[-1]


async def test_small_rows_are_cut_at_max_rows_not_bytes(small_budget: Database) -> None:
    result = await small_budget.run_query(unguarded("SELECT generate_series(1, 1000000) AS n", 1000))
    assert len(result.rows) == 1000 and result.truncated and not result.byte_cut
    rendered = render_result(result, 1000, Limits(1000, 50_000), 1000)
    assert "cut at max_rows=1000" in rendered.text.splitlines()[-1]


async def test_a_result_that_fits_is_neither_cut_nor_marked(small_budget: Database) -> None:
    result = await small_budget.run_query(unguarded("SELECT g FROM generate_series(1, 40) AS g", 1000))
    assert len(result.rows) == 40 and not result.truncated and not result.byte_cut
    one = await small_budget.run_query(unguarded("SELECT repeat('x', 999) AS a", 1000))
    assert len(one.rows) == 1 and not one.truncated and not one.byte_cut


async def test_emoji_columns_are_cut_by_bytes_and_one_row_is_fetched(pg: DemoDatabase) -> None:
    """The case that grew the process by 2.2 GB: 550 columns of 1,000 four-byte characters, max_rows=1000."""
    columns = ", ".join(f"repeat(chr(128512), 1000) AS c{i}" for i in range(EMOJI_COLUMNS))
    database = database_for(pg.url, **POOL_OF_ONE)
    try:
        result = await database.run_query(unguarded(f"SELECT {columns} FROM generate_series(1, 1000)", 1000))
    finally:
        await database.close()
    assert len(result.rows) == 1 and result.truncated and result.byte_cut
    [row] = result.rows
    assert all(isinstance(value, CutValue) and value.total == 1000 for value in row)
    assert {len(value.prefix.encode()) for value in row if isinstance(value, CutValue)} == {2000}


async def test_cells_are_cut_by_characters_or_bytes(pg: DemoDatabase) -> None:
    database = database_for(pg.url, **POOL_OF_ONE, max_cell_chars=100)
    sql = (
        "SELECT repeat(chr(128512), 80) AS emoji, repeat('a', 150) AS ascii, repeat('a', 100) AS fits, "
        "repeat('a', 90) || repeat(chr(233), 10) AS mixed, repeat('a', 90) || repeat(chr(128512), 12) AS over"
    )
    try:
        [row] = (await database.run_query(unguarded(sql, 1))).rows
    finally:
        await database.close()
    emoji, ascii_, fits, mixed, over = row
    assert emoji == CutValue(chr(128512) * 50, 80, "chars"), "80 characters, 320 bytes: over 200 bytes"
    assert ascii_ == CutValue("a" * 100, 150, "chars")
    assert fits == "a" * 100 and mixed == "a" * 90 + chr(233) * 10
    assert isinstance(over, CutValue) and over.total == 102
    assert len(over.prefix.encode()) <= CELL_BYTES_PER_CHAR * 100


async def test_each_value_is_converted_to_text_once(pg: DemoDatabase) -> None:
    """EXPLAIN VERBOSE of the wrapper: the array's text conversion appears once, in the inner query."""
    sql = "SELECT array_agg(g) AS ids, 7 AS n FROM generate_series(1, 10) AS g"
    conn = await asyncpg.connect(pg.admin_url)
    try:
        attributes = (await conn.prepare(sql)).get_attributes()
        capped = cell_capped(sql, attributes, 1000)
        assert capped is not None
        plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN (VERBOSE, COSTS OFF) {capped[0]}"))
    finally:
        await conn.close()
    assert len(re.findall(r"format\('%s'::text, pg_mcp_cells\.c0\)", plan)) == 1, plan


async def test_a_wrapper_is_made_again_when_the_columns_change(pg: DemoDatabase) -> None:
    """The wrappers kept for statements asked again are filed under the column types too: the same text
    over an int column and then a text one is wrapped only the second time."""
    conn = await asyncpg.connect(pg.admin_url)
    try:
        await conn.execute("CREATE TEMP TABLE shifting (v int)")
        sql = "SELECT v FROM shifting"
        assert cell_capped(sql, (await conn.prepare(sql)).get_attributes(), 1000) is None
        await conn.execute("ALTER TABLE shifting ALTER COLUMN v TYPE text")
        capped = cell_capped(sql, (await conn.prepare(sql)).get_attributes(), 1000)
        assert capped is not None and capped[1] == ("chars",)
        assert cell_capped(sql, (await conn.prepare(sql)).get_attributes(), 1000) == capped
        assert cell_capped(sql, (await conn.prepare(sql)).get_attributes(), 50) != capped
    finally:
        await conn.close()


async def _setting(database: Database, name: str) -> str:
    return str((await database.run_query(unguarded(f"SELECT current_setting('{name}')", 1))).rows[0][0])


async def test_temp_file_limit_is_set_for_a_superuser_and_skipped_for_the_reader(pg: DemoDatabase) -> None:
    admin = database_for(pg.admin_url, **POOL_OF_ONE, temp_file_limit="7MB")
    reader = database_for(pg.url, **POOL_OF_ONE, temp_file_limit="7MB")
    try:
        assert await _setting(admin, "temp_file_limit") == "7MB"
        assert await _setting(reader, "temp_file_limit") != "7MB", "the reader may not set it: not attempted"
    finally:
        await admin.close()
        await reader.close()


async def test_temp_file_limit_is_set_where_it_was_granted(pg: DemoDatabase) -> None:
    conn = await asyncpg.connect(pg.admin_url)
    if conn.get_server_version().major < 15:
        await conn.close()
        pytest.skip("GRANT SET ON PARAMETER needs PostgreSQL 15")
    role, password = f"tfl_{secrets.token_hex(3)}", secrets.token_hex(8)
    parts = urlsplit(pg.admin_url)
    await conn.execute(
        f"CREATE ROLE {role} LOGIN PASSWORD '{password}'; GRANT CONNECT ON DATABASE "
        f"{parts.path.lstrip('/')} TO {role}; GRANT SET ON PARAMETER temp_file_limit TO {role}"
    )
    database = database_for(
        f"postgresql://{role}:{quote(password)}@{parts.hostname}:{parts.port}{parts.path}",
        **POOL_OF_ONE,
        temp_file_limit="7MB",
    )
    try:
        assert await _setting(database, "temp_file_limit") == "7MB"
    finally:
        await database.close()
        await conn.execute(
            f"REVOKE SET ON PARAMETER temp_file_limit FROM {role}; DROP OWNED BY {role}; DROP ROLE {role}"
        )
        await conn.close()


async def test_a_1600_column_table_can_be_read_whole(pg: DemoDatabase) -> None:
    """The value-cutting wrapper adds one column however wide the result (PostgreSQL allows 1,664)."""
    columns = ", ".join(f"c{i} text" for i in range(1600))
    await pg.admin_execute(
        f"CREATE TABLE public.wide ({columns}); "
        "INSERT INTO public.wide (c0, c1599) VALUES (repeat('x', 5000), 'last'); "
        "GRANT SELECT ON public.wide TO PUBLIC"
    )
    database = database_for(pg.url, **POOL_OF_ONE)
    try:
        result = await database.run_query(unguarded("SELECT * FROM public.wide", 10))
    finally:
        await database.close()
        await pg.admin_execute("DROP TABLE public.wide")
    [row] = result.rows
    assert len(row) == 1600 and row[1599] == "last" and row[1] is None
    assert isinstance(row[0], CutValue) and row[0].total == 5000
