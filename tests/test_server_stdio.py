"""The tools end to end on the demo database, driven by the official MCP client: in process through
the same server object, and over stdio for what only a subprocess shows (start-up, audit log, runaway
queries, disconnects, oversized lines)."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest
from conftest import DemoDatabase
from mcp import Client, StdioServerParameters
from mcp_helpers import ROOT, fetchval, mcp_client, password_of, server_env, stdio_client, text_of
from mcp_types import ReadResourceResult, TextResourceContents

pytestmark = pytest.mark.asyncio


def text_of_resource(result: ReadResourceResult) -> str:
    [content] = result.contents
    assert isinstance(content, TextResourceContents)
    return content.text


async def test_initialize_and_list_tools(pg: DemoDatabase) -> None:
    async with stdio_client(pg.url) as client:
        assert client.server_info is not None and client.server_info.name == "pg-mcp"
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == {
        "query", "list_schemas", "list_tables", "describe_table", "search_schema", "relationships",
        "sample_rows", "column_stats", "explain",
    }  # fmt: skip
    for tool in tools.values():
        assert tool.annotations is not None and tool.annotations.read_only_hint is True
        assert tool.description and len(tool.description) > 40
    assert tools["query"].output_schema is not None
    assert {"columns", "rows", "row_count", "truncated"} <= set(tools["query"].output_schema["properties"])


async def test_list_schemas_and_tables(pg: DemoDatabase) -> None:
    async with mcp_client(pg.url) as client:
        schemas = await client.call_tool("list_schemas", {})
        tables = await client.call_tool("list_tables", {})
        sales = await client.call_tool("list_tables", {"schema": "sales"})
        missing = await client.call_tool("list_tables", {"schema": "salse"})
    assert not schemas.is_error
    names = {s["name"] for s in schemas.structured_content["schemas"]}
    assert {"sales", "inventory", "hr", "analytics"} <= names
    listed = {f"{t['schema']}.{t['name']}": t for t in tables.structured_content["tables"]}
    assert listed["analytics.page_views"]["kind"] == "partitioned table"
    assert listed["analytics.daily_revenue"]["kind"] == "materialized view"
    assert listed["sales.customer_order_summary"]["kind"] == "view"
    assert not any(name.startswith("analytics.page_views_2025") for name in listed), "partitions are folded"
    assert 900_000 <= listed["sales.order_items"]["estimated_rows"] <= 1_100_000
    assert 90_000 <= listed["analytics.page_views"]["estimated_rows"] <= 110_000
    assert "sales.order_items ~1,000,000 rows" in text_of(tables)
    assert {t["schema"] for t in sales.structured_content["tables"]} == {"sales"}
    assert missing.is_error and "sales" in text_of(missing)


async def test_describe_table(pg: DemoDatabase) -> None:
    async with mcp_client(pg.url) as client:
        orders = await client.call_tool("describe_table", {"table": "sales.orders"})
        gift = await client.call_tool("describe_table", {"table": 'sales."Gift Cards"'})
        gift_plain = await client.call_tool("describe_table", {"table": "gift cards", "schema": "sales"})
        upper = await client.call_tool("describe_table", {"table": "SALES.ORDERS"})
        unknown = await client.call_tool("describe_table", {"table": "sales.order"})
        wrong_schema = await client.call_tool("describe_table", {"table": "orders", "schema": "salse"})
    assert not orders.is_error, text_of(orders)
    d = orders.structured_content
    columns = {c["name"]: c for c in d["columns"]}
    assert d["primary_key"] == ["id"]
    assert columns["status"]["type"] == "sales.order_status"
    assert columns["status"]["enum_values"][:2] == ["pending", "paid"]
    assert columns["customer_id"]["nullable"] is False
    assert any(
        fk["references"] == "sales.customers" and fk["columns"] == ["customer_id"] for fk in d["foreign_keys"]
    )
    assert any(r["table"] == "sales.order_items" and r["columns"] == ["order_id"] for r in d["referenced_by"])
    assert d["indexes"], "secondary indexes are listed"
    text = text_of(orders)
    assert text.startswith("sales.orders (table, ~")
    assert "customer_id bigint NOT NULL → sales.customers(id)" in text
    assert len(text) < 4000
    assert not gift.is_error and gift.structured_content["name"] == "Gift Cards"
    assert '"Code" text' in text_of(gift)
    assert not gift_plain.is_error and gift_plain.structured_content["name"] == "Gift Cards"
    assert not upper.is_error and upper.structured_content["name"] == "orders"
    assert unknown.is_error
    assert "does not exist" in text_of(unknown) and "sales.orders" in text_of(unknown)
    assert wrong_schema.is_error and "Closest existing names: sales.orders" in text_of(wrong_schema)


async def test_table_name_injection_is_just_a_missing_name(pg: DemoDatabase) -> None:
    before = await fetchval(pg.admin_url, "SELECT count(*) FROM sales.products")
    attempts = [
        "products; DROP TABLE sales.products",
        "sales.products' OR '1'='1",
        'sales."products"; DELETE FROM sales.products; --"',
        "pg_sleep(10)",
        "x" * 5000,
        "\x00\x01binary",
    ]
    async with mcp_client(pg.url) as client:
        for attempt in attempts:
            result = await client.call_tool("describe_table", {"table": attempt})
            assert result.is_error, attempt
            assert "Traceback" not in text_of(result)
        ok = await client.call_tool("describe_table", {"table": "sales.products"})
    assert not ok.is_error
    assert await fetchval(pg.admin_url, "SELECT count(*) FROM sales.products") == before


async def test_query_results_and_limits(pg: DemoDatabase) -> None:
    async with mcp_client(pg.url) as client:
        small = await client.call_tool(
            "query", {"sql": "SELECT id, status, total FROM sales.orders ORDER BY id LIMIT 3;"}
        )
        capped = await client.call_tool("query", {"sql": "SELECT * FROM sales.order_items", "max_rows": 5})
        default = await client.call_tool("query", {"sql": "SELECT * FROM sales.order_items"})
        too_many = await client.call_tool("query", {"sql": "SELECT 1", "max_rows": 1_000_000})
    assert not small.is_error, text_of(small)
    s = small.structured_content
    assert s["row_count"] == 3 and s["truncated"] is False
    assert [c["name"] for c in s["columns"]] == ["id", "status", "total"]
    assert [c["type"] for c in s["columns"]] == ["bigint", "sales.order_status", "numeric"]
    assert [row[0] for row in s["rows"]] == [1, 2, 3]
    assert isinstance(s["rows"][0][2], str), "numeric stays exact text"
    assert text_of(small).splitlines()[0] == "id:bigint\tstatus:sales.order_status\ttotal:numeric"
    assert text_of(small).endswith("(3 rows)")
    assert capped.structured_content["row_count"] == 5 and capped.structured_content["truncated"] is True
    assert "cut at max_rows=5; more rows exist" in text_of(capped)
    assert default.structured_content["row_count"] == 100 and default.structured_content["truncated"]
    assert too_many.is_error and "max_rows must be between 1 and 1000" in text_of(too_many)


async def test_a_wide_result_reads_in_under_half_the_bytes_of_pretty_json(pg: DemoDatabase) -> None:
    sql = (
        "SELECT c.*, o.id AS order_id, o.status, o.ordered_at, o.shipping_address, o.total, o.note "
        "FROM sales.orders o JOIN sales.customers c ON c.id = o.customer_id ORDER BY o.id"
    )
    async with mcp_client(pg.url) as client:
        result = await client.call_tool("query", {"sql": sql})
    s = result.structured_content
    assert s["row_count"] == 100 and len(s["columns"]) >= 14
    names = [c["name"] for c in s["columns"]]
    pretty = json.dumps(
        [dict(zip(names, row, strict=True)) for row in s["rows"]], indent=2, ensure_ascii=False
    )
    assert len(text_of(result).encode()) < 0.5 * len(pretty.encode())


async def test_huge_results_return_the_first_page_quickly(pg: DemoDatabase) -> None:
    """Only the first page is computed: reading these whole would run far past the 5 s timeout."""
    queries = [
        "SELECT * FROM sales.order_items",
        "SELECT a.*, b.* FROM sales.order_items a CROSS JOIN sales.order_items b",
        "SELECT generate_series(1, 1000000000) AS n",
    ]
    async with mcp_client(pg.url, statement_timeout=5) as client:
        for sql in queries:
            result = await client.call_tool("query", {"sql": sql})
            assert not result.is_error, f"{sql}: not a first page within the timeout: {text_of(result)}"
            assert result.structured_content["row_count"] == 100 and result.structured_content["truncated"]
            assert "more rows exist" in text_of(result).splitlines()[-1]


async def test_big_values_are_cut_by_the_database_with_their_length_stated(pg: DemoDatabase) -> None:
    sql = (
        "SELECT array_agg(g) AS ids, repeat('é', 40000) AS x, repeat('b', 3) AS x, "
        "ROW(repeat('c', 5000), 1) AS pair, convert_to(repeat('é', 20000), 'UTF8') AS blob, "
        "jsonb_build_object('k', repeat('v', 9000)) AS doc, "
        "(SELECT array_agg(i) FROM generate_series(1, 600) AS i) AS mid FROM generate_series(1, 2000000) AS g"
    )
    async with mcp_client(pg.url) as client:
        result = await client.call_tool("query", {"sql": sql})
    assert not result.is_error, text_of(result)
    [row] = result.structured_content["rows"]
    assert [c["name"] for c in result.structured_content["columns"]] == [
        "ids",
        "x",
        "x",
        "pair",
        "blob",
        "doc",
        "mid",
    ]
    assert [c["type"] for c in result.structured_content["columns"]][:2] == ["integer[]", "text"]
    ids, text, short, pair, blob, doc, mid = row
    assert ids.startswith("{1,2,3,") and ids.endswith("…[cut: 14,888,897 chars in all]")
    assert text == "é" * 1000 + "…[cut: 40,000 chars in all]"
    assert short == "bbb"
    assert pair.startswith("(" + "c" * 999) and pair.endswith("…[cut: 5,004 chars in all]")
    assert blob.startswith("\\xc3a9c3a9") and blob.endswith("…[cut: 40,000 bytes in all]")
    assert doc.startswith('{"k": "vvv') and doc.endswith("…[cut: 9,009 chars in all]")
    assert mid.startswith("{1,2,3,") and mid.endswith("…[cut: 2,293 chars in all]"), "same form at any size"
    assert len(text_of(result).encode()) < 12_000


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("", "empty"),
        ("   -- nothing here\n", "empty"),
        ("SELEC id FROM sales.orders", "line 1, column"),
        ("SELECT id FROM sales.orders WHERE (id > 1", "line 1, column 41"),
        ("SELECT 1; SELECT 2", "one statement"),
        ("SELECT 1; COMMIT; DROP SCHEMA sales CASCADE;", "one statement"),
        ("DELETE FROM sales.products", "read-only"),
        ("UPDATE sales.products SET price = 0", "read-only"),
        ("INSERT INTO sales.products (id) VALUES (999999)", "read-only"),
        ("DROP TABLE sales.products", "read-only"),
        ("TRUNCATE sales.products", "read-only"),
        ("CREATE TABLE sales.x (id int)", "read-only"),
        ("WITH d AS (DELETE FROM sales.products RETURNING *) SELECT * FROM d", "DELETE"),
        ("SELECT * INTO sales.copy FROM sales.products", "INTO"),
        ("SELECT * FROM sales.products FOR UPDATE", "FOR UPDATE"),
        ("SELECT pg_sleep(10)", "pg_sleep"),
        ("SELECT * FROM pg_read_file('/etc/passwd')", "pg_read_file"),
        ("SELECT nonexistent_column FROM sales.products", "does not exist"),
        ("SELECT id,\n  nope FROM sales.products", 'column "nope" does not exist (at line 2, column 3)'),
        ("SELECT * FROM sales.no_such_table", "does not exist"),
    ],
)
async def test_bad_queries_are_refused_clearly(pg: DemoDatabase, sql: str, expected: str) -> None:
    before = await fetchval(pg.admin_url, "SELECT count(*) FROM sales.products")
    async with mcp_client(pg.url) as client:
        result = await client.call_tool("query", {"sql": sql})
        after_ok = await client.call_tool("query", {"sql": "SELECT count(*) AS n FROM sales.products"})
    assert result.is_error
    text = text_of(result)
    assert expected.lower() in text.lower(), text
    assert "Traceback" not in text
    assert "Hint:" in text or "does not exist" in text
    assert not after_ok.is_error and after_ok.structured_content["rows"][0][0] == before
    assert await fetchval(pg.admin_url, "SELECT count(*) FROM sales.products") == before
    assert await fetchval(pg.admin_url, "SELECT to_regclass('sales.copy') IS NULL")


async def test_statement_timeout_cancels_and_the_next_call_works(pg: DemoDatabase) -> None:
    slow = "SELECT count(*) FROM sales.order_items a CROSS JOIN sales.order_items b"
    async with mcp_client(pg.url, statement_timeout=1, max_cost=0, max_plan_rows=0) as client:
        result = await client.call_tool("query", {"sql": slow})
        after = await client.call_tool("query", {"sql": "SELECT 42 AS answer"})
    assert result.is_error and "cancel" in text_of(result).lower() and "timeout" in text_of(result).lower()
    assert not after.is_error and after.structured_content["rows"] == [[42]]
    running = await fetchval(
        pg.admin_url,
        f"SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%{slow[:40]}%' AND state = 'active' AND pid <> pg_backend_pid()",
    )
    assert running == 0, "the cancelled statement must not keep running on the server"


async def test_connection_loss_between_calls_recovers(pg: DemoDatabase) -> None:
    async with mcp_client(pg.url) as client:
        first = await client.call_tool("query", {"sql": "SELECT 1 AS one"})
        killed = await fetchval(
            pg.admin_url,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'pg-mcp'",
        )
        second = await client.call_tool("query", {"sql": "SELECT 2 AS two"})
        third = await client.call_tool("list_tables", {"schema": "hr"})
    assert not first.is_error and killed >= 1
    assert not second.is_error, text_of(second)
    assert second.structured_content["rows"] == [[2]]
    assert not third.is_error


async def test_resources_list_read_and_template(pg: DemoDatabase) -> None:
    async with mcp_client(pg.url) as client:
        listed = await client.list_resources()
        templates = await client.list_resource_templates()
        orders = await client.read_resource("postgres://sales/orders")
        gift = await client.read_resource("postgres://sales/Gift%20Cards")
    uris = {str(r.uri) for r in listed.resources}
    assert {
        "postgres://database",
        "postgres://sales/orders",
        "postgres://sales/Gift%20Cards",
        "postgres://analytics/page_views",
    } <= uris
    assert [t.uri_template for t in templates.resource_templates] == ["postgres://{schema}/{table}"]
    assert text_of_resource(orders).startswith("sales.orders (table")
    assert text_of_resource(gift).startswith('sales."Gift Cards" (table')


async def test_client_disconnect_mid_query_stops_the_statement(pg: DemoDatabase) -> None:
    slow = "SELECT count(*) FROM sales.order_items a CROSS JOIN sales.order_items b WHERE a.quantity > b.quantity"
    marker = "pg_mcp_disconnect_probe"
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "pg_mcp", pg.url], env=server_env(), cwd=str(ROOT)
    )
    with anyio.move_on_after(3):  # leave the client (and the server's stdin) while the query runs
        async with Client(params, read_timeout_seconds=60) as client:
            await client.call_tool("query", {"sql": f"/* {marker} */ {slow}"})
    deadline = time.monotonic() + 15
    running = -1
    while time.monotonic() < deadline:
        running = await fetchval(
            pg.admin_url,
            f"SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%{marker}%' "
            "AND state = 'active' AND pid <> pg_backend_pid()",
        )
        if running == 0:
            break
        await anyio.sleep(0.5)
    assert running == 0, "the statement kept running after its client went away"


async def test_audit_file_records_every_statement(pg: DemoDatabase, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    long_sql = "SELECT " + " + ".join(["1"] * 2000) + " AS total"
    async with stdio_client(pg.url, "--audit-file", str(audit)) as client:
        await client.call_tool("query", {"sql": "SELECT 1 AS one"})
        await client.call_tool("query", {"sql": "DELETE FROM sales.products"})
        await client.call_tool("describe_table", {"table": "sales.orders"})
        await client.call_tool("search_schema", {"pattern": "x'); DROP TABLE sales.orders; --"})
        await client.call_tool("query", {"sql": long_sql})
    entries = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [e["outcome"] for e in entries] == ["ok", "refused:not_read_only", "ok", "ok", "ok"]
    assert entries[0]["sql"] == "SELECT 1 AS one" and entries[0]["rows"] == 1 and entries[0]["ms"] >= 0
    assert entries[1]["reason"] and entries[1]["time"].endswith("+00:00")
    assert entries[2]["tool"] == "describe_table" and entries[2]["arguments"] == {"table": "sales.orders"}
    assert (
        entries[3]["arguments"] == {"pattern": "x'); DROP TABLE sales.orders; --"}
        and entries[3]["sql"] is None
    )
    assert entries[4]["sql"] == long_sql, "the whole statement, however long"
    assert password_of(pg.url) not in audit.read_text()


async def test_runaway_queries_end_clearly_while_other_calls_are_served(pg: DemoDatabase) -> None:
    runaway = {
        "huge generate_series": "SELECT count(*) FROM generate_series(1, 10000000000) AS g",
        "unbounded recursion": "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
        "cartesian join": "SELECT count(*) FROM sales.order_items a, sales.order_items b",
        "huge string_agg": "SELECT length(string_agg(a.order_id::text, ',')) FROM sales.order_items a, sales.orders b",
    }
    results: dict[str, Any] = {}
    fast_finished_first: list[bool] = []
    big = "CREATE TABLE public.big_cell AS SELECT repeat('x', 20000000) AS big"
    await pg.admin_execute(f"{big}; GRANT SELECT ON public.big_cell TO {urlsplit(pg.url).username}")
    budget_off = ("--max-cost", "0", "--max-plan-rows", "0")  # here the timeout is what is tested
    async with stdio_client(pg.url, "--statement-timeout", "3", *budget_off) as client:

        async def run(name: str, sql: str) -> None:
            results[name] = await client.call_tool("query", {"sql": sql})

        async def fast_calls() -> None:
            await anyio.sleep(0.5)  # the runaway statements are running by now
            for _ in range(5):
                result = await client.call_tool("query", {"sql": "SELECT count(*) AS n FROM hr.departments"})
                assert result.structured_content["rows"] == [[8]]
            fast_finished_first.append(not results)  # no runaway has ended yet: the fast calls did not wait

        async with anyio.create_task_group() as group:
            for name, sql in runaway.items():
                group.start_soon(run, name, sql)
            group.start_soon(fast_calls)
        big_cell = await client.call_tool("query", {"sql": "SELECT big FROM public.big_cell"})
        stream = await client.call_tool(
            "query",
            {"sql": "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r) SELECT n FROM r"},
        )
    for name, result in results.items():
        assert result.is_error, name
        assert "cancelled" in text_of(result) and "statement timeout" in text_of(result).lower(), name
    assert fast_finished_first == [True], "fast calls are served while the runaway statements run"
    assert big_cell.structured_content["rows"][0][0].endswith("…[cut: 20,000,000 chars in all]")
    assert len(text_of(big_cell)) < 2000
    assert stream.structured_content["row_count"] == 100 and stream.structured_content["truncated"]
    await pg.admin_execute("DROP TABLE public.big_cell")


def _peak_rss_kib(pid: int) -> int:
    """VmHWM of a process: its peak resident memory so far."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc status")


