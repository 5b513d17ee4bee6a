"""One server, several databases: every tool by name, separate limits, outages that stay contained."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from conftest import DemoDatabase
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_helpers import password_of, run_cli, text_of
from mcp_types import ResourceTemplateReference, TextResourceContents

from pg_mcp.config import load_config
from pg_mcp.server import build_server

CRM_SQL = """
CREATE SCHEMA sales;
CREATE TABLE sales.customers (id int PRIMARY KEY, name text NOT NULL, email text);
COMMENT ON TABLE sales.customers IS 'CRM contacts';
INSERT INTO sales.customers SELECT g, 'contact ' || g, 'c' || g || '@crm.example' FROM generate_series(1, 50) g;
CREATE TABLE sales.calls (id int PRIMARY KEY, customer_id int REFERENCES sales.customers, note text);
INSERT INTO sales.calls SELECT g, 1 + g % 50, 'call ' || g FROM generate_series(1, 200) g;
ANALYZE;
GRANT USAGE ON SCHEMA sales TO mcp_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA sales TO mcp_reader;
"""


@pytest.fixture(scope="session")
def crm_url(pg: DemoDatabase) -> Iterator[str]:
    """A second database on the same server, readable by the same least-privilege role."""
    import asyncio

    async def create() -> None:
        admin = await asyncpg.connect(pg.admin_url)
        try:
            await admin.execute("DROP DATABASE IF EXISTS crm WITH (FORCE)")
            await admin.execute("CREATE DATABASE crm")
            await admin.execute("GRANT CONNECT ON DATABASE crm TO mcp_reader")
        finally:
            await admin.close()
        conn = await asyncpg.connect(urlsplit(pg.admin_url)._replace(path="/crm").geturl())
        try:
            await conn.execute(CRM_SQL)
        finally:
            await conn.close()

    if urlsplit(pg.url).username != "mcp_reader":
        pytest.skip("needs the test cluster's own mcp_reader role")
    asyncio.run(create())
    yield urlsplit(pg.url)._replace(path="/crm").geturl()


def _write_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "pg-mcp.toml"
    path.write_text(text)
    return str(path)


@pytest.fixture()
def two_databases(pg: DemoDatabase, crm_url: str, tmp_path: Path) -> str:
    return _write_config(
        tmp_path,
        f"""
[server]
max_rows = 20

[databases.shop]
url = "{pg.url}"
hidden_columns = ["sales.customers.email"]

[databases.crm]
url = "{crm_url}"
max_rows = 3
statement_timeout = 7
""",
    )


@asynccontextmanager
async def client_for(config_file: str) -> AsyncIterator[Client]:
    async with Client(build_server(load_config(config_file=config_file, dotenv=False))) as client:
        yield client


async def test_every_tool_answers_for_each_database_by_name(two_databases: str) -> None:
    calls: dict[str, dict[str, Any]] = {
        "list_schemas": {},
        "list_tables": {"schema": "sales"},
        "describe_table": {"table": "sales.customers"},
        "search_schema": {"pattern": "customer"},
        "relationships": {"table": "sales.customers"},
        "sample_rows": {"table": "sales.customers", "n": 2},
        "column_stats": {"table": "sales.customers", "column": "id"},
        "query": {"sql": "SELECT max(id) AS n FROM sales.customers"},
        "explain": {"sql": "SELECT id FROM sales.customers WHERE id = 1"},
    }
    async with client_for(two_databases) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        answers = {
            (database, name): await client.call_tool(name, {**arguments, "database": database})
            for database in ("shop", "crm")
            for name, arguments in calls.items()
        }
        default = await client.call_tool("query", {"sql": "SELECT max(id) AS n FROM sales.customers"})
    assert set(tools) == set(calls)
    for tool in tools.values():
        spec = tool.input_schema["properties"]["database"]
        assert spec["anyOf"][0]["enum"] == ["shop", "crm"], tool.name
        assert "leave out for shop" in spec["description"]
    for (database, name), result in answers.items():
        assert not result.is_error, (database, name, text_of(result))
    counts = {db: answers[(db, "query")].structured_content["rows"] for db in ("shop", "crm")}
    assert counts["crm"] == [[50]] and counts["shop"] != [[50]]
    assert default.structured_content["rows"] == counts["shop"], "without a name: the first database"
    assert "CRM contacts" in text_of(answers[("crm", "describe_table")])


async def test_a_wrong_database_name_lists_the_valid_ones(two_databases: str) -> None:
    async with client_for(two_databases) as client:
        wrong = await client.call_tool("list_schemas", {"database": "sales_db"})
    assert wrong.is_error
    assert "There is no database 'sales_db'" in text_of(wrong)
    assert "Databases: shop, crm (default shop)" in text_of(wrong)


async def test_limits_and_hidden_columns_hold_per_database(two_databases: str) -> None:
    async with client_for(two_databases) as client:
        shop_rows = await client.call_tool("query", {"sql": "SELECT * FROM sales.orders", "database": "shop"})
        crm_rows = await client.call_tool("query", {"sql": "SELECT * FROM sales.calls", "database": "crm"})
        shop_email = await client.call_tool(
            "query", {"sql": "SELECT email FROM sales.customers", "database": "shop"}
        )
        crm_email = await client.call_tool(
            "query", {"sql": "SELECT email FROM sales.customers", "database": "crm"}
        )
        crm_described = await client.call_tool(
            "describe_table", {"table": "sales.customers", "database": "crm"}
        )
        shop_described = await client.call_tool(
            "describe_table", {"table": "sales.customers", "database": "shop"}
        )
    assert shop_rows.structured_content["row_count"] == 20, "[server] max_rows"
    assert crm_rows.structured_content["row_count"] == 3, "[databases.crm] max_rows"
    assert shop_email.is_error and "email" in text_of(shop_email)
    assert not crm_email.is_error and crm_email.structured_content["rows"][0][0].endswith("@crm.example")
    assert "email" in text_of(crm_described) and "email" not in text_of(shop_described)


async def test_resources_and_completions_cover_every_database(two_databases: str) -> None:
    async with client_for(two_databases) as client:
        listed = await client.list_resources()
        templates = await client.list_resource_templates()
        crm_table = await client.read_resource("postgres://crm/sales/customers")
        shop_table = await client.read_resource("postgres://shop/sales/orders")
        overview = await client.read_resource("postgres://database")
        template = ResourceTemplateReference(
            type="ref/resource", uri="postgres://{database}/{schema}/{table}"
        )
        databases = await client.complete(template, {"name": "database", "value": "c"})
        tables = await client.complete(
            template, {"name": "table", "value": "ca"}, {"database": "crm", "schema": "sales"}
        )
        with pytest.raises(MCPError) as missing:
            await client.read_resource("postgres://nowhere/sales/orders")
    uris = [resource.uri for resource in listed.resources]
    assert uris[0] == "postgres://database"
    assert "postgres://shop/sales/orders" in uris and "postgres://crm/sales/customers" in uris
    assert [t.uri_template for t in templates.resource_templates] == [
        "postgres://{database}/{schema}/{table}"
    ]
    for result, start in ((crm_table, "sales.customers (table"), (shop_table, "sales.orders (table")):
        [content] = result.contents
        assert isinstance(content, TextResourceContents) and content.text.startswith(start)
    [content] = overview.contents
    assert isinstance(content, TextResourceContents)
    assert content.text.startswith("Databases: shop, crm (default shop).") and "## crm" in content.text
    assert databases.completion.values == ["crm"]
    assert tables.completion.values == ["calls"]
    assert missing.value.error.code == -32602 and "Databases: shop, crm" in missing.value.error.message


async def test_a_database_that_is_down_leaves_the_others_serving(pg: DemoDatabase, tmp_path: Path) -> None:
    config = _write_config(
        tmp_path,
        f"""
