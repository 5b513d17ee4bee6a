"""Unit tests for the SQL guard: pure, no database. Each refused case names the rule that must fire."""

from __future__ import annotations

import os
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pg_mcp.errors import GuardError
from pg_mcp.guard import CheckedQuery, GuardPolicy, check_query, sqlglot_reading
from pg_mcp.guard.functions import ALLOWED_FUNCTIONS, DENIED_REASONS, denial_reason

ALLOWED: list[tuple[str, str]] = [
    ("simple", "SELECT 1"),
    (
        "operator_sqlglot_cannot_read",
        "SELECT l.s FROM lines l, boxes b WHERE l.s ?# b.f1",
    ),  # sqlglotc: TypeError
    ("big_array_literal", "SELECT ARRAY[" + ",".join(["[1, 2]"] * 1_500) + "]"),  # not subscripts
    ("star", "SELECT * FROM orders"),
    ("where_order_limit", "SELECT id, total FROM orders WHERE total > 10 ORDER BY total DESC LIMIT 5"),
    ("offset_fetch", "SELECT * FROM t OFFSET 2 FETCH FIRST 3 ROWS ONLY"),
    ("limit_offset", "SELECT * FROM t LIMIT 10 OFFSET 20"),
    ("limit_word_in_string", "SELECT 'no limit here' AS note"),
    ("window_row_number", "SELECT row_number() OVER (PARTITION BY a ORDER BY b) FROM t"),
    ("window_named", "SELECT sum(x) OVER w, lag(x) OVER w FROM t WINDOW w AS (ORDER BY y)"),
    ("window_frame", "SELECT avg(x) OVER (ORDER BY d ROWS BETWEEN 6 PRECEDING AND CURRENT ROW) FROM t"),
    ("cte", "WITH big AS (SELECT * FROM orders WHERE total > 100) SELECT count(*) FROM big"),
    (
        "cte_recursive",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT * FROM r",
    ),
    ("cte_materialized", "WITH c AS MATERIALIZED (SELECT 1 AS a) SELECT a FROM c"),
    ("lateral", "SELECT * FROM t, LATERAL (SELECT * FROM u WHERE u.t_id = t.id LIMIT 1) x"),
    ("json_ops", "SELECT j->'a', j->>'b', j#>'{a,b}', j#>>'{a}' FROM t"),
    ("jsonb_contains", "SELECT * FROM t WHERE j @> '{\"a\": 1}' AND j ? 'a' AND j ?| array['a', 'b']"),
    ("jsonb_path", "SELECT jsonb_path_query(j, '$.a[*]'), jsonb_build_object('k', 1) FROM t"),
    ("arrays", "SELECT ARRAY[1, 2], a[1], array_length(a, 1), cardinality(a), unnest(a) FROM t"),
    ("array_subquery", "SELECT ARRAY(SELECT id FROM t), x = ANY(ARRAY[1, 2]) FROM u"),
    ("distinct_on", "SELECT DISTINCT ON (customer_id) * FROM orders ORDER BY customer_id, created_at DESC"),
    ("grouping_sets", "SELECT a, b, count(*) FROM t GROUP BY GROUPING SETS ((a), (b), ())"),
    ("rollup_cube", "SELECT a, b, grouping(a) FROM t GROUP BY ROLLUP (a), CUBE (b)"),
    ("filter", "SELECT count(*) FILTER (WHERE status = 'paid') FROM orders"),
    ("within_group", "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY total) FROM orders"),
    ("union", "SELECT 1 UNION SELECT 2"),
    ("union_all_order", "SELECT a FROM t UNION ALL SELECT a FROM u ORDER BY 1 LIMIT 3"),
    ("intersect_except", "(SELECT a FROM t INTERSECT SELECT a FROM u) EXCEPT SELECT a FROM v"),
    ("parenthesised", "(SELECT 1)"),
    ("regex_ilike", "SELECT * FROM t WHERE name ~ '^A' AND name !~* 'x' AND email ILIKE '%@example.com'"),
    (
        "full_text",
        "SELECT ts_rank(to_tsvector(body), q) FROM docs, to_tsquery('cat & dog') q WHERE body @@ q",
    ),
    ("tablesample", "SELECT * FROM t TABLESAMPLE BERNOULLI (10) REPEATABLE (42)"),
    ("quoted_names", 'SELECT "Order Items"."Quantity" FROM "Order Items"'),
    ("information_schema", "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"),
    (
        "pg_catalog_read",
        "SELECT c.relname, pg_catalog.pg_get_userbyid(c.relowner) FROM pg_catalog.pg_class c "
        "WHERE pg_catalog.pg_table_is_visible(c.oid)",
    ),
    ("leading_comment", "-- top rows\n/* block */ SELECT 1"),
    ("trailing_semicolon", "SELECT 1;"),
    ("trailing_comment_after_semicolon", "SELECT 1; -- bye"),
    ("comment_before_semicolon", "SELECT 1 -- note\n;"),
    ("trailing_line_comment", "SELECT 1 -- no semicolon, comment last"),
    ("dollar_quoted", "SELECT $$it's; DELETE FROM t$$ AS s"),
    ("dollar_tag", "SELECT $q$ ; DROP TABLE t; $q$"),
    ("e_string", "SELECT E'it\\'s; here'"),
    ("string_with_semicolon", "SELECT 'a;b' AS s, 'DELETE FROM t' AS d"),
    ("backslash_standard_string", "SELECT 'C:\\' AS path"),
    ("values", "VALUES (1, 'a'), (2, 'b')"),
    ("values_union", "VALUES (1) UNION VALUES (2)"),
    ("table", "TABLE orders"),
    ("casts", "SELECT '1'::int, CAST(x AS numeric(10, 2)), x::varchar(10), DATE '2024-01-01' FROM t"),
    ("keywords", "SELECT CURRENT_DATE, CURRENT_TIMESTAMP, CURRENT_USER, SESSION_USER, LOCALTIME, now()"),
    ("keyword_precision", "SELECT current_timestamp(3), localtimestamp(0)"),
    (
        "syntax_functions",
        "SELECT EXTRACT(year FROM d), coalesce(a, b), nullif(a, 0), greatest(a, b), least(a, b) FROM t",
    ),
    (
        "special_string_syntax",
        "SELECT substring(s FROM 1 FOR 2), position('a' IN s), trim(both ' ' FROM s), "
        "overlay(s placing 'x' from 1) FROM t",
    ),
    ("case", "SELECT CASE WHEN a > 1 THEN 'big' ELSE 'small' END, CASE (b) WHEN 1 THEN 'one' END FROM t"),
    (
        "row_exists_in",
        "SELECT ROW(1, 2) FROM t WHERE EXISTS (SELECT 1) AND a IN (1, 2) AND b = ALL(ARRAY[1])",
    ),
    ("overlaps_distinct", "SELECT (a, b) OVERLAPS (c, d), x IS DISTINCT FROM y FROM t"),
    ("collate_timezone", "SELECT name COLLATE \"C\", ts AT TIME ZONE 'UTC' FROM t"),
    ("interval", "SELECT now() - interval '1 day', date_trunc('month', now()), age(d) FROM t"),
    (
        "string_functions",
        "SELECT lower(a), upper(a), length(a), split_part(a, ',', 1), format('%s', a) FROM t",
    ),
    ("string_agg_order", "SELECT string_agg(name, ', ' ORDER BY name), array_agg(id) FROM t"),
    ("to_char", "SELECT to_char(now(), 'YYYY-MM-DD'), date_part('year', now())"),
    ("generate_series", "SELECT * FROM generate_series(1, 10) AS g(n)"),
    ("pg_catalog_function", "SELECT pg_catalog.upper('a'), pg_catalog.now()"),
    ("catalog_helpers", "SELECT pg_size_pretty(pg_total_relation_size('t')), format_type(1, -1), version()"),
    ("current_setting", "SELECT current_setting('server_version')"),
    ("uuid_random", "SELECT gen_random_uuid(), random()"),
    ("parameter_like_dollar_identifier", "SELECT 1 AS x$a$, 2 AS y$a$"),
    ("xml", "SELECT xmlelement(name foo, 'x'), xpath('/a', '<a/>'::xml)"),
    ("nested_subqueries", "SELECT * FROM (SELECT * FROM (SELECT 1 AS a) s1) s2 WHERE a IN (SELECT 1)"),
    ("quoted_builtin_lower", 'SELECT "upper"(\'a\'), "now"()'),
]