async def test_an_80_mb_line_is_skipped_with_bounded_memory_and_answered(pg: DemoDatabase) -> None:
    """A raw JSON-RPC session over real pipes: the huge line gets a parse error, the next request its answer."""
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc to read the server's peak memory")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pg_mcp", pg.url,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=server_env(), cwd=ROOT,
        limit=1024 * 1024,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None

    async def send(message: dict[str, Any]) -> None:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(message).encode() + b"\n")
        await proc.stdin.drain()

    async def receive() -> dict[str, Any]:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 120)
        assert line, "the server closed stdout"
        reply: dict[str, Any] = json.loads(line)
        return reply

    try:
        await send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}})  # fmt: skip
        assert (await receive())["id"] == 1
        await send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        await send({"jsonrpc": "2.0", "id": 2, "method": "ping"})
        assert (await receive()) == {"jsonrpc": "2.0", "id": 2, "result": {}}
        # A first call, so that what the server loads after `initialize` (parsers, pool) is in `before`.
        await send({"jsonrpc": "2.0", "id": 20, "method": "tools/call",
                    "params": {"name": "query", "arguments": {"sql": "SELECT 1 AS warm"}}})  # fmt: skip
        assert (await receive())["id"] == 20
        before = _peak_rss_kib(proc.pid)
        line_bytes = 80 * 1024 * 1024
        head = b'{"jsonrpc": "2.0", "id": 3, "method": "ping", "params": {"pad": "'
        proc.stdin.write(head)
        chunk = b"x" * (1024 * 1024)
        for _ in range(line_bytes // len(chunk)):
            proc.stdin.write(chunk)
            await proc.stdin.drain()
        proc.stdin.write(b'"}}\n')
        await send({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
                    "params": {"name": "query", "arguments": {"sql": "SELECT 41 + 1 AS answer"}}})  # fmt: skip
        error = await receive()
        assert error["id"] is None and error["error"]["code"] == -32700
        assert "was skipped" in error["error"]["message"]
        answer = await receive()
        assert answer["id"] == 4 and answer["result"]["structuredContent"]["rows"] == [[42]]
        grown_mib = (_peak_rss_kib(proc.pid) - before) / 1024
        assert grown_mib < 40, f"the server's peak memory grew by {grown_mib:.0f} MiB for an 80 MiB line"
    finally:
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def test_a_query_over_the_cost_budget_is_refused_with_its_estimate(pg: DemoDatabase) -> None:
    cartesian = "SELECT count(*) FROM sales.order_items a, sales.order_items b"
    async with mcp_client(pg.url) as client:
        refused = await client.call_tool("query", {"sql": cartesian})
        explained = await client.call_tool("explain", {"sql": cartesian})
    assert refused.is_error and "rule cost_budget" in text_of(refused), text_of(refused)
    assert "PG_MCP_MAX_COST" in text_of(refused)
    assert not explained.is_error and "Estimated total cost" in text_of(explained)
    assert "PG_MCP_MAX_COST" in text_of(explained)


UNTRUSTED_ESTIMATES = [
    (
        "recursion_without_bound",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
    ),
    (
        "recursion_bound_far_away",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3e8) SELECT sum(n) FROM r",
    ),
    ("series_from_subquery", "SELECT count(*) FROM generate_series(1, (SELECT 3e8)::int)"),
    (
        "series_in_select_list",
        "SELECT count(*) FROM (SELECT generate_series(1, (SELECT 3e8)::int) AS g) AS s",
    ),
    ("series_stored_whole", "SELECT * FROM generate_series(1, (SELECT 3e8)::int) LIMIT 5"),
]
TRUSTED_ESTIMATES = [
    ("counted_recursion", "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1000) SELECT sum(n) FROM r"),
    ("falling_counter", "WITH RECURSIVE r(n) AS (SELECT 50 UNION ALL SELECT n - 1 FROM r WHERE n > 0) SELECT max(n) FROM r"),
    (
        "hierarchy_walk_by_union",
        "WITH RECURSIVE down AS (SELECT id, manager_id FROM hr.employees WHERE manager_id IS NULL UNION "
        "SELECT e.id, e.manager_id FROM hr.employees e JOIN down d ON e.manager_id = d.id) SELECT count(*) FROM down",
    ),
    ("unbounded_recursion_read_lazily", "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r"),
    ("constant_series", "SELECT count(*) FROM generate_series(1, 1000)"),
    ("series_in_select_list_lazily", "SELECT generate_series(1, (SELECT 3e8)::int) AS g"),
]  # fmt: skip


