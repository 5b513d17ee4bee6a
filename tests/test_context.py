"""What the operator writes for the model: each database's description, descriptions of schemas, tables
and columns beside PostgreSQL's comments, and a glossary; shown where the catalog shows the object, found
by search_schema, and never for what the operator's limits put out of reach."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import DemoDatabase
from factories import config_client, write_config
from mcp.shared.exceptions import MCPError
from mcp_helpers import mcp_client, text_of

from pg_mcp.config import load_config
from pg_mcp.errors import ConfigError, NotFoundError
from pg_mcp.server import build_server
from pg_mcp.server.principal import Principal, current_principal

#: Each out-of-reach object is described with "zebra": the word must never reach the model.
SHOP = """
[databases.shop]
url = "{url}"
description = "The web shop: orders, customers and products. Use it for sales questions."
schemas = ["sales", "inventory"]
hidden_columns = ["sales.customers.email"]

[databases.shop.descriptions]
sales = "Where the money is made"
"sales.orders" = "Lighthouse table: every checkout"
"sales.orders.status" = "Beacon: paid, shipped and delivered count as revenue"
"sales.customers.email" = "zebra login address"
"hr.employees" = "zebra payroll"
hr = "zebra people"
inventory.stock_levels.reserved = "Units promised to open orders"

[databases.shop.glossary."active customer"]
meaning = "An open account with an order in the last 90 days"
sql = "c.is_active AND c.id IN (SELECT customer_id FROM sales.orders WHERE ordered_at > now() - interval '90 days')"
tables = ["sales.customers", "sales.orders"]
columns = ["sales.customers.is_active"]

[databases.shop.glossary."payroll"]
meaning = "zebra salaries per month"
tables = ["hr.employees"]

[databases.shop.glossary."contact"]
meaning = "zebra how to reach a customer"
columns = ["sales.customers.email"]

