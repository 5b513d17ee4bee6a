"""The analyst toolset over stdio on the demo database: discovery, relationships, values, plans, prompts."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio
from conftest import DemoDatabase
from mcp.shared.exceptions import MCPError
from mcp_helpers import mcp_client, text_of
from mcp_types import ResourceTemplateReference

from pg_mcp.database.catalog import COUNT_TABLES_SQL, LIST_TABLES_SQL
from pg_mcp.local_pg import load_catalog

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_describe_matches_pg_catalog_field_by_field(pg: DemoDatabase) -> None:
    expected = await pg.admin_fetch(
        """SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, NOT a.attnotnull AS nullable,
                  col_description(a.attrelid, a.attnum) AS comment
           FROM pg_attribute a WHERE a.attrelid = 'sales.customers'::regclass AND a.attnum > 0
             AND NOT a.attisdropped ORDER BY a.attnum""",
    )
    async with mcp_client(pg.url) as client:
        result = await client.call_tool("describe_table", {"table": "customers", "schema": "sales"})
        partitioned = await client.call_tool("describe_table", {"table": "analytics.page_views"})
        view = await client.call_tool("describe_table", {"table": "sales.customer_order_summary"})
        orders = await client.call_tool("describe_table", {"table": "sales.orders"})
    indexes = await pg.admin_fetch(
        """SELECT indexname, indexdef FROM pg_indexes
           WHERE schemaname = 'sales' AND tablename = 'orders'
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                             WHERE c.conindid = format('%I.%I', schemaname, indexname)::regclass)
           ORDER BY indexname""",
    )
    assert indexes, "the demo's orders table has secondary indexes"
    assert [(i["name"], i["definition"]) for i in orders.structured_content["indexes"]] == [
        (r["indexname"], r["indexdef"]) for r in indexes
    ]
    d = result.structured_content
    assert [(c["name"], c["type"], c["nullable"], c.get("comment")) for c in d["columns"]] == [
        (r["attname"], r["type"], r["nullable"], r["comment"]) for r in expected
    ]
    columns = {c["name"]: c for c in d["columns"]}
    assert columns["id"]["identity"] == "always"
    assert columns["is_active"]["default"] == "true"
    assert d["unique_constraints"] == [{"name": "customers_email_key", "columns": ["email"]}]
    assert {r["table"] for r in d["referenced_by"]} >= {
        "sales.orders",
        'sales."Gift Cards"',
        "analytics.page_views",
    }
    assert d["comment"] == "People and companies who have an account in the shop"
    assert d["total_bytes"] > 1_000_000
    p = partitioned.structured_content
    assert p["kind"] == "partitioned table" and p["partition_key"] == "RANGE (viewed_at)"
    assert len(p["partitions"]) == 13
    assert p["partitions"][0]["bound"].startswith("FOR VALUES FROM ('2025-01-01")
    assert "Partitioned by RANGE (viewed_at) into 13 partitions" in text_of(partitioned)
    assert (
        view.structured_content["kind"] == "view"
        and "FROM sales.customers c" in view.structured_content["definition"]
    )


async def test_search_schema_ranks_names_before_comments(pg: DemoDatabase) -> None:
    async with mcp_client(pg.url) as client:
        email = await client.call_tool("search_schema", {"pattern": "email"})
        customers = await client.call_tool("search_schema", {"pattern": "CUSTOMERS"})
        soft = await client.call_tool("search_schema", {"pattern": "soft delete"})
        wildcard = await client.call_tool("search_schema", {"pattern": "%"})
        empty = await client.call_tool("search_schema", {"pattern": "  "})
    hits = email.structured_content["hits"]
    assert {(h["table_name"], h["column_name"]) for h in hits[:2]} == {
        ("customers", "email"),
        ("employees", "email"),
    }
    assert all(h["type"] == "text" for h in hits[:2])
    first = customers.structured_content["hits"][0]
    assert (first["schema"], first["table_name"], first["column_name"]) == ("sales", "customers", None)
    assert [(h["table_name"], h["column_name"]) for h in soft.structured_content["hits"]] == [
        ("customers", "is_active")
    ]
    assert wildcard.structured_content["hits"] == [], "LIKE wildcards in the pattern are literal"
    assert empty.is_error


async def test_relationships_give_join_columns(pg: DemoDatabase) -> None:
    async with mcp_client(pg.url) as client:
        orders = await client.call_tool("relationships", {"table": "sales.orders"})
        hr = await client.call_tool("relationships", {"schema": "hr"})
        everything = await client.call_tool("relationships", {})
    edges = {
        (e["from"], tuple(e["from_columns"]), e["to"], tuple(e["to_columns"]))
        for e in orders.structured_content["foreign_keys"]
    }
    assert edges == {
        ("sales.orders", ("customer_id",), "sales.customers", ("id",)),
        ("sales.order_items", ("order_id",), "sales.orders", ("id",)),
    }
    assert "sales.order_items(order_id) → sales.orders(id)" in text_of(orders)
    hr_edges = {(e["from"], e["to"]) for e in hr.structured_content["foreign_keys"]}
    assert ("hr.employees", "hr.employees") in hr_edges and ("hr.employees", "hr.departments") in hr_edges
    assert len(everything.structured_content["foreign_keys"]) >= 9


async def test_sample_rows_is_cheap_and_bounded(pg: DemoDatabase) -> None:
    async with mcp_client(pg.url) as client:
        big = await client.call_tool("sample_rows", {"table": "sales.order_items", "n": 5})
        small = await client.call_tool("sample_rows", {"table": "hr.departments"})
        view = await client.call_tool("sample_rows", {"table": "sales.customer_order_summary", "n": 3})
        partitioned = await client.call_tool("sample_rows", {"table": "analytics.page_views", "n": 5})
        first_rows = await client.call_tool(
            "query", {"sql": "SELECT * FROM sales.order_items", "max_rows": 5}
        )
        first_views = await client.call_tool(
            "query", {"sql": "SELECT * FROM analytics.page_views", "max_rows": 5}
        )
        too_many = await client.call_tool("sample_rows", {"table": "hr.departments", "n": 5000})
    assert not big.is_error, text_of(big)
    assert big.structured_content["row_count"] == 5
    order_ids = {row[0] for row in big.structured_content["rows"]}
    assert len(order_ids) > 1 and order_ids != {row[0] for row in first_rows.structured_content["rows"]}
    view_ids = {row[0] for row in partitioned.structured_content["rows"]}
    assert [c["name"] for c in partitioned.structured_content["columns"]][1] == "viewed_at"
    assert len(view_ids) == 5 and view_ids != {row[0] for row in first_views.structured_content["rows"]}
    assert [c["name"] for c in big.structured_content["columns"]][:2] == ["order_id", "line_no"]
    assert small.structured_content["row_count"] == 8
    assert view.structured_content["row_count"] == 3
    assert too_many.is_error and "between 1 and 100" in text_of(too_many)


async def test_column_stats_show_real_values(pg: DemoDatabase) -> None:
    await pg.admin_execute("DROP TABLE IF EXISTS hr.unanalyzed")
    await pg.admin_execute(
        "CREATE TABLE hr.unanalyzed AS SELECT g AS n, 'x' || (g % 3) AS label, NULL::text AS empty, "
        "g % 2 = 0 AS even, md5((g % 7)::text)::uuid AS ref FROM generate_series(1, 50) g",
    )
    await pg.admin_execute("GRANT SELECT ON hr.unanalyzed TO mcp_reader")
    try:
        async with mcp_client(pg.url) as client:
            status = await client.call_tool("column_stats", {"table": "sales.orders", "column": "status"})
            whole = await client.call_tool("column_stats", {"table": "hr.employees"})
            fresh = await client.call_tool("column_stats", {"table": "hr.unanalyzed"})
            typo = await client.call_tool("column_stats", {"table": "sales.orders", "column": "stauts"})
    finally:
        await pg.admin_execute("DROP TABLE hr.unanalyzed")
    assert not status.is_error, text_of(status)
    text = text_of(status)
    assert re.search(r"most common: delivered (59|60|61)\.\d%, shipped 1\d\.\d%, paid", text), text
    assert "nulls 0.0%" in text and "~6 distinct" in text
    assert len(whole.structured_content["columns"]) == 10
    assert "min/quartiles/max" in text_of(whole)
    probed = {c["column"]: c for c in fresh.structured_content["columns"]}
    assert probed["n"]["min"] == "1" and probed["n"]["max"] == "50" and probed["n"]["null_frac"] == 0
    assert probed["label"]["distinct_in_sample"] == 3 and probed["empty"]["null_frac"] == 1
    assert probed["even"]["distinct_in_sample"] == 2 and probed["even"]["min"] is None
    assert probed["ref"]["distinct_in_sample"] == 7
    assert "no planner statistics" in text_of(fresh)
    assert typo.is_error and "status" in text_of(typo)


async def test_explain_never_executes(pg: DemoDatabase) -> None:
    endless = (
        "SELECT count(*) FROM sales.order_items a CROSS JOIN sales.order_items b CROSS JOIN sales.orders c"
    )
    async with mcp_client(pg.url, statement_timeout=2) as client:
        plan = await client.call_tool("explain", {"sql": endless})
        indexed = await client.call_tool(
            "explain", {"sql": "SELECT * FROM sales.orders WHERE customer_id = 42"}
        )
        write = await client.call_tool("explain", {"sql": "DELETE FROM sales.products"})
        analyze = await client.call_tool("explain", {"sql": "EXPLAIN ANALYZE SELECT 1"})
    assert not plan.is_error, "planning only: executed, it would have hit the 2 s statement timeout"
    assert plan.structured_content["plan"]["Total Cost"] > 1e12
    assert "(not executed)" in text_of(plan) and "Nested Loop" in text_of(plan)
    assert "using orders_customer_id_idx" in text_of(indexed)
    assert write.is_error and analyze.is_error


async def test_prompts_completions_and_overview(pg: DemoDatabase) -> None:
    template = ResourceTemplateReference(uri="postgres://{schema}/{table}")
    async with mcp_client(pg.url) as client:
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        answer = await client.get_prompt(
            "answer_question", {"question": "Which customers churned last quarter?"}
        )
        explore = await client.get_prompt("explore_database")
        schemas = await client.complete(template, {"name": "schema", "value": "S"})
        tables = await client.complete(template, {"name": "table", "value": "ord"}, {"schema": "sales"})
        overview = await client.read_resource("postgres://database")
    assert set(prompts) == {"explore_database", "answer_question"}
    assert [a.name for a in prompts["answer_question"].arguments or []] == ["question"]
    answer_text = answer.messages[0].content.text  # type: ignore[union-attr]
    assert "Which customers churned last quarter?" in answer_text and "search_schema" in answer_text
    assert "list_tables" in explore.messages[0].content.text  # type: ignore[union-attr]
    assert schemas.completion.values == ["sales"]
    assert tables.completion.values == ["order_items", "orders"]
    text = overview.contents[0].text  # type: ignore[union-attr]
    assert text.startswith("Database demo (") and "PostgreSQL 1" in text and "sales (" in text


CATALOG_TABLES = 5000


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def catalog_url(pg: DemoDatabase) -> AsyncIterator[str]:
    """A separate database of 5,000 tables in 10 schemas, each with a comment and a foreign key."""
    await pg.admin_execute("DROP DATABASE IF EXISTS catalog5k")
    await load_catalog(pg.admin_url, "catalog5k", CATALOG_TABLES, reader="mcp_reader")
    yield pg.url.rsplit("/", 1)[0] + "/catalog5k"
    await pg.admin_execute("DROP DATABASE catalog5k WITH (FORCE)")


async def test_a_catalog_of_5000_tables_stays_small_and_fast(catalog_url: str) -> None:
    total = CATALOG_TABLES + 10
    async with mcp_client(catalog_url) as client:
        pages: list[list[str]] = []
        largest = 0
        cursor = None
        while True:
            page = await client.list_resources(cursor=cursor)
            pages.append([str(r.uri) for r in page.resources])
            largest = max(largest, len(page.model_dump_json()))
            cursor = page.next_cursor
            if not cursor:
                break
        summary = await client.call_tool("list_tables", {})
        first = await client.call_tool("list_tables", {"schema": "app_3"})
        last = await client.call_tool("list_tables", {"schema": "app_3", "offset": 400})
        search = await client.call_tool("search_schema", {"pattern": "entity_4201"})
        described = await client.call_tool("describe_table", {"table": "app_1.entity_4201"})
        around_root = await client.call_tool("relationships", {"table": "app_1.root"})
        with pytest.raises(MCPError, match="Invalid resource list cursor"):
            await client.list_resources(cursor="not-a-cursor")
    assert pages[0][0] == "postgres://database", "the overview comes first"
    uris = [uri for page in pages for uri in page][1:]
    assert len(uris) == len(set(uris)) == total and len(pages) == 26
    assert all(len(page) <= 200 for page in [pages[0][1:], *pages[1:]]) and largest < 60_000
    summary_text = text_of(summary)
    assert summary.structured_content["tables"] == [] and "too many to list at once" in summary_text
    assert "app_3 (501 tables)" in summary_text and len(summary_text) < 1000
    assert len(first.structured_content["tables"]) == 200 and first.structured_content["truncated"] is True
    assert text_of(first).endswith(
        "(tables 1 to 200 of 501; next page: offset=200; search_schema finds tables by name)"
    )
    assert len(text_of(first)) < 10_000
    assert len(last.structured_content["tables"]) == 101 and last.structured_content["truncated"] is False
    hits = search.structured_content["hits"]
    assert (hits[0]["schema"], hits[0]["table_name"], hits[0]["column_name"]) == (
        "app_1",
        "entity_4201",
        None,
    )
    assert described.structured_content["foreign_keys"][0]["references"] == "app_1.root"
    assert len(around_root.structured_content["foreign_keys"]) == 500
    assert "… and 400 more" in text_of(around_root) and len(text_of(around_root)) < 8000


async def test_a_wide_table_describes_in_a_few_kilobytes(pg: DemoDatabase) -> None:
    columns = ", ".join(
        f"c{i:02d} {('bigint', 'text', 'numeric(12,2)', 'timestamptz', 'jsonb')[i % 5]}"
        + (" NOT NULL DEFAULT 0" if i % 5 == 0 else "")
        for i in range(50)
    )
    await pg.admin_execute(f"CREATE TABLE hr.wide (id int PRIMARY KEY, {columns})")
    await pg.admin_execute("COMMENT ON COLUMN hr.wide.c01 IS 'A column with a comment, as most have'")
    await pg.admin_execute("GRANT SELECT ON hr.wide TO mcp_reader")
    try:
        async with mcp_client(pg.url) as client:
            result = await client.call_tool("describe_table", {"table": "hr.wide"})
    finally:
        await pg.admin_execute("DROP TABLE hr.wide")
    text = text_of(result)
    assert len(result.structured_content["columns"]) == 51
    assert "c49 jsonb" in text and "c00 bigint NOT NULL default 0" in text
    assert len(text.encode()) < 3000


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def detail_schema(pg: DemoDatabase) -> AsyncIterator[str]:
    """Objects exercising every describable feature, in a schema of their own, dropped afterwards."""
    await pg.admin_execute(
        """
        CREATE SCHEMA detail;
        CREATE EXTENSION btree_gist SCHEMA detail;
        CREATE DOMAIN detail.percent AS numeric(5,2) CHECK (VALUE BETWEEN 0 AND 100);
        CREATE TABLE detail.rooms (
            id int PRIMARY KEY,
            parent_id int REFERENCES detail.rooms (id),
            label text COLLATE "C" NOT NULL,
            occupancy detail.percent,
            width_m numeric NOT NULL CHECK (width_m > 0),
            length_m numeric NOT NULL,
            area_m2 numeric GENERATED ALWAYS AS (width_m * length_m) STORED,
            booked tstzrange,
            EXCLUDE USING gist (id WITH =, booked WITH &&)
        );
        INSERT INTO detail.rooms (id, parent_id, label, width_m, length_m)
        SELECT g, NULLIF(g - 1, 0), 'room ' || g, 3, 4 FROM generate_series(1, 2000) g;
        CREATE MATERIALIZED VIEW detail.big_rooms AS SELECT id, area_m2 FROM detail.rooms WHERE area_m2 > 10;
        CREATE TABLE detail.readings (taken_on date NOT NULL, value int) PARTITION BY RANGE (taken_on);
        CREATE TABLE detail.readings_2025 PARTITION OF detail.readings
            FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
        CREATE TABLE detail.readings_2026 PARTITION OF detail.readings
            FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
        INSERT INTO detail.readings SELECT date '2025-01-01' + g % 700, g FROM generate_series(1, 50000) g;
        ANALYZE detail.readings;
        GRANT USAGE ON SCHEMA detail TO mcp_reader;
        GRANT SELECT ON ALL TABLES IN SCHEMA detail TO mcp_reader;
        """,
    )
    try:
        yield "detail"
    finally:
        await pg.admin_execute("DROP SCHEMA detail CASCADE")


async def test_describe_shows_domains_generated_columns_constraints_and_sizes(
    pg: DemoDatabase, detail_schema: str
) -> None:
    async with mcp_client(pg.url) as client:
        rooms = await client.call_tool("describe_table", {"table": "rooms", "schema": detail_schema})
        matview = await client.call_tool("describe_table", {"table": "detail.big_rooms"})
        readings = await client.call_tool("describe_table", {"table": "detail.readings"})
    assert not rooms.is_error, text_of(rooms)
    d = rooms.structured_content
    columns = {c["name"]: c for c in d["columns"]}
    assert columns["occupancy"]["type"] == "detail.percent"
    assert columns["occupancy"]["domain_base"] == "numeric(5,2)"
    assert columns["occupancy"]["domain_checks"] == ["CHECK (VALUE >= 0::numeric AND VALUE <= 100::numeric)"]
    assert columns["area_m2"]["generated"] == "(width_m * length_m)" and "default" not in columns["area_m2"]
    assert columns["label"]["collation"] == "C" and "collation" not in columns["length_m"]
    assert d["check_constraints"] == [
        {"name": "rooms_width_m_check", "definition": "CHECK (width_m > 0::numeric)"}
    ]
    assert d["exclusion_constraints"] == [
        {"name": "rooms_id_booked_excl", "definition": "EXCLUDE USING gist (id WITH =, booked WITH &&)"}
    ]
    self_key = {"name": "rooms_parent_id_fkey", "columns": ["parent_id"], "referenced_columns": ["id"]}
    assert d["foreign_keys"] == [{**self_key, "references": "detail.rooms"}]
    assert d["referenced_by"] == [{**self_key, "table": "detail.rooms"}]
    text = text_of(rooms)
    assert "parent_id integer → detail.rooms(id)" in text
    assert "Referenced by: detail.rooms(parent_id) → (id)" in text
    assert "Exclusion: EXCLUDE USING gist" in text and "Check: CHECK (width_m > 0::numeric)" in text

    m = matview.structured_content
    assert m["kind"] == "materialized view" and "WHERE rooms.area_m2 > 10::numeric" in m["definition"]
    assert "Definition: SELECT rooms.id," in text_of(matview)

    [expected] = await pg.admin_fetch(
        """SELECT sum(pg_total_relation_size(relid))::bigint AS bytes,
                  (sum(c.reltuples) FILTER (WHERE isleaf))::bigint AS estimate
           FROM pg_partition_tree('detail.readings') JOIN pg_class c ON c.oid = relid""",
    )
    r = readings.structured_content
    assert r["total_bytes"] == expected["bytes"] > 0
    assert r["estimated_rows"] == expected["estimate"] == 50000
    assert [p["name"] for p in r["partitions"]] == ["detail.readings_2025", "detail.readings_2026"]


async def test_listing_plans_on_5000_tables_stay_below_the_jit_threshold(catalog_url: str) -> None:
    """Compiling a plan priced above jit_above_cost took longer than running it (a per-row partition
    subquery priced the first page at 200,000+): the listing queries must stay cheap on big catalogs."""
    conn = await asyncpg.connect(catalog_url)
    try:
        threshold = float(await conn.fetchval("SELECT current_setting('jit_above_cost')"))
        no_limits: tuple[object, ...] = (None, None, [], [])
        costs: dict[str, float] = {}
        for label, sql, args in [
            ("first page", LIST_TABLES_SQL, (None, None, "", "", 201, 0, *no_limits)),
            ("a later page", LIST_TABLES_SQL, (None, None, "app_4", "entity_2504", 201, 0, *no_limits)),
            ("one schema, offset", LIST_TABLES_SQL, (None, "app_3", "", "", 200, 400, *no_limits)),
            ("one schema's count", COUNT_TABLES_SQL, (None, "app_3", *no_limits)),
        ]:
            plan = json.loads(await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args))
            costs[label] = plan[0]["Plan"]["Total Cost"]
    finally:
        await conn.close()
    assert all(cost < threshold / 10 for cost in costs.values()), costs