async def test_estimates_the_planner_only_guesses_are_read_from_the_text(pg: DemoDatabase) -> None:
    """A recursion or a set-returning function whose size the text does not bound is refused before it
    runs when a step would read all of it; bounded ones and lazily read ones run."""
    async with mcp_client(pg.url, max_plan_rows=1_000_000) as client:
        refused = {name: await client.call_tool("query", {"sql": sql}) for name, sql in UNTRUSTED_ESTIMATES}
        served = {name: await client.call_tool("query", {"sql": sql}) for name, sql in TRUSTED_ESTIMATES}
    for name, result in refused.items():
        assert result.is_error and "rule row_budget" in text_of(result), (name, text_of(result))
    for name, result in served.items():
        assert not result.is_error, (name, text_of(result))
    assert "Bound it in the text" in text_of(refused["recursion_without_bound"])
    assert "the recursive CTE r" in text_of(refused["recursion_bound_far_away"])
    assert served["counted_recursion"].structured_content["rows"] == [[500500]]
    assert served["unbounded_recursion_read_lazily"].structured_content["truncated"]


async def test_an_audit_file_on_a_full_disk_is_reported_once_not_per_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """/dev/full fails every write with ENOSPC, as a full filesystem does."""
    from pg_mcp.server.audit_file import AuditFile

    handler = AuditFile("/dev/full")
    logger = logging.getLogger("pg_mcp.test_audit_full")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with caplog.at_level(logging.ERROR, logger="pg_mcp.server.audit_file"):
            for n in range(200):
                logger.warning("line %d", n)
    finally:
        logger.removeHandler(handler)
        handler.close()
    reports = [r for r in caplog.records if r.name == "pg_mcp.server.audit_file"]
    assert handler.failing and len(reports) == 1 and "No space left" in reports[0].getMessage()


async def test_calls_are_refused_while_a_required_audit_cannot_be_written(pg: DemoDatabase) -> None:
    async with stdio_client(pg.url, "--audit-file", "/dev/full", "--audit-required", "true") as client:
        first = await client.call_tool("query", {"sql": "SELECT 1 AS one"})
        second = await client.call_tool("query", {"sql": "SELECT 2 AS two"})
    assert not first.is_error, "the first call's line is the first to be lost"
    assert second.is_error and "audit file cannot be written" in text_of(second), text_of(second)
    async with stdio_client(pg.url, "--audit-file", "/dev/full") as client:
        answers = [await client.call_tool("query", {"sql": "SELECT 1 AS one"}) for _ in range(3)]
    assert not any(answer.is_error for answer in answers), "without the setting, calls go on"
