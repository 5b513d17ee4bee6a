"""Operator limits: schemas and tables the model may read, and columns hidden everywhere."""

from __future__ import annotations

import mcp.types
import pytest
from conftest import DemoDatabase
from mcp_helpers import mcp_client, text_of

from pg_mcp.access import AccessPolicy, check_plan
from pg_mcp.errors import GuardError

LIMITS = ("--tables", "sales.*,hr.employees", "--hidden-columns", "hr.employees.salary,customers.email")


OUT_OF_REACH = [
    "SELECT salary FROM hr.employees",
    "SELECT * FROM hr.employees",
    "SELECT e.* FROM hr.employees e",
    "SELECT e FROM hr.employees e",
    "SELECT row_to_json(e) FROM hr.employees e",
    "SELECT id FROM hr.employees WHERE salary > 100000",
    "SELECT id FROM hr.employees ORDER BY salary DESC LIMIT 1",
    "SELECT avg(salary) FROM hr.employees",
    "SELECT x.s FROM (SELECT salary AS s FROM hr.employees) x",
    "WITH w AS (SELECT salary FROM hr.employees) SELECT * FROM w",
    'SELECT "salary" FROM hr.employees',
    "SELECT (SELECT max(salary) FROM hr.employees) AS m",
    "SELECT email FROM sales.customers",
    "SELECT c.email AS contact FROM sales.customers c JOIN sales.orders o ON o.customer_id = c.id",
    "SELECT count(*) FROM sales.customers WHERE email LIKE '%example.com'",
    "SELECT * FROM sales.customer_order_summary s JOIN sales.customers c ON c.id = s.customer_id",
    "SELECT * FROM inventory.warehouses",
    "SELECT * FROM hr.departments",
    "SELECT * FROM analytics.daily_revenue",
    "SELECT most_common_vals FROM pg_stats WHERE attname = 'salary'",
]


async def test_out_of_reach_data_is_refused(pg: DemoDatabase) -> None:
    leaks = {}
    async with mcp_client(pg.url, *LIMITS) as client:
        for sql in OUT_OF_REACH:
            result = await client.call_tool("query", {"sql": sql})
            if not result.is_error or not (
                "hidden" in text_of(result) or "does not expose" in text_of(result)
            ):
                leaks[sql] = text_of(result)[:200]
    assert not leaks


async def test_everything_else_still_works_and_descriptions_hide_too(pg: DemoDatabase) -> None:
    async with mcp_client(pg.url, *LIMITS) as client:
        ok = await client.call_tool(
            "query",
            {"sql": "SELECT e.id, e.first_name, d.status FROM hr.employees e JOIN sales.orders d ON false"},
        )
        names = await client.call_tool(
            "query", {"sql": "SELECT first_name, skills FROM hr.employees LIMIT 2"}
        )
        view = await client.call_tool("query", {"sql": "SELECT count(*) FROM sales.customer_order_summary"})
        catalog = await client.call_tool("query", {"sql": "SELECT count(*) FROM pg_class"})
        employees = await client.call_tool("describe_table", {"table": "hr.employees"})
        customers = await client.call_tool("describe_table", {"table": "sales.customers"})
        departments = await client.call_tool("describe_table", {"table": "hr.departments"})
        tables = await client.call_tool("list_tables", {})
        search = await client.call_tool("search_schema", {"pattern": "salary"})
        stats = await client.call_tool("column_stats", {"table": "hr.employees"})
        sample = await client.call_tool("sample_rows", {"table": "hr.employees", "n": 2})
        plan = await client.call_tool("explain", {"sql": "SELECT salary FROM hr.employees"})
    for result in (ok, names, view, catalog, sample):
        assert not result.is_error, text_of(result)
    assert "salary" not in text_of(employees) and "email" in text_of(employees)
    assert "email" not in {c["name"] for c in customers.structured_content["columns"]}
    assert "customers_email_key" not in text_of(customers)
    assert departments.is_error and "does not exist or is not exposed" in text_of(departments)
    listed = {f"{t['schema']}.{t['name']}" for t in tables.structured_content["tables"]}
    assert (
        "hr.employees" in listed and "hr.departments" not in listed and "inventory.warehouses" not in listed
    )
    assert search.structured_content["hits"] == []
    assert "salary" not in {c["column"] for c in stats.structured_content["columns"]}
    assert "salary" not in [c["name"] for c in sample.structured_content["columns"]]
    assert plan.is_error and "hidden" in text_of(plan)


def test_policy_parsing_and_plan_walk() -> None:
    policy = AccessPolicy.from_settings(("sales",), ("sales.*",), ("users.password_hash",))
    assert policy.table_allowed("sales", "orders") and not policy.table_allowed("hr", "employees")
    assert policy.table_allowed("pg_catalog", "pg_class") and not policy.table_allowed(
        "pg_catalog", "pg_statistic"
    )
    assert policy.hidden("sales", "users") == {"password_hash"}
    plan = {"Node Type": "Seq Scan", "Relation Name": "users", "Schema": "sales", "Alias": "u",
            "Output": ["u.id", "u.name"]}  # fmt: skip
    check_plan(plan, policy)
    with pytest.raises(GuardError, match="hidden"):
        check_plan({**plan, "Filter": "(u.password_hash = 'x'::text)"}, policy)
    with pytest.raises(GuardError, match="whole rows"):
        check_plan({**plan, "Output": ["u.*"]}, policy)
    with pytest.raises(GuardError, match="does not expose"):
        check_plan({"Node Type": "Hash Join", "Plans": [{**plan, "Schema": "hr"}]}, policy)


async def test_listings_pages_and_completions_show_only_allowed_tables(pg: DemoDatabase) -> None:
    """The allowlist is applied before LIMIT/OFFSET, so pages are full and counts exact."""
    only = ("--tables", "hr.employees,sales.orders")
    async with mcp_client(pg.url, *only) as client:
        schemas = await client.call_tool("list_schemas", {})
        tables = await client.call_tool("list_tables", {})
        resources = await client.list_resources()
        search = await client.call_tool("search_schema", {"pattern": "id"})
        ref = mcp.types.ResourceTemplateReference(type="ref/resource", uri="postgres://{schema}/{table}")
        every_table = await client.complete(ref, {"name": "table", "value": ""})
        in_hr = await client.complete(ref, {"name": "table", "value": ""}, {"schema": "hr"})
    counts = {s["name"]: s["tables"] for s in schemas.structured_content["schemas"]}
    assert counts["hr"] == 1 and counts["sales"] == 1 and counts["inventory"] == 0
    listed = [f"{t['schema']}.{t['name']}" for t in tables.structured_content["tables"]]
    assert listed == ["hr.employees", "sales.orders"] and tables.structured_content["total"] == 2
    assert [str(r.uri) for r in resources.resources] == ["postgres://hr/employees", "postgres://sales/orders"]
    assert resources.next_cursor is None
    assert {(h["schema"], h["table_name"]) for h in search.structured_content["hits"]} == {
        ("hr", "employees"),
        ("sales", "orders"),
    }
    assert sorted(every_table.completion.values) == ["employees", "orders"]
    assert in_hr.completion.values == ["employees"]