[databases.copy]
url = "{url}"
description = "A scratch copy to try things on."
"""

pytestmark = pytest.mark.usefixtures("clean_environment")


def _resource_text(result: Any) -> str:
    return "\n".join(getattr(content, "text", "") for content in result.contents)


# The config file.


def test_descriptions_and_glossary_are_read_per_database(tmp_path: Path) -> None:
    config = load_config(None, write_config(tmp_path, SHOP.format(url="postgresql://h/shop")), dotenv=False)
    shop, copy = config.notes["shop"], config.notes["copy"]
    assert (config.databases["shop"].description or "").startswith("The web shop")
    assert shop.schema("sales") == "Where the money is made"
    assert shop.table("sales", "orders") == "Lighthouse table: every checkout"
    assert (shop.column("sales", "orders", "status") or "").startswith("Beacon")
    assert shop.column("inventory", "stock_levels", "reserved"), "an unquoted dotted key is read as written"
    [active, *_] = shop.glossary
    assert active.term == "active customer" and active.sql and active.sql.startswith("c.is_active")
    assert active.related == ["sales.customers", "sales.orders", "sales.customers.is_active"]
    assert not copy.glossary and not copy.tables


def test_the_single_database_has_them_at_the_top(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://h/shop")
    text = (
        '[server]\ndescription = "The shop"\n[descriptions]\n"sales.orders" = "Checkouts"\n'
        '[glossary.churn]\nmeaning = "A customer who closed the account"\n'
    )
    config = load_config(None, write_config(tmp_path, text), dotenv=False)
    assert config.databases["shop"].description == "The shop"
    assert config.notes["shop"].table("sales", "orders") == "Checkouts"
    assert [term.term for term in config.notes["shop"].glossary] == ["churn"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[databases.shop]\nurl = "postgresql://h/s"\n[databases.shop.descriptions]\n"a.b.c.d" = "x"\n',
            "[databases.shop.descriptions] 'a.b.c.d' is not schema, schema.table or schema.table.column",
        ),
        (
            '[databases.shop]\nurl = "postgresql://h/s"\n[databases.shop.descriptions]\n"sales..orders" = "x"\n',
            "[databases.shop.descriptions] 'sales..orders' is not schema",
        ),
        (
            '[databases.shop]\nurl = "postgresql://h/s"\n[databases.shop.descriptions]\n"sales.orders" = 3\n',
            "[databases.shop.descriptions] 'sales.orders' must be a non-empty string",
        ),
        (
            '[descriptions]\n"sales.orders.a.b" = "x"\n',
            "[descriptions] 'sales.orders.a.b' is not schema, schema.table or schema.table.column",
        ),
        (
            '[databases.shop]\nurl = "postgresql://h/s"\n[databases.shop.glossary.churn]\nsql = "x"\n',
            "[databases.shop.glossary.'churn'] needs meaning",
        ),
        (
            '[glossary.churn]\nmeaning = "m"\nquery = "x"\n',
            "[glossary.'churn'] unknown key 'query'; a term takes meaning, sql, tables, columns",
        ),
        (
            '[glossary.churn]\nmeaning = "m"\ntables = ["orders"]\n',
            "[glossary.'churn'] tables: 'orders' is not schema.table",
        ),
        (
            '[glossary.churn]\nmeaning = "m"\ncolumns = ["sales.orders"]\n',
            "[glossary.'churn'] columns: 'sales.orders' is not schema.table.column",
        ),
        (
            '[descriptions]\nsales = "x"\n[databases.shop]\nurl = "postgresql://h/s"\n',
            "[descriptions] is for the single database of a file without [databases]: "
            "put it in [databases.NAME.descriptions]",
        ),
        (
            '[server.descriptions]\nsales = "x"\n[databases.shop]\nurl = "postgresql://h/s"\n',
            "[server] descriptions is a table of each database",
        ),
    ],
)
def test_a_description_of_an_unknown_form_stops_start_up_naming_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, expected: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://h/shop")
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as refused:
        load_config(None, path, dotenv=False)
    assert f"{path}: {expected}" in str(refused.value), refused.value


# What the model sees.


async def test_descriptions_are_shown_beside_the_comments(pg: DemoDatabase, tmp_path: Path) -> None:
    async with config_client(write_config(tmp_path, SHOP.format(url=pg.url))) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        results = {
            "list_schemas": await client.call_tool("list_schemas", {}),
            "list_tables": await client.call_tool("list_tables", {"schema": "sales"}),
            "describe_table": await client.call_tool("describe_table", {"table": "sales.orders"}),
            "customers": await client.call_tool("describe_table", {"table": "sales.customers"}),
            "stock": await client.call_tool("describe_table", {"table": "inventory.stock_levels"}),
            "copy": await client.call_tool("list_tables", {"schema": "sales", "database": "copy"}),
        }
    for name, result in results.items():
        assert not result.is_error, (name, text_of(result))
        tool = (
            "describe_table" if name in ("customers", "stock") else "list_tables" if name == "copy" else name
        )
        jsonschema.validate(result.structured_content, tools[tool].output_schema or {})
        assert "zebra" not in text_of(result) + json.dumps(result.structured_content), name
    schemas = {s["name"]: s for s in results["list_schemas"].structured_content["schemas"]}
    assert set(schemas) == {"sales", "inventory"}
    assert (
        schemas["sales"]["description"] == "Where the money is made"
        and "description" not in schemas["inventory"]
    )
    assert "sales (" in text_of(results["list_schemas"]) and "— Where the money is made" in text_of(
        results["list_schemas"]
    )
    tables = {t["name"]: t for t in results["list_tables"].structured_content["tables"]}
    assert tables["orders"]["description"] == "Lighthouse table: every checkout"
    assert "description" not in tables["customers"], "unset values are not sent"
    orders_line = next(
        line for line in text_of(results["list_tables"]).splitlines() if "sales.orders " in line
    )
    assert orders_line.endswith(
        "— One row per checkout; the amounts are in sales.order_items — Lighthouse table: every checkout"
    )
    described = results["describe_table"].structured_content
    assert described["description"] == "Lighthouse table: every checkout"
    status = next(c for c in described["columns"] if c["name"] == "status")
    assert status["description"].startswith("Beacon") and status["comment"].startswith("Lifecycle state")
    text = text_of(results["describe_table"]).splitlines()
    assert text[1].startswith("One row per checkout") and text[2] == "Lighthouse table: every checkout"
    assert any(
        line.strip().startswith("status ")
        and line.endswith("— Beacon: paid, shipped and delivered count as revenue")
        for line in text
    )
    customers = results["customers"].structured_content
    assert "email" not in [c["name"] for c in customers["columns"]] and "description" not in customers
    reserved = next(c for c in results["stock"].structured_content["columns"] if c["name"] == "reserved")
    assert reserved["description"] == "Units promised to open orders"
    copied = {t["name"]: t for t in results["copy"].structured_content["tables"]}
    assert "description" not in copied["orders"], "the descriptions are the database's own"


async def test_search_finds_descriptions_and_glossary_terms_within_the_limits(
    pg: DemoDatabase, tmp_path: Path
) -> None:
    async with config_client(write_config(tmp_path, SHOP.format(url=pg.url))) as client:
        schema = next(t for t in (await client.list_tools()).tools if t.name == "search_schema").output_schema
        found = {
            pattern: await client.call_tool("search_schema", {"pattern": pattern})
            for pattern in ("lighthouse", "beacon", "money", "active customer", "90 days", "zebra", "payroll")
        }
    for pattern, result in found.items():
        assert not result.is_error, (pattern, text_of(result))
        jsonschema.validate(result.structured_content, schema or {})
    hits = {pattern: result.structured_content["hits"] for pattern, result in found.items()}
    assert [(h["schema"], h["table_name"], h["column_name"]) for h in hits["lighthouse"]] == [
        ("sales", "orders", None)
    ]
    assert hits["lighthouse"][0]["description"] == "Lighthouse table: every checkout"
    assert [(h["table_name"], h["column_name"], h["type"]) for h in hits["beacon"]] == [
        ("orders", "status", "sales.order_status")
    ]
    assert hits["money"] == [
        {"kind": "schema", "name": "sales", "text": "Where the money is made", "rank": 4}
    ]
    term = hits["active customer"][0]
    assert term["kind"] == "glossary" and term["name"] == "active customer" and term["rank"] == 0
    assert term["sql"].startswith("c.is_active") and "sales.customers.is_active" in term["related"]
    assert "'active customer' [glossary] — An open account" in text_of(found["active customer"])
    assert "; sql: c.is_active" in text_of(found["active customer"])
    assert [h["name"] for h in hits["90 days"] if h.get("kind") == "glossary"] == ["active customer"]
    assert hits["zebra"] == [] and hits["payroll"] == [], "out of reach: no hidden column, table or term"
    assert "nothing matches" in text_of(found["zebra"])


async def test_the_overview_glossary_and_instructions_say_which_database_is_for_what(
    pg: DemoDatabase, tmp_path: Path
) -> None:
    async with config_client(write_config(tmp_path, SHOP.format(url=pg.url))) as client:
        instructions = client.instructions or ""
        listed = [resource.uri for resource in (await client.list_resources()).resources]
        overview = _resource_text(await client.read_resource("postgres://database"))
        glossary = _resource_text(await client.read_resource("postgres://glossary"))
    assert listed[:2] == ["postgres://database", "postgres://glossary"]
    head = overview.split("\n\n")[0]
    assert head.splitlines()[1:] == [
        "- shop: The web shop: orders, customers and products. Use it for sales questions.",
        "- copy: A scratch copy to try things on.",
    ]
    assert overview.count("The web shop") == 1 and "— Where the money is made" in overview
    assert "\n- shop: The web shop" in instructions and "\n- copy: A scratch copy" in instructions
    assert "postgres://glossary" in instructions
    assert glossary.startswith("## shop\nactive customer: An open account with an order in the last 90 days")
    assert "  sql: c.is_active" in glossary and "  about: sales.customers, sales.orders" in glossary
    assert "zebra" not in glossary + overview + instructions and "## copy" not in glossary


async def test_one_database_described_from_the_environment_has_no_glossary(pg: DemoDatabase) -> None:
    async with mcp_client(pg.url, description="The demo shop.") as client:
        instructions = client.instructions or ""
        listed = [resource.uri for resource in (await client.list_resources()).resources]
        overview = _resource_text(await client.read_resource("postgres://database"))
        with pytest.raises(MCPError):
            await client.read_resource("postgres://glossary")
    assert instructions.endswith("\nThis database: The demo shop.") and "glossary" not in instructions
    assert "postgres://glossary" not in listed
    assert overview.splitlines()[1] == "The demo shop."


async def test_without_any_the_answers_are_as_before(pg: DemoDatabase) -> None:
    async with mcp_client(pg.url) as client:
        instructions = client.instructions or ""
        tables = await client.call_tool("list_tables", {"schema": "sales"})
        described = await client.call_tool("describe_table", {"table": "sales.orders"})
        found = await client.call_tool("search_schema", {"pattern": "order"})
    assert "This database" not in instructions and "glossary" not in instructions
    for result in (tables, described, found):
        assert '"description"' not in json.dumps(result.structured_content)


async def test_the_glossary_of_a_single_database_file(
    pg: DemoDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", pg.url)
    text = "[glossary.revenue]\nmeaning = \"Paid, shipped and delivered orders\"\nsql = \"status IN ('paid', 'shipped', 'delivered')\"\n"
    async with config_client(write_config(tmp_path, text)) as client:
        listed = [resource.uri for resource in (await client.list_resources()).resources]
        glossary = _resource_text(await client.read_resource("postgres://glossary"))
        found = await client.call_tool("search_schema", {"pattern": "revenue"})
    assert "postgres://glossary" in listed
    assert (
        glossary
        == "revenue: Paid, shipped and delivered orders\n  sql: status IN ('paid', 'shipped', 'delivered')"
    )
    kinds = [hit.get("kind") for hit in found.structured_content["hits"]]
    assert kinds[0] == "glossary", kinds


async def test_a_caller_sees_the_descriptions_and_glossary_of_its_databases_only(
    pg: DemoDatabase, tmp_path: Path
) -> None:
    app = build_server(load_config(None, write_config(tmp_path, SHOP.format(url=pg.url)), dotenv=False))
    token = current_principal.set(Principal("copy_only", frozenset({"copy"})))
    try:
        instructions = app._instructions_for(app.visible_names())
        databases = await app.open_databases()
        assert not databases.with_glossary()
        with pytest.raises(NotFoundError, match="no glossary"):
            await databases.glossary()
        overview = await databases.overview()
    finally:
        current_principal.reset(token)
        await app.close_databases()
    assert "shop" not in instructions and "glossary" not in instructions
    assert instructions.endswith("\nThis database: A scratch copy to try things on."), (
        "one database for this caller"
    )
    assert overview.startswith(
        "Databases: copy (default copy). Pass database=NAME to any tool.\n- copy: A scratch copy"
    )
    assert "web shop" not in overview and "Lighthouse" not in overview
