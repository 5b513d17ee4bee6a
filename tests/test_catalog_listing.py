"""Catalog listings read page by page in SQL: resource pages and list_tables against pg_catalog itself.

The listing reads one page of relations per call (keyset after the cursor, or OFFSET), schema by
schema; these tests check that what the pages add up to is exactly what the role may read, in
byte order of (schema, name), with awkward names, partitions, views, privileges and operator limits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest
import pytest_asyncio
from conftest import DemoDatabase
from mcp import Client
from mcp_helpers import mcp_client, text_of

pytestmark = pytest.mark.asyncio(loop_scope="session")

DATABASE = "listing"
MANY = 450  # tables in schema "B": more than two resource pages and two list_tables pages
LONG = "l" * 63  # the longest name PostgreSQL keeps
AWKWARD = ["Zeta", "alpha", "alpha beta", "_under", "ä", "a1", "a10", "a2", LONG, 'quo"te', "dot.ted"]
CREATE_AWKWARD = "".join(
    'CREATE TABLE a."' + name.replace('"', '""') + '" (id int PRIMARY KEY);' for name in AWKWARD
)

SETUP = f"""
CREATE SCHEMA a; CREATE SCHEMA "B"; CREATE SCHEMA "z z"; CREATE SCHEMA "ünï"; CREATE SCHEMA empty;
CREATE SCHEMA secret;
{CREATE_AWKWARD}
COMMENT ON TABLE a."Zeta" IS 'Last  letter,
on two lines';
CREATE TABLE a.hidden_t (id int);
CREATE TABLE a.col_only (id int, secret text);
CREATE VIEW a.v AS SELECT id FROM a.alpha;
CREATE MATERIALIZED VIEW a.mv AS SELECT 1 AS one;
CREATE TABLE a.events (id int, at date, kind text) PARTITION BY RANGE (at);
CREATE TABLE a.events_2024 PARTITION OF a.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')
    PARTITION BY LIST (kind);
CREATE TABLE a.events_2024_x PARTITION OF a.events_2024 FOR VALUES IN ('x');
CREATE TABLE a.events_2024_y PARTITION OF a.events_2024 FOR VALUES IN ('y');
CREATE TABLE a.events_2025 PARTITION OF a.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
INSERT INTO a.events SELECT g, date '2024-03-01', CASE WHEN g % 3 = 0 THEN 'x' ELSE 'y' END
    FROM generate_series(1, 3000) g;
INSERT INTO a.events SELECT g, date '2025-03-01', 'z' FROM generate_series(1, 500) g;
ANALYZE a.events_2024_x; ANALYZE a.events_2024_y; ANALYZE a.events_2025;
CREATE TABLE a.nothing (id int) PARTITION BY RANGE (id);
DO $$ BEGIN FOR t IN 0..{MANY - 1} LOOP
    EXECUTE format('CREATE TABLE "B".t_%s (id int)', lpad(t::text, 3, '0'));
END LOOP; END $$;
COMMENT ON TABLE "B".t_007 IS 'Lucky';
CREATE TABLE "z z"."x y" (id int);
CREATE TABLE "ünï"."ñ" (id int);
CREATE TABLE secret.t (id int);
GRANT USAGE ON SCHEMA a, "B", "z z", "ünï", empty TO mcp_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA a, "B", "z z", "ünï" TO mcp_reader;
REVOKE SELECT ON a.hidden_t, a.col_only FROM mcp_reader;
GRANT SELECT (id) ON a.col_only TO mcp_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA secret TO mcp_reader;
"""

#: What the reader may list, straight from pg_catalog (no paging): the expected answer.
EXPECTED_SQL = """
SELECT n.nspname::text AS schema, c.relname::text AS name, c.relkind::text AS kind,
       c.reltuples, obj_description(c.oid, 'pg_class') AS comment,
       ARRAY(SELECT l.reltuples FROM pg_partition_tree(c.oid) t JOIN pg_class l ON l.oid = t.relid
             WHERE t.isleaf) AS leaves
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND has_schema_privilege(n.oid, 'USAGE') AND has_any_column_privilege(c.oid, 'SELECT')
"""

KINDS = {"r": "table", "p": "partitioned table", "v": "view", "m": "materialized view"}


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def listing_url(pg: DemoDatabase) -> AsyncIterator[str]:
    await pg.admin_execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    try:  # a collation that sorts unlike bytes ('a' < 'B'), so that the byte order asked for is seen
        await pg.admin_execute(
            f"CREATE DATABASE {DATABASE} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'"
        )
    except asyncpg.PostgresError:  # a server without ICU (or before 15): its own default collation
        await pg.admin_execute(f"CREATE DATABASE {DATABASE}")
    admin_url = pg.admin_url.rsplit("/", 1)[0] + f"/{DATABASE}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(SETUP)
    finally:
        await conn.close()
    yield pg.url.rsplit("/", 1)[0] + f"/{DATABASE}"
    await pg.admin_execute(f"DROP DATABASE {DATABASE} WITH (FORCE)")


async def expected(url: str) -> list[dict[str, Any]]:
    """Every relation the reader may list, in byte order of (schema, name), as list_tables gives them."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(EXPECTED_SQL)
    finally:
        await conn.close()
    listed = []
    for row in rows:
        if row["kind"] == "p":
            leaves = list(row["leaves"])
            estimate = None if all(r < 0 for r in leaves) else round(sum(max(r, 0) for r in leaves))
        else:
            estimate = None if row["reltuples"] < 0 else round(row["reltuples"])
        listed.append(
            {"schema": row["schema"], "name": row["name"], "kind": KINDS[row["kind"]],
             "estimated_rows": estimate, "comment": row["comment"]}
        )  # fmt: skip
    return sorted(listed, key=lambda t: (t["schema"].encode(), t["name"].encode()))