REFUSED: list[tuple[str, str, str]] = [
    # Statements that are not reads.
    ("insert", "INSERT INTO t VALUES (1)", "not_read_only"),
    ("update", "UPDATE t SET a = 1", "not_read_only"),
    ("delete", "DELETE FROM t", "not_read_only"),
    ("merge", "MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE", "not_read_only"),
    ("truncate", "TRUNCATE t", "not_read_only"),
    ("create_table", "CREATE TABLE t (a int)", "not_read_only"),
    ("create_table_as", "CREATE TABLE t AS SELECT 1", "not_read_only"),
    ("create_function", "CREATE FUNCTION f() RETURNS int AS 'select 1' LANGUAGE sql", "not_read_only"),
    ("drop_table", "DROP TABLE t", "not_read_only"),
    ("alter_table", "ALTER TABLE t ADD COLUMN b int", "not_read_only"),
    ("grant", "GRANT SELECT ON t TO u", "not_read_only"),
    ("revoke", "REVOKE SELECT ON t FROM u", "not_read_only"),
    ("comment_on", "COMMENT ON TABLE t IS 'x'", "not_read_only"),
    ("explain_analyze_delete", "EXPLAIN ANALYZE DELETE FROM t", "not_read_only"),
    ("explain", "EXPLAIN SELECT 1", "not_read_only"),
    ("show", "SHOW search_path", "not_read_only"),
    ("set", "SET search_path = evil", "not_read_only"),
    ("set_role", "SET ROLE postgres", "not_read_only"),
    ("reset", "RESET ALL", "not_read_only"),
    ("do", "DO $$ BEGIN PERFORM pg_sleep(1); END $$", "not_read_only"),
    ("call", "CALL p()", "not_read_only"),
    ("copy_to", "COPY t TO STDOUT", "not_read_only"),
    ("copy_program", "COPY t FROM PROGRAM 'id'", "not_read_only"),
    ("listen", "LISTEN channel", "not_read_only"),
    ("notify", "NOTIFY channel", "not_read_only"),
    ("prepare", "PREPARE p AS SELECT 1", "not_read_only"),
    ("execute", "EXECUTE p", "not_read_only"),
    ("declare_cursor", "DECLARE c CURSOR FOR SELECT 1", "not_read_only"),
    ("fetch_cursor", "FETCH 1 FROM c", "not_read_only"),
    ("lock_table", "LOCK TABLE t", "not_read_only"),
    ("vacuum", "VACUUM", "not_read_only"),
    ("analyze", "ANALYZE t", "not_read_only"),
    ("refresh_matview", "REFRESH MATERIALIZED VIEW v", "not_read_only"),
    ("begin", "BEGIN", "not_read_only"),
    ("commit", "COMMIT", "not_read_only"),
    ("rollback", "ROLLBACK", "not_read_only"),
    ("start_transaction", "START TRANSACTION", "not_read_only"),
    ("checkpoint", "CHECKPOINT", "not_read_only"),
    ("discard", "DISCARD ALL", "not_read_only"),
    ("with_insert_top", "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x", "not_read_only"),
    # More than one statement.
    ("stacked_commit_drop", "SELECT 1; COMMIT; DROP SCHEMA public CASCADE;", "multiple_statements"),
    ("two_selects", "SELECT 1; SELECT 2", "multiple_statements"),
    ("select_then_delete", "SELECT 1;\nDELETE FROM t", "multiple_statements"),
    # Writes and locks hidden inside a read.
    ("cte_delete", "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "write_in_query"),
    ("cte_insert", "WITH i AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM i", "write_in_query"),
    ("cte_update", "WITH u AS (UPDATE t SET a = 1 RETURNING a) SELECT * FROM u", "write_in_query"),
    (
        "nested_cte_update",
        "SELECT * FROM x WHERE a IN (WITH d AS (UPDATE t SET a = 1 RETURNING a) SELECT a FROM d)",
        "write_in_query",
    ),
    ("select_into", "SELECT * INTO new_table FROM t", "select_into"),
    ("select_into_temp", "SELECT 1 INTO TEMP t", "select_into"),
    ("for_update", "SELECT * FROM t FOR UPDATE", "row_lock"),
    ("for_share", "SELECT * FROM t FOR SHARE", "row_lock"),
    ("for_no_key_update", "SELECT * FROM t FOR NO KEY UPDATE", "row_lock"),
    ("for_key_share", "SELECT * FROM t FOR KEY SHARE", "row_lock"),
    ("for_update_subquery", "SELECT * FROM (SELECT * FROM t FOR UPDATE) s", "row_lock"),
    ("for_update_cte", "WITH c AS (SELECT * FROM t FOR UPDATE SKIP LOCKED) SELECT * FROM c", "row_lock"),
    # Functions, in every position and spelling.
    ("sleep_select_list", "SELECT pg_sleep(10)", "function_not_allowed"),
    ("sleep_from", "SELECT * FROM pg_sleep(10)", "function_not_allowed"),
    ("sleep_where", "SELECT * FROM t WHERE pg_sleep(10) IS NULL", "function_not_allowed"),
    ("sleep_group_by", "SELECT count(*) FROM t GROUP BY pg_sleep(1)", "function_not_allowed"),
    ("sleep_having", "SELECT count(*) FROM t HAVING pg_sleep(1) IS NULL", "function_not_allowed"),
    ("sleep_order_by", "SELECT * FROM t ORDER BY pg_sleep(10)", "function_not_allowed"),
    ("sleep_limit", "SELECT * FROM t LIMIT (SELECT 1 FROM pg_sleep(10))", "function_not_allowed"),
    ("sleep_offset", "SELECT * FROM t OFFSET length(pg_sleep(1)::text)", "function_not_allowed"),
    ("sleep_cte", "WITH s AS (SELECT pg_sleep(10)) SELECT * FROM s", "function_not_allowed"),
    ("sleep_lateral", "SELECT * FROM t, LATERAL pg_sleep(10)", "function_not_allowed"),
    ("sleep_case", "SELECT CASE WHEN a > 0 THEN pg_sleep(1) END FROM t", "function_not_allowed"),
    ("sleep_window_order", "SELECT rank() OVER (ORDER BY pg_sleep(1)) FROM t", "function_not_allowed"),
    ("sleep_subquery", "SELECT (SELECT pg_sleep(1))", "function_not_allowed"),
    ("sleep_cast", "SELECT pg_sleep(1)::text", "function_not_allowed"),
    (
        "sleep_rows_from",
        "SELECT * FROM ROWS FROM (generate_series(1, 2), pg_sleep(1)) r",
        "function_not_allowed",
    ),
    ("sleep_union_branch", "SELECT 1 UNION SELECT pg_sleep(1)::int", "function_not_allowed"),
    ("sleep_for", "SELECT pg_sleep_for('1 minute')", "function_not_allowed"),
    ("read_file_from", "SELECT * FROM pg_read_file('/etc/passwd')", "function_not_allowed"),
    ("ls_dir", "SELECT pg_ls_dir('.')", "function_not_allowed"),
    ("stat_file", "SELECT pg_stat_file('postgresql.conf')", "function_not_allowed"),
    ("qualified_sleep", "SELECT pg_catalog.pg_sleep(1)", "function_not_allowed"),
    ("qualified_sleep_from", "SELECT * FROM pg_catalog.pg_sleep(1)", "function_not_allowed"),
    ("quoted_sleep", 'SELECT "pg_sleep"(1)', "function_not_allowed"),
    ("unicode_escaped_sleep", 'SELECT U&"pg_sl\\0065ep"(1)', "function_not_allowed"),
    ("unicode_field_name", 'SELECT (5).U&"pg_sleep"', "function_not_allowed"),
    ("field_selection_unknown_names", "SELECT (5).pg_sleep", "function_not_allowed"),
    ("keyword_function_in_from", "SELECT * FROM cube(1)", "function_not_allowed"),
    ("keyword_qualified_in_from", "SELECT * FROM public.update(1, 'x')", "function_not_allowed"),
    ("keyword_tablesample_call", "SELECT tablesample(1)", "function_not_allowed"),
    ("keyword_lateral_call", "SELECT lateral('a', 'b')", "syntax"),
    ("tablesample_extension_method", "SELECT * FROM t TABLESAMPLE system_rows(10)", "function_not_allowed"),
    (
        "no_break_space_before_dollars",
        "SELECT interval\u00a0$$, pg_sleep(2) AS b\u00a0$$ FROM q",
        "function_not_allowed",
    ),
    ("no_break_space_between_words", "SELECT\u00a01", "syntax"),
    ("next_line_character", "SELECT 1\u0085", "syntax"),
    ("ideographic_space_in_comment", "SELECT 1 /* \u3000 */", "unicode_whitespace"),
    ("upper_case_sleep", "SELECT PG_SLEEP(1)", "function_not_allowed"),
    ("comment_between_name_and_paren", "SELECT pg_sleep /* x */ (1)", "function_not_allowed"),
    ("sqlglot_anonymous_comment", "SELECT txid_current() /* sqlglot.anonymous */", "function_not_allowed"),
    ("set_config", "SELECT set_config('search_path', 'evil', false)", "function_not_allowed"),
    ("nextval", "SELECT nextval('orders_id_seq')", "function_not_allowed"),
    ("setval", "SELECT setval('orders_id_seq', 1)", "function_not_allowed"),
    ("advisory_lock", "SELECT pg_advisory_lock(1)", "function_not_allowed"),
    ("advisory_xact_lock_shared", "SELECT pg_try_advisory_xact_lock_shared(1)", "function_not_allowed"),
    ("dblink", "SELECT * FROM dblink('host=evil', 'DELETE FROM t') AS r(x int)", "function_not_allowed"),
    (
        "query_to_xml",
        "SELECT query_to_xml('DELETE FROM t RETURNING 1', true, true, '')",
        "function_not_allowed",
    ),
    ("table_to_xml", "SELECT table_to_xml('t', true, true, '')", "function_not_allowed"),
    ("lo_import", "SELECT lo_import('/etc/passwd')", "function_not_allowed"),
    ("terminate_backend", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity", "function_not_allowed"),
    ("cancel_backend", "SELECT pg_cancel_backend(1)", "function_not_allowed"),
    ("ts_stat", "SELECT * FROM ts_stat('SELECT body FROM docs')", "function_not_allowed"),
    ("ts_rewrite", "SELECT ts_rewrite('a'::tsquery, 'SELECT 1')", "function_not_allowed"),
    ("notify_function", "SELECT pg_notify('c', 'x')", "function_not_allowed"),
    ("txid_current", "SELECT txid_current()", "function_not_allowed"),
    ("reload_conf", "SELECT pg_reload_conf()", "function_not_allowed"),
    ("unknown_udf", "SELECT my_udf(1)", "function_not_allowed"),
    ("public_now", "SELECT public.now()", "function_not_allowed"),
    ("public_generate_series_from", "SELECT * FROM public.generate_series(1, 3)", "function_not_allowed"),
    ("three_part_name", "SELECT db.pg_catalog.now()", "function_not_allowed"),
    ("quoted_mixed_case_builtin", 'SELECT "Sum"(x) FROM t', "function_not_allowed"),
    ("foreign_alias_ifnull", "SELECT ifnull(a, b) FROM t", "function_not_allowed"),
    ("foreign_alias_len", "SELECT len(a) FROM t", "function_not_allowed"),
    ("unreserved_keyword_function", "SELECT first(a) FROM t", "function_not_allowed"),
    ("quoted_keyword_function", 'SELECT "row"(1, 2)', "function_not_allowed"),
    # Input bounds and parsing.
    ("empty", "", "empty"),
    ("whitespace", " \n\t ", "empty"),
    ("comment_only", "-- nothing here\n/* nor here */", "empty"),
    ("semicolon_only", ";", "empty"),
    ("nul_byte", "SELECT 1\x00", "control_characters"),
    ("escape_character", "SELECT \x1b1", "control_characters"),
    ("lone_surrogate", "SELECT '\ud800'", "encoding"),
    ("too_long", "SELECT " + "1 + " * 30_000 + "1", "too_long"),
    ("deep_parentheses", "SELECT " + "(" * 10_000 + "1" + ")" * 10_000, "too_deep"),
    ("deep_not_chain", "SELECT " + "NOT " * 3_000 + "true", "too_deep"),
    ("long_subscript_chain", "SELECT a" + "[1]" * 1_000 + " FROM t", "too_complex"),
    ("many_subscripts", "SELECT " + "+".join(["a[1]"] * 1_001) + " FROM t", "too_complex"),
    ("unterminated_string", "SELECT 'abc", "syntax"),
    ("unterminated_comment", "SELECT 1 /* never closed", "syntax"),
    ("syntax_error", "SELECT * FROM WHERE", "syntax"),
]


TERMINATED = {
    "SELECT 1;": "SELECT 1",
    "SELECT 1; -- bye": "SELECT 1",
    "SELECT 1 -- note\n;": "SELECT 1 -- note\n",
}
"""Allowed inputs with a trailing semicolon, and the statement the guard must keep."""


@pytest.mark.parametrize("sql", [case[1] for case in ALLOWED], ids=[case[0] for case in ALLOWED])
def test_allowed(sql: str) -> None:
    checked = check_query(sql, max_rows=100)
    assert isinstance(checked, CheckedQuery)
    assert checked.max_rows == 100
    assert checked.statement == TERMINATED.get(sql, sql)
    assert checked.sql == f"SELECT * FROM (\n{checked.statement}\n) AS pg_mcp_result LIMIT 101"


@pytest.mark.parametrize(
    ("sql", "rule"), [(case[1], case[2]) for case in REFUSED], ids=[case[0] for case in REFUSED]
)
def test_refused(sql: str, rule: str) -> None:
    with pytest.raises(GuardError) as caught:
        check_query(sql, max_rows=100)
    assert caught.value.rule == rule
    assert caught.value.message
    assert caught.value.hint


@pytest.mark.parametrize(
    ("sql", "statement"),
    [
        ("SELECT 1", "SELECT 1"),
        ("SELECT 1;", "SELECT 1"),
        ("SELECT 1 ;  ", "SELECT 1 "),
        ("SELECT 1; -- bye", "SELECT 1"),
        ("SELECT 1;;", "SELECT 1"),
        ("SELECT 1; /* a */ ;", "SELECT 1"),
        ("SELECT 1 -- note\n;", "SELECT 1 -- note\n"),
        ("SELECT 'a;b' ; ", "SELECT 'a;b' "),
        ("SELECT $$;$$;", "SELECT $$;$$"),
        ('SELECT "Weird;Name" FROM t;', 'SELECT "Weird;Name" FROM t'),
        ("SELECT E'it\\'s';", "SELECT E'it\\'s'"),
        ('SELECT x::"numeric" FROM t', 'SELECT x::"numeric" FROM t'),
    ],
)
def test_statement_is_callers_own_text(sql: str, statement: str) -> None:
    assert check_query(sql, max_rows=1).statement == statement


def test_trailing_line_comment_cannot_swallow_the_wrapper() -> None:
    checked = check_query("SELECT 1 -- comment", max_rows=5)
    assert checked.sql == "SELECT * FROM (\nSELECT 1 -- comment\n) AS pg_mcp_result LIMIT 6"


def test_callers_own_limit_stays_inside() -> None:
    checked = check_query("SELECT * FROM t LIMIT 3", max_rows=1000)
    assert checked.sql.endswith("LIMIT 3\n) AS pg_mcp_result LIMIT 1001")


def test_limit_in_a_string_does_not_skip_the_cap() -> None:
    checked = check_query("SELECT 'limit 1' FROM big", max_rows=10)
    assert checked.sql.endswith(") AS pg_mcp_result LIMIT 11")


def test_syntax_error_reports_line_and_column() -> None:
    with pytest.raises(GuardError) as caught:
        check_query("SELECT 1\nFROM t WHERE )", max_rows=1)
    assert caught.value.rule == "syntax"
    assert "line 2" in caught.value.message
    assert "column" in caught.value.message


def test_refusal_names_the_statement_kind() -> None:
    with pytest.raises(GuardError) as caught:
        check_query("DELETE FROM t", max_rows=1)
    assert caught.value.message.startswith("DELETE statements are not allowed")


def test_refusal_names_the_function_and_why() -> None:
    with pytest.raises(GuardError) as caught:
        check_query("SELECT pg_sleep(1)", max_rows=1)
    assert "pg_sleep" in caught.value.message
    assert "wait" in caught.value.message
    assert caught.value.hint is not None and "PG_MCP_ALLOW_FUNCTIONS" in caught.value.hint


def test_operator_can_allow_a_function() -> None:
    policy = GuardPolicy(allowed_functions=frozenset({"my_udf", "reports.monthly"}))
    assert check_query("SELECT my_udf(1)", max_rows=1, policy=policy).statement == "SELECT my_udf(1)"
    check_query("SELECT * FROM reports.monthly(2024)", max_rows=1, policy=policy)
    with pytest.raises(GuardError):
        check_query("SELECT other.monthly(2024)", max_rows=1, policy=policy)
    with pytest.raises(GuardError):
        check_query("SELECT my_udf(1)", max_rows=1)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT " + "+".join(["a" + "[1]" * 10] * 90),  # subscripts: sqlglot infers a type for each
        "SELECT " + "+".join(["abs(a[1][1])"] * 450),
        "SELECT 1 WHERE " + " OR ".join(f"a = {i}" for i in range(2_000)),
    ],
    ids=["many_subscripts", "calls_with_subscripts", "or_chain"],
)
def test_the_deadline_covers_the_whole_guard(sql: str) -> None:
    """A statement the guard accepts is refused with the deadline's rule once its deadline has passed:
    the clock is checked between the stages and inside the parser, not only at the end."""
    roomy = GuardPolicy(max_parse_seconds=60.0, one_arg_functions=frozenset())  # a busy machine is slow
    assert check_query(sql, max_rows=10, policy=roomy)
    with pytest.raises(GuardError) as caught:
        check_query(
            sql, max_rows=10, policy=GuardPolicy(max_parse_seconds=0.0, one_arg_functions=frozenset())
        )
    assert caught.value.rule == "too_complex"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT a <> -1, a<>-1, b>=-1, 1*-1, 1+-+-1, -a, 2 ^ 3, 7 % 2, 5 # 3, ~ 1",
        "SELECT doc ->> 'k', doc #>> '{a,b}', doc @> '{}', doc ? 'k', doc ?| ARRAY['a'] FROM t",
        "SELECT name ~* 'x', name !~~* 'y', name || '-', tags && ARRAY['a'], r -|- r2 FROM t",
        "SELECT make_interval(days => 1), 1 OPERATOR(pg_catalog.+) 2, a != b FROM t",
        "SELECT p <-> q, ts @@ q, * FROM t WHERE x <= 3",
    ],
)
def test_built_in_operators_are_accepted(sql: str) -> None:
    check_query(sql, max_rows=10)


