"""Every PostgreSQL type through the real server: exact values, or a stated shortening."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from conftest import DemoDatabase
from mcp_helpers import mcp_client, text_of

pytestmark = pytest.mark.asyncio(loop_scope="session")

#: column name, type, literal, expected JSON value in structured content
CASES: list[tuple[str, str, str, Any]] = [
    ("i2", "smallint", "-32768", -32768),
    ("i8_small", "bigint", "9007199254740991", 9007199254740991),
    ("i8_big", "bigint", "9223372036854775807", "9223372036854775807"),
    (
        "num30",
        "numeric",
        "123456789012345678901234567890.123456789",
        "123456789012345678901234567890.123456789",
    ),
    ("num_nan", "numeric", "'NaN'", "NaN"),
    ("num_inf", "numeric", "'Infinity'", "Infinity"),
    ("f8_nan", "double precision", "'NaN'", "NaN"),
    ("f8_ninf", "double precision", "'-Infinity'", "-Infinity"),
    ("f4", "real", "1.5", 1.5),
    ("money", "money", "12.34", "$12.34"),
    ("bool", "boolean", "false", False),
    ("txt_empty", "text", "''", ""),
    ("txt_null", "text", "NULL", None),
    ("txt_unicode", "text", "'zürich ✓ 東京'", "zürich ✓ 東京"),
    ("chr", "character(3)", "'ab'", "ab "),
    ("d_bc", "date", "'4713-01-01 BC'", "4713-01-01 BC"),
    ("d_inf", "date", "'infinity'", "infinity"),
    ("ts_old", "timestamp", "'1900-01-01 00:00:00.000001'", "1900-01-01 00:00:00.000001"),
    ("ts_future", "timestamp", "'294276-12-31 23:59:59'", "294276-12-31 23:59:59"),
    ("tstz", "timestamptz", "'2025-03-04 05:06:07.891+00'", "2025-03-04 05:06:07.891+00"),
    ("tm", "time", "'23:59:59.999999'", "23:59:59.999999"),
    ("iv", "interval", "'1 year 2 months 3 days 04:05:06.000007'", "1 year 2 mons 3 days 04:05:06.000007"),
    ("iv_neg", "interval", "'-1 month'", "-1 mons"),
    ("uid", "uuid", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    ("js", "json", """'{"b": 1, "a": [true, null, 2.50]}'""", {"b": 1, "a": [True, None, 2.5]}),
    (
        "jsb_nested",
        "jsonb",
        """'{"deep": {"x": [1, {"y": "z"}]}, "n": 12345678901234567890}'""",
        {"deep": {"x": [1, {"y": "z"}]}, "n": "12345678901234567890"},
    ),
    ("arr_empty", "integer[]", "'{}'", []),
    ("arr_nulls", "text[]", "ARRAY['a', NULL, '']", ["a", None, ""]),
    ("arr_2d", "integer[]", "'{{1,2},{3,4}}'", [[1, 2], [3, 4]]),
    ("arr_jsonb", "jsonb[]", """ARRAY['{"a": [1, 2]}'::jsonb, NULL]""", [{"a": [1, 2]}, None]),
    ("arr_dates", "date[]", "ARRAY['2020-01-01'::date, 'infinity']", ["2020-01-01", "infinity"]),
    ("rng", "int4range", "'[1,10)'", "[1,10)"),
    ("rng_empty", "numrange", "'empty'", "empty"),
    ("tsrng", "tstzrange", "'[2025-01-01 00:00+00,)'", '["2025-01-01 00:00:00+00",)'),
    ("ip", "inet", "'192.168.0.1/24'", "192.168.0.1/24"),
    ("net", "cidr", "'10.0.0.0/8'", "10.0.0.0/8"),
    ("mac", "macaddr", "'08:00:2b:01:02:03'", "08:00:2b:01:02:03"),
    ("pt", "point", "'(1.5,2)'", "(1.5,2)"),
    ("bx", "box", "'((0,0),(1,1))'", "(1,1),(0,0)"),
    ("tsv", "tsvector", "'a fat cat'", "'a' 'cat' 'fat'"),
    ("bits", "bit varying", "B'1011'", "1011"),
    ("xmlv", "xml", "'<a>1</a>'", "<a>1</a>"),
    ("byt", "bytea", "'\\xdeadbeef'", "\\xdeadbeef"),
    ("f8_pinf", "double precision", "'+Infinity'", "Infinity"),
    ("num_ninf", "numeric", "'-Infinity'", "-Infinity"),
    ("tstz_bc", "timestamptz", "'0044-03-15 12:00:00+00 BC'", "0044-03-15 12:00:00+00 BC"),
    ("tstz_1969", "timestamptz", "'1969-07-20 20:17:40.5+00'", "1969-07-20 20:17:40.5+00"),
    ("ttz", "timetz", "'12:00:00.25+05:30'", "12:00:00.25+05:30"),
    ("mac8", "macaddr8", "'08:00:2b:01:02:03:04:05'", "08:00:2b:01:02:03:04:05"),
    ("ln", "line", "'{1,-1,0}'", "{1,-1,0}"),
    ("seg", "lseg", "'[(0,0),(1,1)]'", "[(0,0),(1,1)]"),
    ("pth", "path", "'[(0,0),(1,1),(2,0)]'", "[(0,0),(1,1),(2,0)]"),
    ("poly", "polygon", "'((0,0),(1,1),(1,0))'", "((0,0),(1,1),(1,0))"),
    ("circ", "circle", "'<(1,2),3>'", "<(1,2),3>"),
    ("drng", "daterange", "'[2025-01-01,2025-02-01)'", "[2025-01-01,2025-02-01)"),
    (
        "tsr",
        "tsrange",
        "'[2025-01-01 10:00,2025-01-01 12:00)'",
        '["2025-01-01 10:00:00","2025-01-01 12:00:00")',
    ),
    ("mrng", "int4multirange", "'{[1,3), [5,7)}'", ["[1,3)", "[5,7)"]),  # its ranges, in order
    ("mood", "typetest.mood", "'happy'", "happy"),
    ("pair", "typetest.pair", "ROW(1, 'x')", {"a": 1, "b": "x"}),
    (
        "pairs",
        "typetest.pair[]",
        "ARRAY[ROW(1, 'x'), ROW(2, NULL)]::typetest.pair[]",
        [{"a": 1, "b": "x"}, {"a": 2, "b": None}],
    ),
]


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def typed_table(pg: DemoDatabase) -> AsyncIterator[str]:
    conn = await asyncpg.connect(pg.admin_url)
    try:
        await conn.execute(
            """
            DROP SCHEMA IF EXISTS typetest CASCADE;
            CREATE SCHEMA typetest;
            CREATE TYPE typetest.mood AS ENUM ('sad', 'happy');
            CREATE TYPE typetest.pair AS (a int, b text);
            GRANT USAGE ON SCHEMA typetest TO mcp_reader;
            """
        )
        columns = ", ".join(f"{name} {type_}" for name, type_, _, _ in CASES)
        values = ", ".join(literal for _, _, literal, _ in CASES)
        await conn.execute(f"CREATE TABLE typetest.all_types ({columns}, big bytea)")
        await conn.execute(
            f"INSERT INTO typetest.all_types VALUES ({values}, decode(repeat('ab', 2000000), 'hex'))"
        )
        await conn.execute("GRANT SELECT ON typetest.all_types TO mcp_reader")
        yield "typetest.all_types"
    finally:
        await conn.execute("DROP SCHEMA IF EXISTS typetest CASCADE")
        await conn.close()


async def test_every_type_round_trips_exactly(pg: DemoDatabase, typed_table: str) -> None:
    names = ", ".join(name for name, *_ in CASES)
    async with mcp_client(pg.url, max_cell_chars=100) as client:
        result = await client.call_tool("query", {"sql": f"SELECT {names}, big FROM {typed_table}"})
        described = await client.call_tool("describe_table", {"table": typed_table})
    assert not result.is_error, text_of(result)
    row = result.structured_content["rows"][0]
    types = {c["name"]: c["type"] for c in result.structured_content["columns"]}
    mismatches = {
        name: (row[i], expected) for i, (name, _, _, expected) in enumerate(CASES) if row[i] != expected
    }
    assert not mismatches
    assert types["i8_big"] == "bigint" and types["arr_nulls"] == "text[]" and types["mood"] == "typetest.mood"
    assert types["arr_2d"] == "integer[]" and types["pairs"] == "typetest.pair[]"
    big = row[len(CASES)]
    assert big.startswith("\\xabab") and big.endswith("[cut: 2,000,000 bytes in all]")
    text = text_of(result)
    assert "NaN" in text and "4713-01-01 BC" in text and "\tNULL\t" in text and '\t""\t' in text
    assert len(text) < 4000, "a megabyte value is shortened in the text too"
    assert "mood typetest.mood {sad|happy}" in text_of(described)