async def all_resource_pages(client: Client) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page = await client.list_resources(cursor=cursor, cache_mode="bypass")
        pages.append([str(r.uri) for r in page.resources])
        cursor = page.next_cursor
        if not cursor:
            return pages


def uri(table: dict[str, Any]) -> str:
    return f"postgres://{quote(table['schema'], safe='')}/{quote(table['name'], safe='')}"


async def test_resource_pages_add_up_to_every_readable_relation_in_byte_order(listing_url: str) -> None:
    want = await expected(listing_url)
    async with mcp_client(listing_url) as client:
        pages = await all_resource_pages(client)
        first = await client.list_resources(cache_mode="bypass")
    names = {(t["schema"], t["name"]) for t in want}
    assert ("a", "col_only") in names, "a column privilege is enough to be listed"
    assert not names & {("a", "hidden_t"), ("secret", "t"), ("a", "events_2024"), ("a", "events_2024_x")}
    assert {("a", LONG), ("a", "ä"), ("ünï", "ñ"), ("z z", "x y"), ("a", 'quo"te')} <= names
    assert pages[0][0] == "postgres://database"
    assert [u for page in pages for u in page][1:] == [uri(t) for t in want]
    assert [len(page) for page in pages] == [201, 200, len(want) - 400]
    descriptions = {str(r.uri): r.description for r in first.resources}
    assert descriptions[uri({"schema": "B", "name": "t_007"})] == "table. Lucky"


async def test_list_tables_pages_a_schema_with_exact_totals(listing_url: str) -> None:
    want = [t for t in await expected(listing_url) if t["schema"] == "B"]
    async with mcp_client(listing_url) as client:
        pages = [await client.call_tool("list_tables", {"schema": "B", "offset": o}) for o in (0, 200, 400)]
        beyond = await client.call_tool("list_tables", {"schema": "B", "offset": 1000})
        far_beyond = await client.call_tool("list_tables", {"schema": "B", "offset": 2**63 - 1})
        empty = await client.call_tool("list_tables", {"schema": "empty"})
        summary = await client.call_tool("list_tables", {})
    got = [t for page in pages for t in page.structured_content["tables"]]
    assert got == want and len(got) == MANY
    assert [p.structured_content["total"] for p in pages] == [MANY] * 3
    assert [p.structured_content["truncated"] for p in pages] == [True, True, False]
    assert text_of(pages[0]).endswith(
        f"(tables 1 to 200 of {MANY}; next page: offset=200; search_schema finds tables by name)"
    )
    assert text_of(pages[2]).endswith(f"(tables 401 to {MANY} of {MANY}; search_schema finds tables by name)")
    assert beyond.structured_content["tables"] == [] and beyond.structured_content["total"] == MANY
    assert beyond.structured_content["truncated"] is False
    assert far_beyond.structured_content["tables"] == [] and far_beyond.structured_content["total"] == MANY
    assert empty.structured_content == {"tables": [], "offset": 0, "total": 0, "truncated": False}
    assert summary.structured_content["tables"] == [] and f'"B" ({MANY} tables)' in text_of(summary)


async def test_listed_estimates_comments_and_kinds_match_pg_catalog(listing_url: str) -> None:
    want = {t["name"]: t for t in await expected(listing_url) if t["schema"] == "a"}
    async with mcp_client(listing_url) as client:
        listed = await client.call_tool("list_tables", {"schema": "a"})
    got = {t["name"]: t for t in listed.structured_content["tables"]}
    assert got == want
    assert got["events"]["kind"] == "partitioned table"
    assert 3000 <= got["events"]["estimated_rows"] <= 3500, "two levels of partitions are summed"
    assert got["nothing"]["estimated_rows"] is None, "a partitioned table without partitions"
    assert got["v"]["kind"] == "view" and got["mv"]["kind"] == "materialized view"
    assert 'a."Zeta" — Last letter, on two lines\n' in text_of(listed)


async def test_operator_limits_are_applied_before_paging(listing_url: str) -> None:
    allowed = {"tables": "a.*,B.t_001,B.t_449", "hidden_columns": "a.col_only.secret"}
    async with mcp_client(listing_url, **allowed) as client:
        pages = await all_resource_pages(client)
        b = await client.call_tool("list_tables", {"schema": "B"})
        z = await client.call_tool("list_tables", {"schema": "z z"})
    want = [t for t in await expected(listing_url) if t["schema"] == "a"]
    b_tables = [{"schema": "B", "name": name} for name in ("t_001", "t_449")]
    assert [u for page in pages for u in page][1:] == [uri(t) for t in b_tables + want]
    assert [t["name"] for t in b.structured_content["tables"]] == ["t_001", "t_449"]
    assert b.structured_content["total"] == 2 and b.structured_content["truncated"] is False
    assert z.structured_content["tables"] == [] and z.structured_content["total"] == 0