def test_length_limit_is_configurable() -> None:
    with pytest.raises(GuardError) as caught:
        check_query("SELECT 12345", max_rows=1, policy=GuardPolicy(max_sql_length=5))
    assert caught.value.rule == "too_long"


@pytest.mark.parametrize("value", [None, 42, b"SELECT 1"])
def test_non_text_input(value: object) -> None:
    with pytest.raises(GuardError) as caught:
        check_query(value, max_rows=1)  # type: ignore[arg-type]
    assert caught.value.rule == "encoding"


def test_max_rows_must_be_positive() -> None:
    with pytest.raises(ValueError):
        check_query("SELECT 1", max_rows=0)


def test_allowlist_has_no_known_dangerous_function() -> None:
    assert not ALLOWED_FUNCTIONS & set(DENIED_REASONS)
    generic = denial_reason("surely_not_a_builtin")
    assert all(denial_reason(name) == generic for name in ALLOWED_FUNCTIONS)
    assert all(name == name.lower() for name in ALLOWED_FUNCTIONS)


SEEDS = [
    "SELECT a, count(*) FROM t WHERE b > 1 GROUP BY a ORDER BY 2 DESC LIMIT 5;",
    "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
    "SELECT * FROM pg_read_file('/etc/passwd') -- x",
    "SELECT j->>'k', $$a;b$$, E'x\\'y', \"Q\"(1) FROM u FOR UPDATE",
]


