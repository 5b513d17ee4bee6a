"""Operator limits: schemas and tables the model may read, and columns hidden everywhere."""

from __future__ import annotations

import mcp.types
import pytest
from conftest import DemoDatabase
from mcp_helpers import mcp_client, text_of

from pg_mcp.errors import GuardError
from pg_mcp.guard.access import AccessPolicy, StoredRelation, check_plan, expand

LIMITS = {"tables": "sales.*,hr.employees", "hidden_columns": "hr.employees.salary,customers.email"}


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
    async with mcp_client(pg.url, **LIMITS) as client:
        for sql in OUT_OF_REACH:
            result = await client.call_tool("query", {"sql": sql})
            if not result.is_error or not (
                "hidden" in text_of(result)
                or "does not expose" in text_of(result)
                or "rule catalog_text" in text_of(result)
            ):
                leaks[sql] = text_of(result)[:200]
    assert not leaks


async def test_everything_else_still_works_and_descriptions_hide_too(pg: DemoDatabase) -> None:
    async with mcp_client(pg.url, **LIMITS) as client:
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
    check_plan(plan, policy)  # hidden columns are judged on PostgreSQL's analysis (test_reach.py)
    with pytest.raises(GuardError, match="does not expose"):
        check_plan({"Node Type": "Hash Join", "Plans": [{**plan, "Schema": "hr"}]}, policy)


async def test_listings_pages_and_completions_show_only_allowed_tables(pg: DemoDatabase) -> None:
    """The allowlist is applied before LIMIT/OFFSET, so pages are full and counts exact."""
    async with mcp_client(pg.url, tables="hr.employees,sales.orders") as client:
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
    assert [str(r.uri) for r in resources.resources] == [
        "postgres://database",
        "postgres://hr/employees",
        "postgres://sales/orders",
    ]
    assert resources.next_cursor is None
    assert {(h["schema"], h["table_name"]) for h in search.structured_content["hits"]} == {
        ("hr", "employees"),
        ("sales", "orders"),
    }
    assert sorted(every_table.completion.values) == ["employees", "orders"]
    assert in_hr.completion.values == ["employees"]


# --- expansion over partitions, inheritance and derived views (pure: catalog rows as input) -------

PAY, PAY_1, PAY_2, PAY_2A, MV_CARD, MV_AMT, MV_ROW, V_CARD, MV_V, AUDIT, AUDIT_OLD = range(1, 12)
STORED = [
    StoredRelation(PAY, "shop", "payments", "p"),
    StoredRelation(PAY_1, "shop", "payments_1", "r", parents=(PAY,)),
    StoredRelation(PAY_2, "archive", "payments_2", "p", parents=(PAY,)),
    StoredRelation(PAY_2A, "archive", "payments_2a", "r", parents=(PAY_2,)),
    StoredRelation(MV_CARD, "shop", "cards", "m", reads=((PAY, None), (PAY, "id"), (PAY, "card_number"))),
    StoredRelation(MV_AMT, "shop", "amounts", "m", reads=((PAY, None), (PAY, "id"), (PAY, "amount"))),
    StoredRelation(MV_ROW, "shop", "rows", "m", reads=((PAY, None),), whole_row=True),
    StoredRelation(V_CARD, "shop", "v_cards", "v", reads=((PAY, None), (PAY, "card_number"))),
    StoredRelation(MV_V, "shop", "from_view", "m", reads=((V_CARD, None), (V_CARD, "id"))),
    StoredRelation(AUDIT, "hr", "audit", "r"),
    StoredRelation(AUDIT_OLD, "shop", "audit_old", "r", parents=(AUDIT,)),
]


def _scan(schema: str, relation: str, *output: str) -> dict[str, object]:
    return {"Node Type": "Seq Scan", "Relation Name": relation, "Schema": schema, "Alias": relation,
            "Output": [f"{relation}.{column}" for column in output]}  # fmt: skip


def test_children_at_any_depth_inherit_hidden_columns_by_name() -> None:
    policy = expand(AccessPolicy.from_settings((), (), ("payments.card_number",)), STORED)
    for schema, table in (("shop", "payments_1"), ("archive", "payments_2"), ("archive", "payments_2a")):
        assert policy.hidden(schema, table) == {"card_number"}
        check_plan(_scan(schema, table, "id", "amount"), policy)
    assert policy.hidden("hr", "audit") == frozenset() and not policy.inherited


def test_copies_of_hidden_columns_are_refused_and_other_copies_pass() -> None:
    policy = expand(AccessPolicy.from_settings((), (), ("shop.payments.card_number",)), STORED)
    assert "hidden column shop.payments.card_number" in policy.denied[("shop", "cards")]
    assert "whole rows" in policy.denied[("shop", "rows")]
    assert "card_number" in policy.denied[("shop", "from_view")]  # through a plain view
    assert ("shop", "v_cards") not in policy.denied  # plans expand plain views and check what they read
    with pytest.raises(GuardError, match=r"does not expose: it copies the hidden column"):
        check_plan(_scan("shop", "cards", "id"), policy)
    check_plan(_scan("shop", "amounts", "id", "amount"), policy)


def test_allowed_parents_allow_their_partitions_and_others_refuse_theirs() -> None:
    policy = expand(AccessPolicy.from_settings(("shop",), ("shop.payments", "shop.*"), ()), STORED)
    assert {("archive", "payments_2"), ("archive", "payments_2a")} <= policy.inherited
    check_plan({"Node Type": "Append", "Plans": [_scan("shop", "payments_1", "id"),
                                                 _scan("archive", "payments_2a", "id")]}, policy)  # fmt: skip
    assert "stores rows of hr.audit" in policy.denied[("shop", "audit_old")]
    with pytest.raises(GuardError, match=r"does not expose: it stores rows of hr\.audit"):
        check_plan(_scan("shop", "audit_old", "id"), policy)
    named = expand(AccessPolicy.from_settings((), ("shop.audit_old",), ()), STORED)
    check_plan(_scan("shop", "audit_old", "id"), named)  # named exactly by the operator


