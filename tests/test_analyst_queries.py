"""Legitimate analyst queries: pg-mcp must accept them and return exactly what PostgreSQL returns.

Each query is sent as written to the `query` tool of one `pg-mcp` subprocess (official MCP client,
stdio) and executed, as the same text, by asyncpg on the same reader role. The two results must have
the same row count, the same column names in the same order, and the same values in the same order.

Values are compared after mapping both sides to canonical forms (`canonical_direct` for asyncpg's
Python values, `canonical_served` for pg-mcp's JSON values). The rules:

- NULL is None on both sides; booleans become "true" / "false".
- Integers become their decimal digits (pg-mcp sends integers beyond 2**53 as digit strings).
- Floats become `repr()` of the float; NaN and ±Infinity become "NaN", "Infinity", "-Infinity".
- numeric becomes its positional text with the scale PostgreSQL gives it (`Decimal` formatted with
  "f" on the asyncpg side; pg-mcp sends that text), so lost digits or a changed scale are caught.
- json / jsonb are parsed on both sides and compared as data, numbers as `Decimal` (so 1.0 == 1.0 but
  0.1 is never compared through a binary float).
- timestamptz becomes PostgreSQL's text in UTC (`2025-01-01 00:02:37+00`, fractional seconds without
  trailing zeros); timestamp and date become PostgreSQL's ISO text. (Which instant a literal or
  `date_trunc` means depends on the session TimeZone: neither side sets it, so both use the server's.)
- Types pg-mcp decodes as PostgreSQL's own text (interval, time, network, geometric, bit strings; see
  `pg_mcp.database.executor.TEXT_DECODED_TYPES`) are decoded as text on the asyncpg side too and compared as text.
- bytea becomes "\\x" + hex; uuid its text; arrays become lists of canonical elements; everything else
  (text, enums, money, tsvector) is compared as the text PostgreSQL sent.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
import uuid
from decimal import Decimal
from typing import Any

import asyncpg
from conftest import DemoDatabase
from mcp_helpers import mcp_client, text_of

from pg_mcp.database.executor import TEXT_DECODED_TYPES

MAX_ROWS = 1000

QUERIES: list[tuple[str, str]] = [
    # ---------------------------------------------------------------- window functions
    (
        "window_row_number",
        "SELECT id, category, price, row_number() OVER (PARTITION BY category ORDER BY price DESC, id) "
        "AS rn FROM sales.products ORDER BY category, rn LIMIT 20",
    ),
    (
        "window_running_sum",
        "SELECT day, revenue, sum(revenue) OVER (ORDER BY day) AS running "
        "FROM analytics.daily_revenue ORDER BY day LIMIT 31",
    ),
    (
        "window_lag_lead",
        "SELECT id, hired_on, lag(hired_on) OVER w AS previous_hire, lead(salary) OVER w AS next_salary "
        "FROM hr.employees WINDOW w AS (ORDER BY hired_on, id) ORDER BY hired_on, id LIMIT 15",
    ),
    (
        "window_ranks",
        "SELECT department_id, id, salary, rank() OVER w, dense_rank() OVER w, percent_rank() OVER w, "
        "ntile(4) OVER w FROM hr.employees WINDOW w AS (PARTITION BY department_id ORDER BY salary DESC) "
        "ORDER BY department_id, salary DESC, id LIMIT 40",
    ),
    (
        "window_moving_average",
        "SELECT day, orders, avg(orders) OVER (ORDER BY day ROWS BETWEEN 6 PRECEDING AND CURRENT ROW) "
        "AS week_avg FROM analytics.daily_revenue ORDER BY day LIMIT 20",
    ),
    (
        "window_first_last_nth",
        "SELECT DISTINCT department_id, first_value(salary) OVER w, last_value(salary) OVER w, "
        "nth_value(salary, 2) OVER w FROM hr.employees WINDOW w AS (PARTITION BY department_id ORDER BY salary "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) ORDER BY department_id",
    ),
    # ---------------------------------------------------------------- CTEs
    (
        "cte_simple",
        "WITH expensive AS (SELECT * FROM sales.products WHERE price > 900) "
        "SELECT category, count(*) AS n, max(price) AS top FROM expensive GROUP BY category ORDER BY category",
    ),
    (
        "cte_chain",
        "WITH d AS (SELECT id, name FROM hr.departments), e AS (SELECT department_id, count(*) AS staff, "
        "avg(salary) AS avg_salary FROM hr.employees GROUP BY department_id) "
        "SELECT d.name, e.staff, round(e.avg_salary, 2) AS avg_salary FROM d JOIN e ON e.department_id = d.id "
        "ORDER BY d.name",
    ),
    (
        "cte_recursive_org_chart",
        "WITH RECURSIVE chain AS (SELECT id, manager_id, 1 AS depth FROM hr.employees "
        "WHERE manager_id IS NULL UNION ALL SELECT e.id, e.manager_id, c.depth + 1 FROM hr.employees e "
        "JOIN chain c ON e.manager_id = c.id WHERE c.depth < 5) SELECT depth, count(*) FROM chain GROUP BY depth "
        "ORDER BY depth",
    ),
    (
        "cte_recursive_bounded_series",
        "WITH RECURSIVE n(i, fib, next) AS (SELECT 1, 0::numeric, 1::numeric UNION ALL "
        "SELECT i + 1, next, fib + next FROM n WHERE i < 90) SELECT i, fib FROM n ORDER BY i DESC LIMIT 5",
    ),
    (
        "cte_materialized",
        "WITH c AS MATERIALIZED (SELECT country, count(*) AS n FROM sales.customers GROUP BY country) "
        "SELECT * FROM c ORDER BY n DESC, country",
    ),
    # ---------------------------------------------------------------- LATERAL
    (
        "lateral_top_per_group",
        "SELECT d.name, top.first_name, top.salary FROM hr.departments d, LATERAL "
        "(SELECT first_name, salary FROM hr.employees e WHERE e.department_id = d.id ORDER BY salary DESC, id LIMIT 2) "
        "AS top ORDER BY d.name, top.salary DESC",
    ),
    (
        "lateral_unnest",
        "SELECT e.id, s.skill, s.ord FROM hr.employees e CROSS JOIN LATERAL unnest(e.skills) "
        "WITH ORDINALITY AS s(skill, ord) WHERE e.id <= 4 ORDER BY e.id, s.ord",
    ),
    # ---------------------------------------------------------------- json / jsonb
    (
        "json_arrow_operators",
        "SELECT id, preferences -> 'language' AS lang_json, preferences ->> 'currency' AS currency "
        "FROM sales.customers ORDER BY id LIMIT 10",
    ),
    (
        "json_path_operators",
        "SELECT id, shipping_address #> '{city}' AS city_json, shipping_address #>> '{zip}' AS zip "
        "FROM sales.orders ORDER BY id LIMIT 10",
    ),
    ("jsonb_contains", "SELECT count(*) FROM sales.customers WHERE preferences @> '{\"newsletter\": true}'"),
    (
        "jsonb_key_exists",
        "SELECT attributes ? 'color' AS has_color, attributes ?| array['size', 'weight_kg'] AS any_key, "
        "count(*) FROM sales.products GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    (
        "jsonb_path_query",
        "SELECT id, jsonb_path_query(attributes, '$.weight_kg') AS weight FROM sales.products "
        "ORDER BY id LIMIT 10",
    ),
    (
        "jsonb_each_text",
        "SELECT key, value FROM sales.products, jsonb_each_text(attributes) WHERE id = 7 ORDER BY key",
    ),
    (
        "jsonb_whole_documents",
        "SELECT p.id, attributes, preferences FROM sales.products p JOIN sales.customers c "
        "ON c.id = p.id ORDER BY p.id LIMIT 5",
    ),
    (
        "json_aggregates",
        "SELECT category, jsonb_agg(id ORDER BY id) FILTER (WHERE id <= 40) AS ids, "
        "json_build_object('n', count(*), 'max', max(price)) AS summary FROM sales.products GROUP BY category "
        "ORDER BY category",
    ),
    # ---------------------------------------------------------------- arrays
    (
        "array_any",
        "SELECT id, email, tags FROM sales.customers WHERE 'vip' = ANY (tags) ORDER BY id LIMIT 10",
    ),
    (
        "array_unnest_count",
        "SELECT tag, count(*) FROM sales.customers, unnest(tags) AS tag GROUP BY tag ORDER BY tag",
    ),
    (
        "array_agg_ordered",
        "SELECT department_id, array_agg(id ORDER BY id DESC) FILTER (WHERE id < 60) AS ids "
        "FROM hr.employees GROUP BY department_id ORDER BY department_id",
    ),
    ("array_contains", "SELECT count(*) FROM hr.employees WHERE skills @> ARRAY['sql']"),
    (
        "array_functions",
        "SELECT skills, array_length(skills, 1), cardinality(skills), skills[1] AS first_skill, "
        "array_to_string(skills, '|') FROM hr.employees ORDER BY id LIMIT 5",
    ),
    # ---------------------------------------------------------------- grouping
    (
        "distinct_on",
        "SELECT DISTINCT ON (department_id) department_id, id, salary FROM hr.employees "
        "ORDER BY department_id, salary DESC, id",
    ),
    (
        "grouping_sets",
        "SELECT category, (price > 500) AS premium, count(*) FROM sales.products "
        "GROUP BY GROUPING SETS ((category), (price > 500), ()) ORDER BY category NULLS LAST, premium NULLS LAST",
    ),
    (
        "rollup",
        "SELECT country, is_active, count(*) FROM sales.customers GROUP BY ROLLUP (country, is_active) "
        "ORDER BY country NULLS LAST, is_active NULLS LAST",
    ),
    (
        "cube_with_grouping",
        "SELECT status, extract(quarter FROM ordered_at) AS q, grouping(status, "
        "extract(quarter FROM ordered_at)) AS g, count(*) FROM sales.orders WHERE id <= 50000 "
        "GROUP BY CUBE (status, extract(quarter FROM ordered_at)) ORDER BY g, status NULLS LAST, q NULLS LAST",
    ),
    (
        "aggregate_filter",
        "SELECT count(*) FILTER (WHERE status = 'paid') AS paid, count(*) FILTER "
        "(WHERE status IN ('cancelled', 'refunded')) AS lost, count(*) AS total FROM sales.orders",
    ),
    (
        "percentile_cont",
        "SELECT department_id, percentile_cont(0.5) WITHIN GROUP (ORDER BY salary) AS median, "
        "percentile_disc(ARRAY[0.25, 0.75]) WITHIN GROUP (ORDER BY salary) AS quartiles FROM hr.employees "
        "GROUP BY department_id ORDER BY department_id",
    ),
    ("mode", "SELECT mode() WITHIN GROUP (ORDER BY country) AS most_common_country FROM sales.customers"),
    (
        "having_and_count_distinct",
        "SELECT o.customer_id, count(DISTINCT o.status) AS statuses, sum(o.total) AS spent "
        "FROM sales.orders o WHERE o.customer_id <= 200 GROUP BY o.customer_id HAVING count(*) >= 12 "
        "ORDER BY spent DESC, o.customer_id LIMIT 10",
    ),
    # ---------------------------------------------------------------- set operations
    (
        "union",
        "SELECT city FROM inventory.warehouses UNION SELECT shipping_address ->> 'city' FROM sales.orders "
        "WHERE id <= 100 ORDER BY 1",
    ),
    (
        "union_all_ordered",
        "(SELECT 'dept' AS kind, name FROM hr.departments) UNION ALL "
        "(SELECT 'warehouse', code FROM inventory.warehouses) ORDER BY kind, name",
    ),
    (
        "intersect",
        "SELECT customer_id FROM sales.orders WHERE id <= 3000 INTERSECT "
        'SELECT issued_to FROM sales."Gift Cards" ORDER BY 1',
    ),
    (
        "except",
        "SELECT id FROM hr.departments EXCEPT SELECT department_id FROM hr.employees WHERE salary > 100000 "
        "ORDER BY 1",
    ),
    # ---------------------------------------------------------------- text matching
    (
        "regex_match",
        "SELECT name FROM sales.products WHERE name ~ '^(Smart|Eco) (Lamp|Kettle)' ORDER BY id LIMIT 10",
    ),
    (
        "regex_case_insensitive",
        "SELECT name FROM sales.products WHERE name ~* 'urban\\s+watch' AND name !~ '9$' ORDER BY id",
    ),
    (
        "regexp_replace",
        "SELECT sku, regexp_replace(sku, '^SKU-0*', '#') AS short, (regexp_match(name, '(\\d+)$'))[1] "
        "AS number FROM sales.products ORDER BY id LIMIT 8",
    ),
    (
        "ilike",
        "SELECT full_name, email FROM sales.customers WHERE full_name ILIKE 'chloé%' ORDER BY id LIMIT 5",
    ),
    (
        "full_text_search",
        "SELECT id, name FROM sales.products WHERE to_tsvector('english', name) @@ "
        "plainto_tsquery('english', 'smart lamps') ORDER BY id",
    ),
    (
        "full_text_rank",
        "SELECT id, to_tsvector('simple', name) AS doc, ts_rank(to_tsvector('simple', name), "
        "to_tsquery('simple', 'pro | max')) AS rank FROM sales.products WHERE id <= 16 ORDER BY rank DESC, id",
    ),
    # ---------------------------------------------------------------- sampling, names, catalogs
    (
        "tablesample_repeatable",
        "SELECT count(*) > 0 AS sampled, min(order_id) >= 1 AS ok "
        "FROM sales.order_items TABLESAMPLE SYSTEM (1) REPEATABLE (42)",
    ),
    (
        "tablesample_rows",
        "SELECT id, email FROM sales.customers TABLESAMPLE SYSTEM (2) REPEATABLE (7) ORDER BY id LIMIT 10",
    ),
    (
        "quoted_mixed_case_names",
        'SELECT "Code", balance, issued_to FROM sales."Gift Cards" ORDER BY "Code" LIMIT 10',
    ),
    (
        "quoted_names_join",
        'SELECT g."Code", c.full_name FROM sales."Gift Cards" AS g JOIN sales.customers c '
        "ON c.id = g.issued_to ORDER BY g.id LIMIT 5",
    ),
    (
        "information_schema",
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = 'sales' AND table_name = 'orders' ORDER BY ordinal_position",
    ),
    (
        "pg_catalog_relations",
        "SELECT c.relname, c.relkind, pg_catalog.obj_description(c.oid, 'pg_class') AS comment "
        "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'hr' AND c.relkind IN ('r', 'v') ORDER BY c.relname",
    ),
    (
        "pg_catalog_types",
        "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a "
        "WHERE a.attrelid = 'sales.products'::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
    ),
    ("enum_range", "SELECT unnest(enum_range(NULL::sales.order_status)) AS status"),
    # ---------------------------------------------------------------- limits and statement shapes
    ("existing_limit", "SELECT id, total FROM sales.orders ORDER BY id LIMIT 5"),
    ("limit_offset", "SELECT id FROM sales.orders ORDER BY id LIMIT 4 OFFSET 10"),
    ("fetch_first", "SELECT id, name FROM sales.products ORDER BY price DESC, id FETCH FIRST 3 ROWS ONLY"),
    ("offset_fetch_next", "SELECT id FROM hr.employees ORDER BY id OFFSET 5 ROWS FETCH NEXT 2 ROWS ONLY"),
    (
        "leading_comments",
        "-- the biggest departments\n/* staff count */ SELECT department_id, count(*) "
        "FROM hr.employees GROUP BY 1 ORDER BY 2 DESC, 1",
    ),
    ("trailing_semicolon", "SELECT name FROM hr.departments ORDER BY id;"),
    ("trailing_line_comment", "SELECT code FROM inventory.warehouses ORDER BY id -- all of them"),
    ("trailing_semicolon_and_comment", "SELECT count(*) FROM inventory.warehouses;  -- done"),
    ("values", "VALUES (1, 'one', 1.5), (2, 'two', NULL), (3, NULL, 2.25)"),
    ("values_in_from", "SELECT v.k, v.label FROM (VALUES (2, 'b'), (1, 'a')) AS v(k, label) ORDER BY v.k"),
    ("table_statement", "TABLE hr.departments"),
    ("parenthesised_select", "(SELECT id, code FROM inventory.warehouses ORDER BY id LIMIT 3)"),
    # ---------------------------------------------------------------- dates, casts, expressions
    ("generate_series_ints", "SELECT g, g * g AS square FROM generate_series(1, 12) AS g"),
    (
        "generate_series_timestamps",
        "SELECT ts FROM generate_series(timestamptz '2025-01-01 00:00+00', "
        "timestamptz '2025-01-02 12:00+00', interval '6 hours') AS ts",
    ),
    (
        "date_trunc_month",
        "SELECT date_trunc('month', ordered_at) AS month, count(*) FROM sales.orders GROUP BY 1 ORDER BY 1",
    ),
    (
        "extract_and_age",
        "SELECT id, hired_on, extract(year FROM hired_on) AS year, extract(dow FROM hired_on) AS dow, "
        "age(date '2025-12-31', hired_on) AS tenure FROM hr.employees ORDER BY id LIMIT 10",
    ),
    (
        "date_arithmetic",
        "SELECT date '2025-03-01' - date '2025-02-01' AS days, date '2025-01-31' + interval '1 month' "
        "AS plus_month, timestamp '2025-01-01 10:00' - timestamp '2024-12-31 08:30' AS gap, "
        "make_interval(days => 10, hours => 3) AS iv",
    ),
    (
        "timestamps_plain_and_tz",
        "SELECT warehouse_id, product_id, updated_at FROM inventory.stock_levels "
        "ORDER BY updated_at DESC, warehouse_id, product_id LIMIT 5",
    ),
    (
        "to_char",
        "SELECT to_char(ordered_at, 'YYYY-MM') AS month, to_char(total, 'FM999G990D00') AS shown "
        "FROM sales.orders ORDER BY id LIMIT 5",
    ),
    (
        "casts",
        "SELECT price::int AS whole, '42.5'::numeric(10, 3) AS n3, 3.7::float8 AS f, '2025-02-03'::date AS d, "
        "'1 day 2 hours'::interval AS iv, '10.0.0.1/8'::inet AS net, CAST(id AS text) AS id_text FROM sales.products "
        "ORDER BY id LIMIT 3",
    ),
    (
        "case_buckets",
        "SELECT CASE WHEN price < 100 THEN 'cheap' WHEN price < 500 THEN 'mid' ELSE 'premium' END AS band, "
        "count(*) FROM sales.products GROUP BY 1 ORDER BY 1",
    ),
    (
        "coalesce_nullif",
        "SELECT id, coalesce(note, '(none)') AS note, nullif(status::text, 'delivered') AS status "
        "FROM sales.orders ORDER BY id LIMIT 6 OFFSET 45",
    ),
    (
        "string_functions",
        "SELECT upper(first_name), lower(last_name), initcap(email), length(email), "
        "substring(email FROM 1 FOR 8), split_part(email, '@', 2), lpad(id::text, 5, '0'), "
        "concat_ws(' ', first_name, last_name), left(last_name, 2), right(email, 4), replace(email, '.', '_'), "
        "position('@' IN email), format('%s <%s>', first_name, email) FROM hr.employees ORDER BY id LIMIT 5",
    ),
    (
        "string_agg",
        "SELECT department_id, string_agg(first_name, ', ' ORDER BY id) FILTER (WHERE id <= 30) "
        "FROM hr.employees GROUP BY 1 ORDER BY 1",
    ),
    (
        "numeric_precision_sum",
        "SELECT sum(total) AS revenue, avg(total) AS average, sum(total) / 3 AS third FROM sales.orders",
    ),
    (
        "numeric_exact_digits",
        "SELECT 0.1 + 0.2 AS tenths, 1::numeric / 3 AS third, 2::numeric ^ 70 AS big, "
        "9007199254740993::bigint AS beyond_double, 123456789012345678901234567890.123456789::numeric AS wide, "
        "'NaN'::numeric AS nan",
    ),
    (
        "floats",
        "SELECT 0.1::float8 + 0.2::float8 AS sum, 'NaN'::float8 AS nan, '-Infinity'::float8 AS neg_inf, "
        "1e300::float8 * 10 AS large, 1.5::float4 AS single",
    ),
    ("null_and_empty", "SELECT NULL::text AS nothing, '' AS empty, ' ' AS space, NULL::int AS no_number"),
    (
        "greatest_least_width_bucket",
        "SELECT width_bucket(price, 0, 1000, 5) AS bucket, count(*), "
        "greatest(min(price), 10), least(max(price), 900) FROM sales.products GROUP BY 1 ORDER BY 1",
    ),
    (
        "subqueries_exists_in",
        "SELECT d.name, EXISTS (SELECT 1 FROM hr.employees e WHERE e.department_id = d.id "
        "AND e.salary > 135000) AS has_high, (SELECT count(*) FROM hr.employees e WHERE e.department_id = d.id) AS staff "
        "FROM hr.departments d WHERE d.id IN (SELECT department_id FROM hr.employees) ORDER BY d.id",
    ),
    (
        "join_aggregate",
        "SELECT p.category, sum(i.quantity) AS units, sum(i.quantity * i.unit_price) AS revenue "
        "FROM sales.order_items i JOIN sales.products p ON p.id = i.product_id WHERE i.order_id <= 20000 "
        "GROUP BY p.category ORDER BY revenue DESC",
    ),
    (
        "order_nulls_last",
        'SELECT id, issued_to FROM sales."Gift Cards" ORDER BY issued_to DESC NULLS LAST, id LIMIT 30',
    ),
    # ---------------------------------------------------------------- every column type of the demo
    ("view", "SELECT * FROM sales.customer_order_summary ORDER BY lifetime_value DESC, customer_id LIMIT 10"),
    ("materialized_view", "SELECT * FROM analytics.daily_revenue ORDER BY revenue DESC, day LIMIT 5"),
    (
        "partitioned_table",
        "SELECT date_trunc('month', viewed_at AT TIME ZONE 'UTC') AS month, count(*), "
        "count(DISTINCT customer_id) AS visitors FROM analytics.page_views GROUP BY 1 ORDER BY 1",
    ),
    ("page_views_rows", "SELECT * FROM analytics.page_views ORDER BY id LIMIT 5"),
    ("customers_rows", "SELECT * FROM sales.customers ORDER BY id LIMIT 5"),
    ("orders_rows", "SELECT * FROM sales.orders ORDER BY id LIMIT 5"),
    ("employees_rows", "SELECT * FROM hr.employees ORDER BY id LIMIT 5"),
    ("warehouses_points", "SELECT code, location, location[0] AS lon FROM inventory.warehouses ORDER BY id"),
    ("money", "SELECT name, budget, budget * 2 AS doubled FROM hr.departments ORDER BY budget DESC"),
    (
        "bytea_and_hashes",
        "SELECT decode('deadbeef', 'hex') AS raw, sha256('abc'::bytea) AS digest, md5('abc') AS md5",
    ),
    (
        "uuid_and_bool",
        "SELECT uuid, uuid::text = lower(uuid::text) AS lower_case, is_active FROM hr.employees e "
        "JOIN sales.customers c USING (id) ORDER BY id LIMIT 3",
    ),
]


def _timestamp_text(value: dt.datetime) -> str:
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text


def _json_numbers(value: Any) -> Any:
    """JSON data with every number as a Decimal, so no comparison goes through a binary float."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if isinstance(value, Decimal):
        return value
    if isinstance(value, list):
        return [_json_numbers(item) for item in value]
    return {key: _json_numbers(item) for key, item in value.items()}