@st.composite
def _mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        position = draw(st.integers(min_value=0, max_value=len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(
            st.sampled_from([";", "(", ")", "'", '"', "$$", "--", "/*", "*/", "\\", "U&", "."])
            | st.text(max_size=3)
        )
        if action == "insert":
            text = text[:position] + piece + text[position:]
        elif action == "delete":
            text = text[:position] + text[position + 1 :]
        else:
            text = text[:position] + piece + text[position + 1 :]
    return text


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), _mutated()))
def test_fuzz_only_guard_errors(sql: str) -> None:
    try:
        checked = check_query(sql, max_rows=10)
    except GuardError as error:
        assert error.rule
    else:
        assert checked.sql.startswith("SELECT * FROM (\n")


#: What `(expr).name` and `alias.name` may call, as the server loads it from pg_proc.
DATABASE_FUNCTIONS = GuardPolicy(
    one_arg_functions=frozenset({"pg_sleep", "pg_read_file", "nextval", "ts_stat", "name", "evil", "upper"}),
    row_functions=frozenset({"evil"}),
)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT (5).pg_sleep",
        'SELECT (5)."pg_sleep"',
        "SELECT ('/etc/passwd').pg_read_file",
        "SELECT (x).pg_sleep FROM t",
        "SELECT 1 FROM t WHERE (t.a).pg_sleep IS NULL",
        "SELECT a FROM t ORDER BY (a).pg_sleep",
        "SELECT ('s'::regclass).nextval",
        "SELECT ('SELECT 1').ts_stat",
        "SELECT (t).evil FROM t",
        "SELECT t.evil FROM t",
        "SELECT s.t.evil FROM s.t",
    ],
)
def test_field_selection_that_calls_a_function_is_refused(sql: str) -> None:
    with pytest.raises(GuardError) as caught:
        check_query(sql, 10, DATABASE_FUNCTIONS)
    assert caught.value.rule == "function_not_allowed"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT (json_each(j)).key FROM t",
        "SELECT (t.address).city FROM t",
        "SELECT (x).* FROM t",
        "SELECT (c).name FROM t",
        "SELECT (c).upper FROM t",
        "SELECT t.name, t.pg_sleep FROM t",
        "SELECT 'no\u00a0break', \"odd\u3000name\" FROM t",
        "SELECT * FROM t TABLESAMPLE BERNOULLI (5) REPEATABLE (1)",
        "SELECT * FROM generate_series(1, 3) AS g(n)",
    ],
)
def test_field_selection_of_real_fields_is_accepted(sql: str) -> None:
    check_query(sql, 10, DATABASE_FUNCTIONS)