[databases.shop]
url = "{pg.url}"

[databases.gone]
url = "postgresql://mcp_reader:secret-pw@127.0.0.1:1/none"
connect_timeout = 2
""",
    )
    async with client_for(config) as client:
        down = await client.call_tool("list_schemas", {"database": "gone"})
        up = await client.call_tool("query", {"sql": "SELECT 1 AS one", "database": "shop"})
        listed = await client.list_resources()
    assert down.is_error and "127.0.0.1:1/none" in text_of(down) and "secret-pw" not in text_of(down)
    assert not up.is_error and up.structured_content["rows"] == [[1]]
    assert any(r.uri.startswith("postgres://shop/") for r in listed.resources), "the reachable one is listed"


async def test_audit_lines_name_the_database(two_databases: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="pg_mcp.audit"):
        async with client_for(two_databases) as client:
            await client.call_tool("query", {"sql": "SELECT 1 AS one", "database": "crm"})
            await client.call_tool("list_schemas", {})
    entries = [json.loads(r.getMessage()) for r in caplog.records if r.name == "pg_mcp.audit"]
    assert [(e["tool"], e["database"]) for e in entries] == [("query", "crm"), ("list_schemas", "shop")]


async def test_the_instructions_name_the_databases(two_databases: str) -> None:
    async with client_for(two_databases) as client:
        instructions = client.instructions
    assert instructions and "Databases: shop, crm." in instructions


def test_check_reports_every_database_and_fails_when_one_cannot_serve(
    pg: DemoDatabase, crm_url: str, tmp_path: Path
) -> None:
    good = _write_config(
        tmp_path, f'[databases.shop]\nurl = "{pg.url}"\n[databases.crm]\nurl = "{crm_url}"\n'
    )
    both = run_cli("check", "--config", good)
    assert both.returncode == 0, both.stderr
    assert "Connected to shop: " in both.stdout and "Connected to crm: " in both.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(
        f'[databases.shop]\nurl = "{pg.url}"\n[databases.gone]\nurl = "postgresql://mcp_reader:pw@127.0.0.1:1/x"\n'
        "connect_timeout = 2\n"
    )
    one_down = run_cli("check", "--config", str(bad))
    assert one_down.returncode == 1
    assert "Connected to shop: " in one_down.stdout
    assert "Cannot serve gone: " in one_down.stderr and "Cannot serve: gone." in one_down.stderr
    assert password_of(pg.url) not in one_down.stdout + one_down.stderr