def canonical_direct(value: Any, type_name: str) -> Any:
    """asyncpg's Python value → the canonical form (see the module docstring)."""
    if value is None:
        return None
    if type_name in ("json", "jsonb"):
        return _json_numbers(json.loads(value, parse_float=Decimal))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return repr(value) if math.isfinite(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return _timestamp_text(value)
        return _timestamp_text(value.astimezone(dt.UTC)) + "+00"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        element = type_name[1:] if type_name.startswith("_") else ""
        return [canonical_direct(item, element) for item in value]
    if isinstance(value, str):
        return value
    raise AssertionError(f"no canonical form for {type(value).__name__} ({type_name})")


def canonical_served(value: Any, type_name: str) -> Any:
    """pg-mcp's JSON value → the canonical form; `type_name` is the PostgreSQL type as asyncpg names it."""
    if value is None:
        return None
    if type_name in ("json", "jsonb"):
        return _json_numbers(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        element = type_name[1:] if type_name.startswith("_") else ""
        return [canonical_served(item, element) for item in value]
    if isinstance(value, str):
        return value
    raise AssertionError(f"unexpected JSON value {value!r} ({type_name})")


async def _direct(conn: asyncpg.Connection, sql: str) -> tuple[list[str], list[str], list[asyncpg.Record]]:
    statement = await conn.prepare(sql)
    rows = await statement.fetch()
    attributes = statement.get_attributes()
    return [a.name for a in attributes], [a.type.name for a in attributes], rows


async def _reader(pg: DemoDatabase) -> asyncpg.Connection:
    conn = await asyncpg.connect(pg.url, statement_cache_size=0)
    for type_name in TEXT_DECODED_TYPES:  # decoded as PostgreSQL's text, as pg-mcp does
        try:
            await conn.set_type_codec(type_name, schema="pg_catalog", encoder=str, decoder=str, format="text")
        except ValueError:
            continue
    return conn


def compare(
    case_id: str, served: dict[str, Any], names: list[str], types: list[str], rows: list[Any]
) -> list[str]:
    """What differs between pg-mcp's structured result and asyncpg's rows for the same text."""
    problems = []
    served_names = [column["name"] for column in served["columns"]]
    if served_names != names:
        problems.append(f"{case_id}: columns {served_names} != {names}")
    if served["row_count"] != len(rows) or len(served["rows"]) != len(rows):
        problems.append(f"{case_id}: {served['row_count']} rows != {len(rows)}")
    if served["truncated"]:
        problems.append(f"{case_id}: truncated")
    for number, (got, want) in enumerate(zip(served["rows"], rows, strict=False)):
        got_canonical = [canonical_served(v, t) for v, t in zip(got, types, strict=True)]
        want_canonical = [canonical_direct(v, t) for v, t in zip(want, types, strict=True)]
        if got_canonical != want_canonical:
            problems.append(f"{case_id}: row {number}: {got_canonical} != {want_canonical}")
            break
    return problems


def test_the_corpus_is_big_and_named() -> None:
    ids = [case_id for case_id, _ in QUERIES]
    assert len(ids) == len(set(ids)) and len(ids) >= 60


def test_canonical_forms_tell_values_apart() -> None:
    """The comparison can fail: a lost digit, a float, a shifted time or a reordered array all show."""
    assert canonical_direct(Decimal("1.10"), "numeric") != canonical_served("1.1", "numeric")
    assert canonical_direct(Decimal("0.30000000000000004"), "numeric") != canonical_served(0.3, "numeric")
    assert canonical_direct(2**60, "int8") == canonical_served(str(2**60), "int8")
    assert canonical_direct(2**60, "int8") != canonical_served(float(2**60), "int8")
    moment = dt.datetime(2025, 1, 1, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert canonical_direct(moment, "timestamptz") == canonical_served(
        "2025-01-01 00:00:00+00", "timestamptz"
    )
    assert canonical_direct(moment, "timestamptz") != canonical_served(
        "2025-01-01 01:00:00+00", "timestamptz"
    )
    assert canonical_direct('{"a": 0.1}', "jsonb") != canonical_served({"a": 0.10000000000000002}, "jsonb")
    assert canonical_direct([1, 2], "_int4") != canonical_served([2, 1], "_int4")
    assert canonical_direct(None, "text") != canonical_served("", "text")


async def test_analyst_queries_match_postgresql(pg: DemoDatabase) -> None:
    conn = await _reader(pg)
    failures: list[str] = []
    started = time.monotonic()
    try:
        async with mcp_client(pg.url) as client:
            for case_id, sql in QUERIES:
                result = await client.call_tool("query", {"sql": sql, "max_rows": MAX_ROWS})
                if result.is_error:
                    failures.append(f"{case_id}: refused or failed: {text_of(result)[:300]}")
                    continue
                names, types, rows = await _direct(conn, sql)
                assert len(rows) < MAX_ROWS, f"{case_id} must return fewer than {MAX_ROWS} rows"
                failures += compare(case_id, result.structured_content, names, types, rows)
    finally:
        await conn.close()
    assert not failures, f"{len(failures)} of {len(QUERIES)} queries differ:\n" + "\n".join(failures)
    print(
        f"\nlegitimate analyst queries matching PostgreSQL: {len(QUERIES)} in {time.monotonic() - started:.1f} s"
    )


async def test_the_smaller_limit_wins(pg: DemoDatabase) -> None:
    """The caller's own LIMIT is kept when smaller than max_rows; max_rows cuts (and says so) otherwise."""
    conn = await _reader(pg)
    try:
        _, _, direct = await _direct(conn, "SELECT id FROM sales.orders ORDER BY id LIMIT 50")
        async with mcp_client(pg.url) as client:
            own = await client.call_tool(
                "query", {"sql": "SELECT id FROM sales.orders ORDER BY id LIMIT 5", "max_rows": 10}
            )
            capped = await client.call_tool(
                "query", {"sql": "SELECT id FROM sales.orders ORDER BY id LIMIT 50", "max_rows": 10}
            )
            fetch = await client.call_tool(
                "query",
                {
                    "sql": "SELECT id FROM sales.orders ORDER BY id FETCH FIRST 7 ROWS ONLY -- limit 1000",
                    "max_rows": 10,
                },
            )
    finally:
        await conn.close()
    ids = [row["id"] for row in direct]
    assert (
        own.structured_content["rows"] == [[i] for i in ids[:5]] and not own.structured_content["truncated"]
    )
    assert (
        capped.structured_content["rows"] == [[i] for i in ids[:10]]
        and capped.structured_content["truncated"]
    )
    assert (
        fetch.structured_content["rows"] == [[i] for i in ids[:7]]
        and not fetch.structured_content["truncated"]
    )