@pytest.mark.parametrize("shape", ["abs({})", "({})"])
def test_the_stated_nesting_limit_is_the_real_one(shape: str) -> None:
    """Up to 200 nested calls or parentheses are read; beyond, the refusal states that limit."""

    def nested(depth: int) -> str:
        sql = "1"
        for _ in range(depth):
            sql = shape.format(sql)
        return "SELECT " + sql

    assert check_query(nested(199), 10)
    with pytest.raises(GuardError) as caught:
        check_query(nested(201), 10)
    assert caught.value.rule == "too_deep" and "200 levels" in caught.value.message


async def test_a_kept_verdict_is_only_reused_for_the_same_text_cap_and_policy() -> None:
    from pg_mcp.guard import CACHED_STATEMENT_CHARS, _verdicts, check_query_async

    sql = "SELECT concat('a', 'b') AS ab"
    first = await check_query_async(sql, 10, GuardPolicy(one_arg_functions=frozenset()))
    again = await check_query_async(sql, 10, GuardPolicy(one_arg_functions=frozenset()))
    assert again is first, "the same text, cap and policy: the kept verdict"
    other_cap = await check_query_async(sql, 11, GuardPolicy(one_arg_functions=frozenset()))
    assert other_cap.sql.endswith("LIMIT 12")
    with pytest.raises(GuardError) as limited:  # a shorter statement limit: the policy changed
        await check_query_async(sql, 10, GuardPolicy(one_arg_functions=frozenset(), max_sql_length=10))
    assert limited.value.rule == "too_long", "a new policy is checked again, not answered from the cache"
    long_sql = "SELECT 1 AS one -- " + "x" * CACHED_STATEMENT_CHARS
    await check_query_async(long_sql, 10, GuardPolicy())
    assert all(key[0] != long_sql for key in _verdicts), "long statements are not kept"