def test_views_over_tables_out_of_reach_are_refused() -> None:
    stored = [*STORED, StoredRelation(12, "shop", "audit_view", "v", reads=((AUDIT, None), (AUDIT, "id")))]
    policy = expand(AccessPolicy.from_settings(("shop",), (), ()), stored)
    assert "reads hr.audit" in policy.denied[("shop", "audit_view")]
    assert ("shop", "amounts") not in policy.denied and policy.table_allowed("shop", "amounts")


def test_expansion_without_limits_changes_nothing() -> None:
    assert expand(AccessPolicy(), STORED) == AccessPolicy()


def test_expansion_of_a_big_catalog_is_linear() -> None:
    """5,000 partitioned tables with 4 partitions and a materialized view each (speed: benchmarks)."""
    stored = []
    for t in range(5000):
        root = t * 10
        stored.append(StoredRelation(root, f"s{t % 10}", f"t{t}", "p"))
        stored += [
            StoredRelation(root + k, f"s{t % 10}", f"t{t}_{k}", "r", parents=(root,)) for k in (1, 2, 3, 4)
        ]
        stored.append(
            StoredRelation(root + 5, f"s{t % 10}", f"m{t}", "m", reads=((root, None), (root, "secret")))
        )
    policy = expand(AccessPolicy.from_settings(("s1", "s2"), (), ("t7.secret",)), stored)
    assert policy.hidden("s7", "t7_4") == {"secret"} and ("s7", "m7") not in policy.denied  # s7 not exposed
    assert policy.table_allowed("s1", "t11_3") and not policy.table_allowed("s3", "t13_1")


def test_toast_is_always_refused_and_statistics_under_any_limit() -> None:
    toast = _scan("pg_toast", "pg_toast_16390", "chunk_data")
    for policy in (AccessPolicy(), AccessPolicy.from_settings(("sales",), (), ())):
        with pytest.raises(GuardError, match="does not expose"):
            check_plan(toast, policy)
    for relation in ("pg_statistic", "pg_statistic_ext", "pg_statistic_ext_data", "pg_stats_ext_exprs"):
        check_plan(_scan("pg_catalog", relation, "starelid"), AccessPolicy())
        for limits in ((("sales",), (), ()), ((), ("sales.*",), ()), ((), (), ("users.password_hash",))):
            with pytest.raises(GuardError, match="does not expose"):
                check_plan(_scan("pg_catalog", relation, "starelid"), AccessPolicy.from_settings(*limits))
    check_plan(_scan("pg_catalog", "pg_class", "relname"), AccessPolicy.from_settings(("sales",), (), ()))


def test_scans_of_unnamed_relations_are_refused_while_a_limit_is_active() -> None:
    pushed = {"Node Type": "Foreign Scan", "Relations": "(shop.ft1 a) INNER JOIN (shop.ft2 b)",
              "Output": ["a.id"], "Remote SQL": "SELECT r1.id FROM (t1 r1 INNER JOIN t2 r2 ON ...)"}  # fmt: skip
    check_plan(pushed, AccessPolicy())
    with pytest.raises(GuardError, match="does not name"):
        check_plan(
            {"Node Type": "Hash Join", "Plans": [pushed]}, AccessPolicy.from_settings(("shop",), (), ())
        )
    bitmap = {"Node Type": "Bitmap Heap Scan", **_scan("shop", "t", "id"), "Recheck Cond": "(t.id = 1)",
              "Plans": [{"Node Type": "Bitmap Index Scan", "Index Name": "t_pkey", "Index Cond": "(id = 1)"}]}  # fmt: skip
    check_plan(bitmap, AccessPolicy.from_settings(("shop",), (), ()))


async def test_planner_statistics_of_allowed_tables_and_columns_are_readable(pg: DemoDatabase) -> None:
    """pg_stats rows of one allowed table (and, where it hides columns, of named visible ones) pass;
    any other read of planner statistics stays refused while limits are set."""
    stats = "SELECT attname, null_frac, n_distinct FROM pg_stats WHERE "
    allowed = [
        stats + "schemaname = 'sales' AND tablename = 'orders'",
        stats + "tablename = 'employees' AND schemaname = 'hr' AND attname IN ('first_name', 'last_name')",
        "SELECT s.attname FROM pg_stats AS s WHERE s.schemaname = 'sales' AND s.tablename = 'orders' "
        "AND s.null_frac > 0.5",
    ]
    refused = [
        stats + "schemaname = 'hr' AND tablename = 'departments'",
        stats + "schemaname = 'hr' AND tablename = 'employees'",
        stats + "schemaname = 'hr' AND tablename = 'employees' AND attname = 'salary'",
        stats + "schemaname = 'sales' AND tablename = 'orders' OR true",
        stats + "schemaname = 'sales'",
        "SELECT a.attname FROM pg_stats a, pg_stats b WHERE a.schemaname = 'sales' AND a.tablename = 'orders'",
        "SELECT (SELECT n_distinct FROM pg_stats WHERE tablename = 'employees' LIMIT 1), attname FROM pg_stats "
        "WHERE schemaname = 'sales' AND tablename = 'orders'",
    ]
    async with mcp_client(pg.url, **LIMITS) as client:
        for sql in allowed:
            result = await client.call_tool("query", {"sql": sql})
            assert not result.is_error, (sql, text_of(result))
        for sql in refused:
            result = await client.call_tool("query", {"sql": sql})
            assert result.is_error and "Refused" in text_of(result), (sql, text_of(result))