def test_the_sqlglot_build_is_the_one_expected() -> None:
    """CI runs the guard's tests on the compiled build (sqlglotc, the default) and on the pure-Python
    one; PG_MCP_EXPECT_SQLGLOT_BUILD says which, so that a build failing to load cannot go unnoticed."""
    expected = os.environ.get("PG_MCP_EXPECT_SQLGLOT_BUILD")
    if expected is None:
        pytest.skip("PG_MCP_EXPECT_SQLGLOT_BUILD is not set")
    assert expected == sqlglot_reading.SQLGLOT_BUILD


def _check_in_thread(sql: str, policy: GuardPolicy) -> BaseException | None:
    """The guard's verdict, from a thread given far longer than the guard's deadline (a hang fails)."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            check_query(sql, max_rows=10, policy=policy)
            outcome.append(None)
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive(), "the guard ran on far past its deadline"
    return outcome[0]


@pytest.mark.parametrize("depth", [20, 150])
def test_sqlglot_backtracking_exponentially_is_stopped_at_the_deadline(depth: int) -> None:
    """sqlglot's time on nested ARRAY[...] doubles with every level (20 deep: minutes, on either build);
    its worker process is ended at the guard's deadline and the statement is refused as too complex."""
    sql = "SELECT " + "ARRAY[" * depth + "1" + "]" * depth
    error = _check_in_thread(sql, GuardPolicy(max_parse_seconds=0.5))
    assert isinstance(error, GuardError) and error.rule == "too_complex"


async def test_a_statement_slow_to_check_is_stopped_in_its_own_process() -> None:
    """sqlglot backtracks for minutes on ARRAYs nested 20 deep: its worker process is ended at the
    deadline, the event loop runs meanwhile, and the next statement is checked by a fresh worker."""
    import asyncio

    from pg_mcp.guard import check_query_async

    sql = "SELECT " + "ARRAY[" * 20 + "1" + "]" * 20
    policy = GuardPolicy(max_parse_seconds=0.5)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    with pytest.raises(GuardError) as caught:
        await check_query_async(sql, 10, policy)
    ticker.cancel()
    assert caught.value.rule == "too_complex"
    assert ticks > 0, "the event loop ran while the statement was checked"
    assert (await check_query_async("SELECT 1 AS after", 10, policy)).statement == "SELECT 1 AS after"


async def test_waiting_for_the_guard_is_never_refusing() -> None:
    """Twelve statements that each take a worker's whole deadline, then a plain one: the plain one waits
    its turn and is accepted; only the slow ones are refused as too complex."""
    import asyncio

    from pg_mcp.guard import check_query_async

    policy = GuardPolicy(max_parse_seconds=0.3)
    slow = [check_query_async("SELECT " + "ARRAY[" * 20 + str(n) + "]" * 20, 10, policy) for n in range(12)]
    outcomes = await asyncio.gather(
        *slow, check_query_async("SELECT 7 AS n", 10, policy), return_exceptions=True
    )
    assert all(isinstance(o, GuardError) and o.rule == "too_complex" for o in outcomes[:-1])
    assert isinstance(outcomes[-1], CheckedQuery), outcomes[-1]


def test_a_worker_that_dies_is_replaced() -> None:
    """A guard worker killed from outside (the OOM killer, say) costs no statement: a new one takes over."""
    import signal as signals

    from pg_mcp.guard.pool import POOL

    check_query("SELECT 1", 10)
    for worker in list(POOL._workers):
        worker.process.send_signal(signals.SIGKILL)
        worker.process.wait()
    for n in range(4):
        assert check_query(f"SELECT {n} AS n", 10).statement == f"SELECT {n} AS n"
