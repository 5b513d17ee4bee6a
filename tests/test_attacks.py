"""The attack corpus, executed end to end: the real server over stdio, the real demo database.

Every case is sent to the `query` tool of ONE `pg-mcp` subprocess (driven by the official MCP
client) and must come back as a tool error whose text is exactly the guard's refusal (so it was
stopped before reaching PostgreSQL), with a hint and no traceback. Before and after every category,
and for the whole corpus, a snapshot taken as superuser proves that nothing changed: data checksums,
schema checksum, sequences, large objects, roles and role settings, configuration files, statistics
resets, advisory locks and locks held by pg-mcp, replication slots, prepared transactions, a fresh
reader session's defaults, the session state of pg-mcp's own pooled connections, a "victim" session
that must stay alive and must not receive notifications, and no files written under /tmp.

The same write / stacked / transaction corpus is then run through the database layer alone, the guard
bypassed (`Database.run_query` on a hand-made `CheckedQuery`, as a *superuser*, so that only the
session layer stands in the way), and the number it stops is counted. Side-effecting functions that
the session layer does not refuse (pg_sleep, advisory locks, set_config, query_to_xml of a SELECT,
...) are checked for what is true of them: they are bounded by the timeout or undone by the
rollback and reset, and the next call on the same connection sees a clean session.

Counts at the time of writing (`pytest -s tests/test_attacks.py` prints them):
attacks refused at the guard: 1477 (plus 10 look-alike separators refused without harm);
stopped by the database layer alone: 230 of 230 (227 raised an error; 3 ran and changed nothing:
plain EXPLAIN of a DELETE, SHOW ALL, and an unreferenced `FOR UPDATE` CTE, which PostgreSQL never runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import mcp.types
import pytest
import pytest_asyncio
from conftest import DemoDatabase
from factories import database_for, unguarded
from mcp_helpers import ROOT, mcp_client, server_env, text_of

from pg_mcp.database.catalog import FIELD_CALLABLE_FUNCTIONS_SQL
from pg_mcp.database.executor import Database
from pg_mcp.errors import GuardError, PgMcpError
from pg_mcp.guard import GuardPolicy, check_query

ATTACK_FILES = "/tmp/pg_mcp_attack_"
VICTIM_APP = "pg_mcp_victim"
VICTIM_CHANNEL = "pg_mcp_attack"
VICTIM_PID = f"(SELECT pid FROM pg_stat_activity WHERE application_name = '{VICTIM_APP}' LIMIT 1)"

# ---------------------------------------------------------------------------------------- corpus

Case = tuple[str, str]

STACKED: list[Case] = [
    ("reference_server_commit_drop", "SELECT 1; COMMIT; DROP SCHEMA public CASCADE;"),
    ("select_then_drop", "SELECT 1; DROP TABLE sales.products"),
    ("select_then_delete", "SELECT 1; DELETE FROM sales.products"),
    ("no_spaces", "SELECT 1;DELETE FROM sales.products;"),
    ("double_semicolon", "SELECT 1;;DROP TABLE sales.products"),
    ("leading_semicolon", "; DELETE FROM sales.products"),
    ("commit_first", "COMMIT; DROP TABLE sales.products"),
    ("rollback_begin_write", "ROLLBACK; BEGIN READ WRITE; DELETE FROM sales.products; COMMIT"),
    ("newlines", "SELECT 1\n;\nUPDATE sales.products SET price = 0"),
    ("two_reads", "SELECT 1; SELECT 2"),
    ("parenthesised_then_write", "(SELECT 1); DELETE FROM sales.products"),
    ("set_then_write", "SELECT 1; SET default_transaction_read_only = off; DELETE FROM sales.products"),
    ("table_then_truncate", "TABLE hr.departments; TRUNCATE hr.departments CASCADE"),
    ("values_then_insert", "VALUES (1); INSERT INTO hr.departments VALUES (99, 'x', 1)"),
    ("cte_then_drop", "WITH a AS (SELECT 1) SELECT * FROM a; DROP TABLE hr.employees"),
    ("trailing_write_after_comment", "SELECT 1; /* cleanup */ DELETE FROM sales.products"),
    ("begin_wrapped", "BEGIN; DELETE FROM sales.products; COMMIT"),
    ("end_then_write", "SELECT 1; END; DELETE FROM sales.products"),
    ("abort_then_write", "SELECT 1; ABORT; CREATE TABLE public.evil (id int)"),
    ("copy_after_select", f"SELECT 1; COPY sales.products TO '{ATTACK_FILES}stacked'"),
]

STATEMENTS: list[Case] = [
    (
        "insert_values",
        "INSERT INTO sales.products (id, sku, name, category, price, created_on) "
        "VALUES (-1, 'x', 'x', 'x', 1, now())",
    ),
    ("insert_select", "INSERT INTO hr.departments SELECT id + 100, name || 'x', budget FROM hr.departments"),
    (
        "insert_on_conflict",
        "INSERT INTO hr.departments VALUES (1, 'x', 1) ON CONFLICT (id) DO UPDATE SET name = 'x'",
    ),
    ("insert_returning", "INSERT INTO hr.departments VALUES (99, 'x', 1) RETURNING *"),
    ("with_insert_top", "WITH s AS (SELECT 99 AS id) INSERT INTO hr.departments SELECT id, 'x', 1 FROM s"),
    ("update", "UPDATE sales.products SET price = 0"),
    ("update_from", "UPDATE sales.orders o SET total = 0 FROM sales.customers c WHERE c.id = o.customer_id"),
    ("update_returning", "UPDATE hr.employees SET salary = 1 RETURNING id"),
    ("delete", "DELETE FROM sales.products"),
    ("delete_using", "DELETE FROM sales.order_items i USING sales.orders o WHERE o.id = i.order_id"),
    ("delete_returning", "DELETE FROM hr.employees RETURNING *"),
    ("merge", "MERGE INTO hr.departments d USING (SELECT 1 AS id) s ON d.id = s.id WHEN MATCHED THEN DELETE"),
    (
        "merge_insert",
        "MERGE INTO hr.departments d USING (SELECT 99 AS id) s ON d.id = s.id "
        "WHEN NOT MATCHED THEN INSERT VALUES (s.id, 'x', 1)",
    ),
    ("truncate", "TRUNCATE sales.products"),
    ("truncate_cascade", "TRUNCATE TABLE sales.order_items, sales.orders CASCADE"),
    ("create_table", "CREATE TABLE sales.evil (id int)"),
    ("create_temp_table_as", "CREATE TEMP TABLE evil AS SELECT 1"),
    ("create_table_as", "CREATE TABLE public.evil AS SELECT * FROM sales.products"),
    ("create_unlogged", "CREATE UNLOGGED TABLE public.evil (id int)"),
    ("create_view", "CREATE VIEW public.evil AS SELECT 1"),
    ("create_or_replace_view", "CREATE OR REPLACE VIEW sales.customer_order_summary AS SELECT 1 AS x"),
    ("create_materialized_view", "CREATE MATERIALIZED VIEW public.evil AS SELECT 1"),
    ("create_index", "CREATE INDEX evil_idx ON sales.products (name)"),
    ("create_index_concurrently", "CREATE INDEX CONCURRENTLY evil_idx ON sales.products (name)"),
    (
        "create_function",
        "CREATE FUNCTION public.evil() RETURNS int LANGUAGE sql "
        "AS $$ DELETE FROM sales.products RETURNING 1 $$",
    ),
    (
        "create_or_replace_function",
        "CREATE OR REPLACE FUNCTION public.evil() RETURNS void "
        "LANGUAGE plpgsql AS $$ BEGIN DELETE FROM sales.products; END $$",
    ),
    ("create_procedure", "CREATE PROCEDURE public.evil() LANGUAGE sql AS $$ DELETE FROM sales.products $$"),
    ("create_schema", "CREATE SCHEMA evil"),
    ("create_role", "CREATE ROLE evil SUPERUSER LOGIN"),
    ("create_user", "CREATE USER evil WITH PASSWORD 'x'"),
    ("create_extension", "CREATE EXTENSION IF NOT EXISTS dblink"),
    ("create_sequence", "CREATE SEQUENCE public.evil_seq"),
    (
        "create_trigger",
        "CREATE TRIGGER evil BEFORE INSERT ON sales.products "
        "FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()",
    ),
    ("create_rule", "CREATE RULE evil AS ON SELECT TO sales.products DO INSTEAD NOTHING"),
    ("create_policy", "CREATE POLICY evil ON sales.products USING (false)"),
    ("create_type", "CREATE TYPE public.evil AS (a int)"),
    ("create_domain", "CREATE DOMAIN public.evil AS int"),
    ("create_cast", "CREATE CAST (text AS int) WITH INOUT AS IMPLICIT"),
    ("create_operator", "CREATE OPERATOR public.+++ (FUNCTION = int4pl, LEFTARG = int, RIGHTARG = int)"),
    ("create_aggregate", "CREATE AGGREGATE public.evil (int) (SFUNC = int4pl, STYPE = int)"),
    ("create_database", "CREATE DATABASE evil"),
    ("create_tablespace", "CREATE TABLESPACE evil LOCATION '/tmp'"),
    ("create_server", "CREATE SERVER evil FOREIGN DATA WRAPPER dblink_fdw"),
    ("create_fdw", "CREATE FOREIGN DATA WRAPPER evil"),
    ("create_publication", "CREATE PUBLICATION evil FOR ALL TABLES"),
    ("create_subscription", "CREATE SUBSCRIPTION evil CONNECTION 'dbname=demo' PUBLICATION p"),
    ("create_event_trigger", "CREATE EVENT TRIGGER evil ON ddl_command_start EXECUTE FUNCTION evil()"),
    ("alter_table_add", "ALTER TABLE sales.products ADD COLUMN evil int"),
    ("alter_table_drop", "ALTER TABLE sales.products DROP COLUMN name"),
    ("alter_table_rename", "ALTER TABLE sales.products RENAME TO evil"),
    ("alter_table_owner", "ALTER TABLE sales.products OWNER TO mcp_reader"),
    ("alter_role_superuser", "ALTER ROLE mcp_reader SUPERUSER"),
    ("alter_role_set", "ALTER ROLE mcp_reader SET default_transaction_read_only = off"),
    ("alter_user_password", "ALTER USER postgres PASSWORD 'owned'"),
    ("alter_system", "ALTER SYSTEM SET log_statement = 'none'"),
    ("alter_system_reset", "ALTER SYSTEM RESET ALL"),
    ("alter_database", "ALTER DATABASE demo SET default_transaction_read_only = off"),
    ("alter_default_privileges", "ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO PUBLIC"),
    ("alter_sequence", "ALTER SEQUENCE sales.customers_id_seq RESTART WITH 1"),
    ("alter_function", "ALTER FUNCTION pg_sleep(float8) OWNER TO mcp_reader"),
    ("alter_schema", "ALTER SCHEMA sales RENAME TO evil"),
    ("alter_view", "ALTER VIEW sales.customer_order_summary RENAME TO evil"),
    ("alter_materialized_view", "ALTER MATERIALIZED VIEW analytics.daily_revenue RENAME TO evil"),
    ("alter_type", "ALTER TYPE sales.order_status ADD VALUE 'evil'"),
    ("drop_table", "DROP TABLE sales.products"),
    ("drop_table_if_exists", "DROP TABLE IF EXISTS sales.order_items CASCADE"),
    ("drop_schema", "DROP SCHEMA sales CASCADE"),
    ("drop_database", "DROP DATABASE demo"),
    ("drop_role", "DROP ROLE mcp_reader"),
    ("drop_view", "DROP VIEW sales.customer_order_summary"),
    ("drop_index", "DROP INDEX sales.orders_customer_id_idx"),
    ("drop_function", "DROP FUNCTION pg_sleep(float8)"),
    ("drop_type", "DROP TYPE sales.order_status CASCADE"),
    ("drop_owned", "DROP OWNED BY mcp_reader"),
    ("reassign_owned", "REASSIGN OWNED BY postgres TO mcp_reader"),
    ("grant_all", "GRANT ALL ON ALL TABLES IN SCHEMA sales TO PUBLIC"),
    ("grant_role", "GRANT pg_read_server_files TO mcp_reader"),
    ("grant_execute", "GRANT EXECUTE ON FUNCTION pg_read_file(text) TO mcp_reader"),
    ("revoke", "REVOKE SELECT ON sales.products FROM mcp_reader"),
    ("comment_on", "COMMENT ON TABLE sales.products IS 'owned'"),
    ("comment_on_column", "COMMENT ON COLUMN sales.products.price IS NULL"),
    ("copy_to_file", f"COPY sales.products TO '{ATTACK_FILES}copy'"),
    ("copy_query_to_file", f"COPY (SELECT * FROM hr.employees) TO '{ATTACK_FILES}copy_query'"),
    ("copy_to_program", f"COPY (SELECT 1) TO PROGRAM 'touch {ATTACK_FILES}program'"),
    ("copy_from_file", "COPY sales.products FROM '/etc/passwd'"),
    ("copy_from_program", f"COPY hr.departments FROM PROGRAM 'touch {ATTACK_FILES}from_program'"),
    ("copy_from_stdin", "COPY sales.products FROM STDIN"),
    ("copy_to_stdout", "COPY sales.customers TO STDOUT"),
    ("vacuum", "VACUUM"),
    ("vacuum_full", "VACUUM FULL sales.products"),
    ("vacuum_analyze", "VACUUM (VERBOSE, ANALYZE) sales.products"),
    ("analyze", "ANALYZE"),
    ("analyze_table", "ANALYZE sales.products"),
    ("cluster", "CLUSTER sales.products USING products_pkey"),
    ("reindex_table", "REINDEX TABLE sales.products"),
    ("reindex_database", "REINDEX DATABASE demo"),
    ("lock_table", "LOCK TABLE sales.products IN ACCESS EXCLUSIVE MODE"),
    ("lock_table_share", "LOCK sales.orders IN SHARE MODE NOWAIT"),
    ("listen", f"LISTEN {VICTIM_CHANNEL}"),
    ("notify", f"NOTIFY {VICTIM_CHANNEL}, 'owned'"),
    ("unlisten", "UNLISTEN *"),
    ("prepare", "PREPARE evil AS DELETE FROM sales.products"),
    ("prepare_select", "PREPARE evil AS SELECT 1"),
    ("execute", "EXECUTE evil"),
    ("deallocate", "DEALLOCATE ALL"),
    ("declare_cursor", "DECLARE c CURSOR WITH HOLD FOR SELECT * FROM sales.products"),
    ("declare_cursor_for_update", "DECLARE c CURSOR FOR SELECT * FROM sales.products FOR UPDATE"),
    ("fetch", "FETCH ALL FROM c"),
    ("fetch_forward", "FETCH FORWARD 5 c"),
    ("move", "MOVE NEXT IN c"),
    ("close", "CLOSE ALL"),
    ("do_block", "DO $$ BEGIN DELETE FROM sales.products; END $$"),
    ("do_language", "DO LANGUAGE plpgsql $x$ BEGIN PERFORM pg_sleep(5); END $x$"),
    ("call", "CALL public.evil()"),
    ("set", "SET default_transaction_read_only = off"),
    ("set_session", "SET SESSION statement_timeout = 0"),
    ("set_local", "SET LOCAL statement_timeout = 0"),
    ("set_to_default", "SET search_path TO DEFAULT"),
    ("set_search_path", "SET search_path = pg_temp, public"),
    ("set_role", "SET ROLE postgres"),
    ("set_role_none", "SET ROLE NONE"),
    ("set_session_authorization", "SET SESSION AUTHORIZATION postgres"),
    ("set_transaction_read_write", "SET TRANSACTION READ WRITE"),
    ("set_session_characteristics", "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE"),
    ("set_time_zone", "SET TIME ZONE 'UTC'"),
    ("set_constraints", "SET CONSTRAINTS ALL DEFERRED"),
    ("reset", "RESET statement_timeout"),
    ("reset_all", "RESET ALL"),
    ("reset_role", "RESET ROLE"),
    ("begin", "BEGIN"),
    ("begin_read_write", "BEGIN READ WRITE"),
    ("start_transaction", "START TRANSACTION READ WRITE"),
    ("commit", "COMMIT"),
    ("commit_and_chain", "COMMIT AND CHAIN"),
    ("end", "END"),
    ("rollback", "ROLLBACK"),
    ("abort", "ABORT"),
    ("savepoint", "SAVEPOINT s"),
    ("release_savepoint", "RELEASE SAVEPOINT s"),
    ("rollback_to_savepoint", "ROLLBACK TO SAVEPOINT s"),
    ("prepare_transaction", "PREPARE TRANSACTION 'evil'"),
    ("commit_prepared", "COMMIT PREPARED 'evil'"),
    ("rollback_prepared", "ROLLBACK PREPARED 'evil'"),
    ("checkpoint", "CHECKPOINT"),
    ("discard_all", "DISCARD ALL"),
    ("discard_temp", "DISCARD TEMP"),
    ("load", "LOAD 'plpgsql'"),
    ("refresh_materialized_view", "REFRESH MATERIALIZED VIEW analytics.daily_revenue"),
    ("refresh_concurrently", "REFRESH MATERIALIZED VIEW CONCURRENTLY analytics.daily_revenue"),
    ("refresh_with_no_data", "REFRESH MATERIALIZED VIEW analytics.daily_revenue WITH NO DATA"),
    (
        "security_label",
        "SECURITY LABEL FOR selinux ON TABLE sales.products IS 'system_u:object_r:sepgsql_table_t:s0'",
    ),
    ("import_foreign_schema", "IMPORT FOREIGN SCHEMA public FROM SERVER evil INTO public"),
    ("explain_analyze_delete", "EXPLAIN ANALYZE DELETE FROM sales.products"),
    ("explain_analyze_options", "EXPLAIN (ANALYZE, BUFFERS) UPDATE sales.products SET price = 0"),
    ("explain_analyze_insert", "EXPLAIN ANALYZE INSERT INTO hr.departments VALUES (99, 'x', 1)"),
    ("explain_delete", "EXPLAIN DELETE FROM sales.products"),
    (
        "explain_analyze_cte_delete",
        "EXPLAIN ANALYZE WITH d AS (DELETE FROM sales.products RETURNING 1) SELECT * FROM d",
    ),
    ("explain_analyze_select", "EXPLAIN ANALYZE SELECT pg_sleep(5)"),
    ("show", "SHOW ALL"),
    ("values_into_nothing", "TRUNCATE ONLY hr.departments RESTART IDENTITY"),
    ("create_table_lower", "create table evil (id int)"),
    ("mixed_case_drop", "DrOp TaBlE sales.products"),
]

WRITABLE_CTES: list[Case] = [
    ("delete", "WITH d AS (DELETE FROM sales.products RETURNING *) SELECT count(*) FROM d"),
    ("update", "WITH u AS (UPDATE sales.products SET price = 0 RETURNING id) SELECT * FROM u"),
    ("insert", "WITH i AS (INSERT INTO hr.departments VALUES (99, 'x', 1) RETURNING id) SELECT * FROM i"),
    (
        "merge",
        "WITH m AS (MERGE INTO hr.departments d USING (SELECT 1 AS id) s ON d.id = s.id "
        "WHEN MATCHED THEN DELETE RETURNING d.id) SELECT * FROM m",
    ),
    ("unreferenced", "WITH d AS (DELETE FROM sales.products) SELECT 1"),
    ("second_cte", "WITH a AS (SELECT 1), d AS (DELETE FROM sales.products RETURNING 1) SELECT * FROM a"),
    (
        "nested",
        "WITH a AS (WITH b AS (DELETE FROM sales.products RETURNING 1) SELECT * FROM b) SELECT * FROM a",
    ),
    (
        "in_from_subquery",
        "SELECT * FROM (WITH d AS (DELETE FROM sales.products RETURNING 1) SELECT * FROM d) s",
    ),
    (
        "in_scalar_subquery",
        "SELECT (WITH d AS (UPDATE hr.employees SET salary = 0 RETURNING 1) SELECT count(*) FROM d)",
    ),
    (
        "recursive",
        "WITH RECURSIVE d AS (DELETE FROM sales.products RETURNING id), "
        "r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r, d",
    ),
    ("materialized", "WITH d AS MATERIALIZED (DELETE FROM sales.products RETURNING id) SELECT * FROM d"),
    (
        "not_materialized",
        "WITH d AS NOT MATERIALIZED (DELETE FROM sales.products RETURNING id) SELECT * FROM d",
    ),
    (
        "in_union_branch",
        "SELECT 1 UNION ALL (WITH d AS (DELETE FROM sales.products RETURNING 1) SELECT * FROM d)",
    ),
    ("parenthesised", "(WITH d AS (DELETE FROM sales.products RETURNING 1) SELECT * FROM d)"),
    ("in_exists", "SELECT EXISTS (WITH d AS (DELETE FROM sales.products RETURNING 1) SELECT 1 FROM d)"),
    (
        "insert_select_cte",
        "WITH i AS (INSERT INTO hr.departments SELECT 99, 'x', 1 RETURNING *) "
        "SELECT * FROM i JOIN hr.departments USING (id)",
    ),
    ("delete_with_limit_word", "WITH x AS (DELETE FROM sales.products RETURNING 1) SELECT * FROM x LIMIT 1"),
    (
        "lateral",
        "SELECT * FROM hr.departments, LATERAL (WITH d AS (DELETE FROM hr.employees RETURNING 1) "
        "SELECT * FROM d) x",
    ),
]

INTO_AND_LOCKS: list[Case] = [
    ("select_into", "SELECT * INTO public.evil FROM sales.products"),
    ("select_into_temp", "SELECT 1 AS x INTO TEMP evil"),
    ("select_into_temporary", "SELECT 1 AS x INTO TEMPORARY TABLE evil"),
    ("select_into_unlogged", "SELECT 1 AS x INTO UNLOGGED evil"),
    ("select_into_table", "SELECT * INTO TABLE evil FROM hr.departments"),
    ("select_into_after_where", "SELECT id INTO evil FROM hr.departments WHERE id > 1"),
    ("for_update", "SELECT * FROM sales.products FOR UPDATE"),
    ("for_no_key_update", "SELECT * FROM sales.products FOR NO KEY UPDATE"),
    ("for_share", "SELECT * FROM sales.products FOR SHARE"),
    ("for_key_share", "SELECT * FROM sales.products FOR KEY SHARE"),
    ("for_update_nowait", "SELECT * FROM sales.products FOR UPDATE NOWAIT"),
    ("for_update_skip_locked", "SELECT * FROM sales.products FOR UPDATE SKIP LOCKED"),
    (
        "for_update_of",
        "SELECT * FROM sales.products p JOIN sales.order_items i ON i.product_id = p.id FOR UPDATE OF p",
    ),
    ("for_update_with_limit", "SELECT * FROM sales.products ORDER BY id LIMIT 1 FOR UPDATE"),
    ("lock_in_subquery", "SELECT * FROM (SELECT * FROM sales.products FOR UPDATE) s"),
    ("lock_in_cte", "WITH l AS (SELECT * FROM sales.products FOR UPDATE) SELECT 1"),
    ("lock_in_exists", "SELECT EXISTS (SELECT 1 FROM sales.products FOR SHARE)"),
    ("lock_in_scalar", "SELECT (SELECT id FROM sales.products LIMIT 1 FOR KEY SHARE)"),
    ("lock_in_where_in", "SELECT 1 WHERE 1 IN (SELECT id FROM sales.products FOR UPDATE)"),
    (
        "lock_in_lateral",
        "SELECT * FROM hr.departments d, LATERAL (SELECT * FROM hr.employees e "
        "WHERE e.department_id = d.id FOR NO KEY UPDATE) x",
    ),
    ("lock_in_union_branch", "SELECT 1 UNION ALL (SELECT id FROM sales.products FOR UPDATE)"),
    (
        "lock_three_deep",
        "SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM sales.products FOR UPDATE) a) b) c",
    ),
    (
        "lock_in_recursive_cte",
        "WITH RECURSIVE r AS (SELECT id FROM sales.products FOR UPDATE) SELECT * FROM r",
    ),
    ("lock_in_parenthesised", "(SELECT * FROM sales.products FOR SHARE)"),
]

#: Dangerous functions, by name, called with plausible arguments. `{p}` is where a spelling goes.
FUNCTIONS: dict[str, str] = {
    "pg_sleep": "{p}(5)",
    "pg_sleep_for": "{p}('5 seconds')",
    "pg_sleep_until": "{p}(now() + interval '5 seconds')",
    "pg_terminate_backend": "{p}(" + VICTIM_PID + ")",
    "pg_cancel_backend": "{p}(" + VICTIM_PID + ")",
    "pg_reload_conf": "{p}()",
    "pg_rotate_logfile": "{p}()",
    "set_config": "{p}('default_transaction_read_only', 'off', false)",
    "setseed": "{p}(0.5)",
    "nextval": "{p}('sales.customers_id_seq')",
    "setval": "{p}('sales.customers_id_seq', 1)",
    "lo_import": "{p}('/etc/passwd')",
    "lo_export": "{p}(1, '" + ATTACK_FILES + "lo_export')",
    "lo_create": "{p}(0)",
    "lo_creat": "{p}(-1)",
    "lo_unlink": "{p}(1)",
    "lo_put": "{p}(1, 0, '\\x00')",
    "lo_from_bytea": "{p}(0, '\\x00')",
    "lo_get": "{p}(1)",
    "lo_open": "{p}(1, 131072)",
    "lo_truncate": "{p}(0, 0)",
    "loread": "{p}(0, 10)",
    "lowrite": "{p}(0, '\\x00')",
    "pg_read_file": "{p}('/etc/passwd')",
    "pg_read_binary_file": "{p}('/etc/passwd')",
    "pg_ls_dir": "{p}('.')",
    "pg_stat_file": "{p}('postgresql.conf')",
    "pg_ls_logdir": "{p}()",
    "pg_ls_waldir": "{p}()",
    "pg_ls_tmpdir": "{p}()",
    "pg_ls_archive_statusdir": "{p}()",
    "pg_file_write": "{p}('" + ATTACK_FILES + "file_write', 'x', false)",
    "query_to_xml": "{p}('DELETE FROM sales.products RETURNING 1', true, false, '')",
    "query_to_xmlschema": "{p}('SELECT 1', true, false, '')",
    "query_to_xml_and_xmlschema": "{p}('SELECT 1', true, false, '')",
    "table_to_xml": "{p}('sales.products', true, false, '')",
    "cursor_to_xml": "{p}('c', 1, true, false, '')",
    "database_to_xml": "{p}(true, false, '')",
    "schema_to_xml": "{p}('sales', true, false, '')",
    "ts_stat": "{p}('SELECT to_tsvector(name) FROM sales.products')",
    "ts_rewrite": "{p}('a'::tsquery, 'SELECT ''a''::tsquery, ''b''::tsquery')",
    "dblink": "{p}('dbname=demo', 'DELETE FROM sales.products')",
    "dblink_exec": "{p}('dbname=demo', 'DROP TABLE sales.products')",
    "dblink_connect": "{p}('evil', 'dbname=demo')",
    "pg_advisory_lock": "{p}(1)",
    "pg_advisory_lock_2": "{p}(1, 2)",
    "pg_advisory_lock_shared": "{p}(1)",
    "pg_try_advisory_lock": "{p}(1)",
    "pg_try_advisory_lock_shared": "{p}(1)",
    "pg_advisory_xact_lock": "{p}(1)",
    "pg_advisory_xact_lock_shared": "{p}(1)",
    "pg_try_advisory_xact_lock": "{p}(1)",
    "pg_try_advisory_xact_lock_shared": "{p}(1)",
    "pg_advisory_unlock": "{p}(1)",
    "pg_advisory_unlock_shared": "{p}(1)",
    "pg_advisory_unlock_all": "{p}()",
    "pg_notify": "{p}('" + VICTIM_CHANNEL + "', 'owned')",
    "pg_logical_emit_message": "{p}(true, 'evil', 'owned')",
    "txid_current": "{p}()",
    "txid_current_if_assigned": "{p}()",
    "pg_current_xact_id": "{p}()",
    "pg_current_xact_id_if_assigned": "{p}()",
    "pg_create_physical_replication_slot": "{p}('evil')",
    "pg_create_logical_replication_slot": "{p}('evil', 'pgoutput')",
    "pg_drop_replication_slot": "{p}('evil')",
    "pg_replication_slot_advance": "{p}('evil', '0/0')",
    "pg_copy_physical_replication_slot": "{p}('a', 'b')",
    "pg_logical_slot_get_changes": "{p}('evil', NULL, NULL)",
    "pg_replication_origin_create": "{p}('evil')",
    "pg_stat_reset": "{p}()",
    "pg_stat_reset_shared": "{p}('bgwriter')",
    "pg_stat_reset_single_table_counters": "{p}('sales.products'::regclass)",
    "pg_stat_reset_slru": "{p}(NULL)",
    "pg_stat_reset_replication_slot": "{p}(NULL)",
    "pg_switch_wal": "{p}()",
    "pg_promote": "{p}()",
    "pg_backup_start": "{p}('evil')",
    "pg_create_restore_point": "{p}('evil')",
    "pg_log_backend_memory_contexts": "{p}(pg_backend_pid())",
    "pg_import_system_collations": "{p}('pg_catalog')",
    "pg_export_snapshot": "{p}()",
    "pg_wal_replay_pause": "{p}()",
}

SPELLINGS: dict[str, str] = {
    "plain": "{name}",
    "upper": "{NAME}",
    "quoted": '"{name}"',
    "uescape": 'U&"\\{first:04x}{rest}"',
    "pg_catalog": "pg_catalog.{name}",
    "quoted_pg_catalog": '"pg_catalog"."{name}"',
    "upper_pg_catalog": "PG_CATALOG.{NAME}",
    "public": "public.{name}",
    "spaced": "pg_catalog . /* x */ {name} ",
}


def spell(name: str, spelling: str) -> str:
    """`name` written in one of the spellings PostgreSQL resolves to the same function."""
    return SPELLINGS[spelling].format(name=name, NAME=name.upper(), first=ord(name[0]), rest=name[1:])


def call(family: str, spelling: str = "plain") -> str:
    name = family.removesuffix("_2")
    return FUNCTIONS[family].format(p=spell(name, spelling))


#: Where a call can hide in a read; `{f}` is the call.
POSITIONS: dict[str, str] = {
    "select_list": "SELECT {f}",
    "from": "SELECT * FROM {f}",
    "from_alias": "SELECT x FROM {f} AS x",
    "rows_from": "SELECT * FROM ROWS FROM ({f}) AS x",
    "lateral": "SELECT * FROM hr.departments d, LATERAL {f} AS x",
    "lateral_subquery": "SELECT * FROM hr.departments d, LATERAL (SELECT {f}) AS x",
    "join_on": "SELECT 1 FROM hr.departments a JOIN hr.departments b ON {f} IS NOT NULL",
    "where": "SELECT 1 FROM hr.departments WHERE {f} IS NOT NULL",
    "group_by": "SELECT count(*) FROM hr.departments GROUP BY {f}",
    "having": "SELECT count(*) FROM hr.departments HAVING count(*) > 0 AND {f} IS NOT NULL",
    "order_by": "SELECT id FROM hr.departments ORDER BY {f}",
    "limit": "SELECT id FROM hr.departments LIMIT ({f} IS NULL)::int",
    "offset": "SELECT id FROM hr.departments OFFSET ({f} IS NULL)::int",
    "cte": "WITH c AS (SELECT {f} AS v) SELECT * FROM c",
    "recursive_cte": "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE {f} IS NULL AND n < 3) "
    "SELECT * FROM r",
    "subquery": "SELECT * FROM (SELECT {f} AS v) AS s",
    "scalar_subquery": "SELECT (SELECT {f})",
    "exists": "SELECT EXISTS (SELECT {f})",
    "in_subquery": "SELECT 1 WHERE 1 IN (SELECT 1 FROM {f})",
    "window_order_by": "SELECT row_number() OVER (ORDER BY {f}) FROM hr.departments",
    "window_partition_by": "SELECT count(*) OVER (PARTITION BY {f}) FROM hr.departments",
    "aggregate_filter": "SELECT count(*) FILTER (WHERE {f} IS NOT NULL) FROM hr.departments",
    "aggregate_order_by": "SELECT string_agg(name, ',' ORDER BY {f}) FROM hr.departments",
    "within_group": "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY length({f}::text)) FROM hr.departments",
    "distinct_on": "SELECT DISTINCT ON ({f}) id FROM hr.departments",
    "case": "SELECT CASE WHEN id = 1 THEN {f} END FROM hr.departments",
    "case_condition": "SELECT CASE WHEN {f} IS NULL THEN 1 END",
    "cast": "SELECT CAST({f} AS text)",
    "cast_operator": "SELECT {f}::text",
    "values": "VALUES ({f})",
    "values_in_from": "SELECT * FROM (VALUES (1), ({f})) AS v(x)",
    "function_argument": "SELECT coalesce(NULL, length({f}::text))",
    "nested_function_argument": "SELECT upper(lower(concat('a', {f})))",
    "json_argument": "SELECT jsonb_build_object('k', {f})",
    "array_constructor": "SELECT ARRAY[{f}]",
    "array_subscript": "SELECT (ARRAY[1, 2])[length({f}::text)]",
    "row_constructor": "SELECT ROW({f}, 1)",
    "any_array": "SELECT 1 WHERE 1 = ANY (ARRAY[length({f}::text)])",
    "union_branch": "SELECT NULL UNION ALL SELECT {f}",
    "except_branch": "SELECT 1 EXCEPT SELECT length({f}::text)",
    "tablesample_repeatable": "SELECT * FROM hr.departments TABLESAMPLE SYSTEM (10) REPEATABLE (length({f}::text))",
    "generate_series_bound": "SELECT * FROM generate_series(1, length({f}::text))",
    "string_concat": "SELECT 'a' || {f}",
    "parenthesised_query": "(SELECT {f})",
}


def _function_cases() -> list[Case]:
    """Every family in every spelling (select list), then every position in every spelling."""
    cases = [
        (f"{family}.{spelling}", f"SELECT {call(family, spelling)}")
        for family in FUNCTIONS
        for spelling in SPELLINGS
    ]
    families = list(FUNCTIONS)
    for index, (position, template) in enumerate(POSITIONS.items()):
        for offset, spelling in enumerate(SPELLINGS):
            family = families[(index * len(SPELLINGS) + offset) % len(families)]
            cases.append((f"{position}.{spelling}.{family}", template.format(f=call(family, spelling))))
    return cases


KNOWN_BYPASSES: list[Case] = [
    ("reference_server_commit", "SELECT 1; COMMIT; DROP SCHEMA public CASCADE;"),
    ("postgres_mcp_pro_read_file_in_from", "SELECT * FROM pg_read_file('/etc/passwd')"),
    ("postgres_mcp_pro_qualified", "SELECT * FROM pg_catalog.pg_read_file('/etc/passwd', 0, 100)"),
    ("dbhub_writable_cte", "WITH d AS (DELETE FROM sales.products RETURNING *) SELECT * FROM d"),
    ("dbhub_read_file_plain_select", "SELECT pg_read_file('/etc/passwd')"),
    ("pgedge_limit_alias_then_delete", "SELECT 1 AS limit_; DELETE FROM sales.products"),
    (
        "pgedge_cte_delete_with_limit",
        "WITH x AS (DELETE FROM sales.products RETURNING 1) SELECT * FROM x LIMIT 1",
    ),
    ("pgedge_limit_then_delete", "SELECT * FROM sales.products LIMIT 1; DELETE FROM sales.products"),
    ("pgedge_limit_in_comment", "-- limit 1\nDELETE FROM sales.products"),
    ("pgedge_limit_in_string", "SELECT 'limit'; DELETE FROM sales.products"),
]

DYNAMIC_SQL: list[Case] = [
    ("query_to_xml_delete", "SELECT query_to_xml('DELETE FROM sales.products RETURNING 1', true, false, '')"),
    ("query_to_xml_select", "SELECT query_to_xml('SELECT 1', true, false, '')"),
    ("query_to_xml_in_from", "SELECT * FROM query_to_xml('SELECT pg_sleep(5)', true, false, '') AS x"),
    (
        "xpath_over_query_to_xml",
        "SELECT xpath('/row/x/text()', query_to_xml('SELECT nextval(''sales.customers_id_seq'') "
        "AS x', false, false, ''))",
    ),
    (
        "xmltable_over_query_to_xml",
        "SELECT * FROM XMLTABLE('/row' PASSING query_to_xml('SELECT 1 AS a', false, false, '') "
        "COLUMNS a int)",
    ),
    ("table_to_xml", "SELECT table_to_xml('hr.employees', true, false, '')"),
    ("table_to_xmlschema", "SELECT table_to_xmlschema('hr.employees', true, false, '')"),
    ("cursor_to_xml", "SELECT cursor_to_xml('c'::refcursor, 10, false, false, '')"),
    ("database_to_xml", "SELECT database_to_xml(true, false, '')"),
    ("database_to_xmlschema", "SELECT database_to_xmlschema(true, false, '')"),
    ("schema_to_xml", "SELECT schema_to_xml('sales', true, false, '')"),
    ("ts_stat", "SELECT * FROM ts_stat('SELECT to_tsvector(name) FROM sales.products')"),
    ("ts_stat_side_effect", "SELECT * FROM ts_stat('SELECT to_tsvector(pg_sleep(5)::text)')"),
    ("ts_rewrite_query", "SELECT ts_rewrite('a'::tsquery, 'SELECT ''a''::tsquery, ''b''::tsquery')"),
    ("dblink", "SELECT * FROM dblink('dbname=demo', 'SELECT 1') AS t(x int)"),
    ("dblink_exec", "SELECT dblink_exec('dbname=demo', 'DROP TABLE sales.products')"),
    ("dblink_qualified", "SELECT public.dblink('dbname=demo', 'DELETE FROM sales.products')"),
    ("xml_in_cte", "WITH x AS (SELECT query_to_xml('SELECT 1', true, false, '') AS doc) SELECT * FROM x"),
]

RESOURCES: list[Case] = [
    ("pg_sleep", "SELECT pg_sleep(60)"),
    ("pg_sleep_for", "SELECT pg_sleep_for('1 hour')"),
    ("pg_sleep_until", "SELECT pg_sleep_until('infinity')"),
    ("pg_sleep_in_where", "SELECT * FROM sales.order_items WHERE pg_sleep(0.01) IS NOT NULL"),
    ("pg_sleep_float", "SELECT pg_sleep(1e9::float8)"),
    ("deeply_nested_parentheses", "SELECT " + "(" * 5000 + "1" + ")" * 5000),
    ("deeply_nested_brackets", "SELECT " + "ARRAY[" * 500 + "1" + "]" * 500),
    ("deeply_nested_subqueries", "SELECT * FROM " + "(SELECT * FROM " * 150 + "hr.departments" + ") s" * 150),
    ("deeply_nested_case", "SELECT " + "CASE WHEN true THEN " * 3000 + "1" + " END" * 3000),
    ("unbalanced_nesting", "SELECT " + "(" * 100_00),
    ("subscript_chain", "SELECT (ARRAY[1])" + "[1]" * 200),
    ("too_long", "SELECT " + "1 + " * 25_000 + "1"),
    ("too_long_comment", "SELECT 1 -- " + "x" * 100_000),
    ("nul_byte", "SELECT 1\x00; DROP TABLE sales.products"),
    ("nul_in_string", "SELECT 'a\x00b'"),
    ("nul_only", "\x00"),
    ("escape_sequence", "\x1b[2JSELECT 1"),
    ("bell", "SELECT 1\x07"),
    ("vertical_tab", "SELECT\x0b1"),
    ("form_feed", "SELECT\x0c1"),
    ("backspace", "SELECT 1\x08; DROP TABLE sales.products"),
    ("empty", ""),
    ("whitespace", "   \n\t "),
    ("only_comment", "-- nothing here"),
    ("only_block_comment", "/* SELECT 1 */"),
    ("only_semicolons", ";;;"),
]

LEXICAL: list[Case] = [
    ("block_comment_then_drop", "SELECT 1 /* */; DROP TABLE sales.products"),
    ("semicolon_in_comment_then_drop", "SELECT 1 /* ; */; DROP TABLE sales.products"),
    ("line_comment_newline_semicolon", "SELECT 1 -- comment\n; DROP TABLE sales.products"),
    ("line_comment_newline_drop", "SELECT 1 --\nDROP TABLE sales.products"),
    ("line_comment_cr_semicolon", "SELECT 1 --x\r; DROP TABLE sales.products"),
    ("line_comment_cr_drop", "SELECT 1 --x\rDROP TABLE sales.products"),
    ("comment_hides_keyword", "/* SELECT */ DELETE FROM sales.products"),
    ("leading_line_comment", "-- harmless\nDELETE FROM sales.products"),
    ("dollar_quote_then_drop", "SELECT $$;$$; DROP TABLE sales.products"),
    ("tagged_dollar_quote_then_delete", "SELECT $tag$;$tag$; DELETE FROM sales.products"),
    ("dollar_inside_tagged", "SELECT $a$ $$ ; $a$; DELETE FROM sales.products"),
    ("dollar_tag_case", "SELECT $A$ $a$ $A$; DELETE FROM sales.products"),
    ("identifier_with_dollars", "SELECT 1 AS a$$; DELETE FROM sales.products; SELECT 1 AS b$$"),
    ("e_string_escaped_quote", "SELECT E'\\';'; DROP TABLE sales.products"),
    ("e_string_lower", "SELECT e'\\\\'; DROP TABLE sales.products"),
    ("standard_string_backslash", "SELECT '\\'; DROP TABLE sales.products"),
    ("doubled_quote", "SELECT 'a'''; DROP TABLE sales.products"),
    ("quoted_identifier_semicolon", 'SELECT "a;"; DROP TABLE sales.products'),
    ("quoted_identifier_doubled_quote", 'SELECT 1 AS "x"""; DELETE FROM sales.products; --"'),
    ("nested_block_comment", "SELECT 1 /* outer /* inner */ still comment */; DELETE FROM sales.products"),
    ("nested_comment_quote", "SELECT 1 /* /* */ ' */ ; DELETE FROM sales.products; -- '"),
    ("unclosed_nested_comment", "SELECT 1 /* a /* b */ ; DELETE FROM sales.products; /* c */"),
    ("unclosed_string", "SELECT 'abc; DELETE FROM sales.products"),
    ("unclosed_quoted_identifier", 'SELECT "abc; DELETE FROM sales.products'),
    ("unclosed_dollar_quote", "SELECT $x$ abc; DELETE FROM sales.products"),
    ("u_string_escaped_quote", "SELECT U&'\\0027'; DROP TABLE sales.products"),
    ("u_identifier_function", "SELECT U&\"\\0070g_read_file\"('/etc/passwd')"),
    ("u_identifier_uescape", "SELECT U&\"!0070g_sleep\" UESCAPE '!' (5)"),
    ("u_identifier_plus_escape", 'SELECT U&"\\+000070g_sleep"(5)'),
    ("u_identifier_schema", 'SELECT U&"pg_c\\0061talog".pg_sleep(5)'),
    ("psql_backslash_semicolon", "SELECT 1 \\; DROP TABLE sales.products"),
    ("psql_meta_command", "\\! touch " + ATTACK_FILES + "psql"),
    ("psql_gexec", "SELECT 'DROP TABLE sales.products' \\gexec"),
    ("comment_between_name_and_paren", "SELECT pg_sleep/**/(5)"),
    ("newline_between_name_and_paren", "SELECT pg_read_file\n('/etc/passwd')"),
    (
        "named_arguments",
        "SELECT set_config(setting_name => 'statement_timeout', new_value => '0', is_local => false)",
    ),
    ("operator_comment_then_drop", "SELECT 1 *--;\n2; DROP TABLE sales.products"),
    ("string_continuation", "SELECT 'a'\n'b'; DELETE FROM sales.products"),
    ("bom_then_stacked", "\ufeffSELECT 1; DROP TABLE sales.products"),
]

#: PostgreSQL reads `(expr).f` as `f(expr)` and `alias.f` as `f(alias)` when no such field exists;
#: sqlglot sees a field. Keyword-named calls and no-break spaces before `$$` also parse differently.
FIELD_SELECTION_AND_KEYWORDS: list[Case] = [
    ("field_sleep", "SELECT (5).pg_sleep"),
    ("field_sleep_quoted", 'SELECT (5)."pg_sleep"'),
    ("field_sleep_unicode_name", 'SELECT (5).U&"pg_sleep"'),
    ("field_sleep_unicode_escape", 'SELECT (5).U&"pg_sl\\0065ep"'),
    ("field_sleep_in_where", "SELECT 1 WHERE (5).pg_sleep IS NULL"),
    ("field_sleep_on_column", "SELECT (x).pg_sleep FROM (VALUES (5)) AS v(x)"),
    ("field_sleep_on_cast", "SELECT (5::float8).pg_sleep"),
    ("field_read_file", "SELECT ('/etc/passwd').pg_read_file"),
    ("field_ls_dir", "SELECT ('.').pg_ls_dir"),
    ("field_advisory_lock", "SELECT (42::bigint).pg_advisory_lock"),
    ("field_cancel_self", "SELECT (pg_backend_pid()).pg_cancel_backend"),
    ("field_terminate_self", "SELECT (pg_backend_pid()).pg_terminate_backend"),
    ("field_terminate_victim", f"SELECT ({VICTIM_PID}).pg_terminate_backend"),
    ("field_ts_stat_runs_sql", "SELECT ('SELECT to_tsvector(pg_read_file(''/etc/passwd''))').ts_stat"),
    ("field_nextval", "SELECT ('sales.products_id_seq'::regclass).nextval"),
    ("field_setseed", "SELECT (0.5).setseed"),
    ("field_lo_import", f"SELECT ('{ATTACK_FILES}lo').lo_import"),
    ("field_in_order_by", "SELECT id FROM sales.products ORDER BY (1).pg_sleep LIMIT 1"),
    ("keyword_function_in_from", "SELECT * FROM cube(1)"),
    ("keyword_update_in_from", "SELECT * FROM update(1, 'x')"),
    ("keyword_tablesample_call", "SELECT tablesample(1)"),
    ("keyword_lateral_call", "SELECT lateral('a', 'b')"),
    ("tablesample_extension_method", "SELECT * FROM sales.products TABLESAMPLE system_time(100000)"),
    (
        "no_break_space_hides_sleep",
        'WITH q("interval\u00a0$$") AS (SELECT 1) SELECT interval\u00a0$$, pg_sleep(5) AS b\u00a0$$ FROM q',
    ),
    (
        "no_break_space_hides_query_to_xml",
        'WITH q("interval\u00a0$$") AS (SELECT 1) '
        "SELECT interval\u00a0$$, query_to_xml('DELETE FROM sales.products RETURNING 1', true, false, '') "
        "AS b\u00a0$$ FROM q",
    ),
    (
        "ideographic_space_before_dollar",
        'SELECT x\u3000$$, pg_sleep(5) AS y\u3000$$ FROM (SELECT 1 AS "x\u3000$$") q',
    ),
]

#: Operators that are not built in run a function the guard cannot check by name.
OPERATORS: list[Case] = [
    ("qualified_user_schema", "SELECT 1 OPERATOR(public.===) 1"),
    ("qualified_quoted_schema", 'SELECT 1 OPERATOR("public".+) 1'),
    ("qualified_overload_of_builtin", "SELECT 1 OPERATOR(sales.<) 2"),
    ("qualified_in_where", "SELECT * FROM sales.products WHERE id OPERATOR(public.=) 1"),
    ("qualified_in_order_by", "SELECT * FROM sales.products ORDER BY id USING OPERATOR(public.<)"),
    ("user_symbol", "SELECT 1 === 1"),
    ("user_symbol_in_where", "SELECT * FROM sales.products WHERE name ~~~ 'x'"),
    ("user_symbol_prefix", "SELECT !== 1"),
    ("user_symbol_long", "SELECT 1 <<<>>> 2"),
    ("user_symbol_arrow", "SELECT 1 ==> 2"),
    ("user_symbol_at", "SELECT 'a' @@@@ 'b'"),
    ("user_symbol_in_join", "SELECT 1 FROM sales.orders o JOIN sales.customers c ON o.customer_id =*= c.id"),
    ("user_symbol_in_cte", "WITH x AS (SELECT 1 &&& 2 AS y) SELECT * FROM x"),
    ("pg_catalog_unknown_symbol", "SELECT 1 OPERATOR(pg_catalog.===) 1"),
    ("backtick", "SELECT `x` FROM sales.products"),
    ("glued_sign_after_qualifying_char", "SELECT 1 @- 1"),
]

#: Look-alike semicolons and odd spaces are not statement separators for PostgreSQL either; they
#: must be refused (by the guard or as a syntax error by PostgreSQL) without crashing anything.
LOOKALIKES: list[Case] = [
    ("fullwidth_semicolon", "SELECT 1\uff1bDROP TABLE sales.products"),
    ("greek_question_mark", "SELECT 1\u037eDROP TABLE sales.products"),
    ("small_semicolon", "SELECT 1\ufe54DROP TABLE sales.products"),
    ("reversed_semicolon", "SELECT 1 \u204f DROP TABLE sales.products"),
    ("arabic_semicolon", "SELECT 1\u061bDROP TABLE sales.products"),
    ("zero_width_space", "SELECT\u200b1"),
    ("no_break_space", "SELECT\u00a01; DROP TABLE sales.products"),
    ("no_break_space_only", "SELECT\u00a0pg_sleep(5)"),
    ("right_to_left_override", "SELECT 1 \u202e; tcudorp.selas ELBAT PORD"),
    ("ideographic_space", "DELETE\u3000FROM sales.products"),
]

CATEGORIES: dict[str, list[Case]] = {
    "stacked": STACKED,
    "statements": STATEMENTS,
    "writable_ctes": WRITABLE_CTES,
    "into_and_locks": INTO_AND_LOCKS,
    "functions": _function_cases(),
    "known_bypasses": KNOWN_BYPASSES,
    "dynamic_sql": DYNAMIC_SQL,
    "resources": RESOURCES,
    "lexical": LEXICAL,
    "field_selection_and_keywords": FIELD_SELECTION_AND_KEYWORDS,
    "operators": OPERATORS,
}

#: What the database layer alone is tested against: everything that writes or controls transactions.
DB_LAYER_CORPUS: list[Case] = [
    (f"{name}.{case_id}", sql)
    for name in ("stacked", "statements", "writable_ctes", "into_and_locks", "known_bypasses")
    for case_id, sql in CATEGORIES[name]
    if "pg_read_file" not in sql  # a superuser may read files: that is privilege, not the session layer
]

# ------------------------------------------------------------------------------------- snapshots

BIG_TABLES = {
    "sales.order_items": "count(*), sum(quantity), sum(unit_price), sum(product_id), sum(hashtext(t::text)::bigint)",
    "sales.orders": "count(*), sum(total), sum(hashtext(t::text)::bigint)",
    "analytics.page_views": "count(*), sum(duration_ms), sum(hashtext(t::text)::bigint)",
}
SMALL_TABLES = (
    "sales.products", 'sales."Gift Cards"', "sales.customers", "inventory.warehouses", "inventory.stock_levels",
    "hr.departments", "hr.employees", "analytics.daily_revenue",
)  # fmt: skip
SCHEMA_CHECKSUM = """
SELECT md5(string_agg(x, E'\\n' ORDER BY x)) FROM (
    SELECT format('class|%s|%s|%s|%s|%s|%s', c.oid, c.relname, n.nspname, c.relkind, c.relacl, c.reloptions)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
    UNION ALL SELECT format('att|%s|%s|%s|%s|%s', attrelid, attname, atttypid, attnum, attisdropped)
    FROM pg_attribute WHERE attrelid >= 16384
    UNION ALL SELECT format('proc|%s|%s|%s|%s|%s', oid, proname, pronamespace, proowner, md5(prosrc)) FROM pg_proc
    UNION ALL SELECT format('acl|%s|%s', oid, proacl) FROM pg_proc WHERE proacl IS NOT NULL
    UNION ALL SELECT format('ns|%s|%s|%s', oid, nspname, nspacl) FROM pg_namespace
    UNION ALL SELECT format('type|%s|%s|%s', oid, typname, typnamespace) FROM pg_type WHERE oid >= 16384
    UNION ALL SELECT format('enum|%s|%s|%s', enumtypid, enumlabel, enumsortorder) FROM pg_enum
    UNION ALL SELECT format('desc|%s|%s|%s|%s', objoid, classoid, objsubid, description) FROM pg_description
    UNION ALL SELECT format('trigger|%s|%s', oid, tgname) FROM pg_trigger
    UNION ALL SELECT format('rule|%s|%s', oid, rulename) FROM pg_rewrite WHERE oid >= 16384
    UNION ALL SELECT format('policy|%s', oid) FROM pg_policy
    UNION ALL SELECT format('event_trigger|%s', oid) FROM pg_event_trigger
    UNION ALL SELECT format('extension|%s|%s', extname, extversion) FROM pg_extension
    UNION ALL SELECT format('server|%s', srvname) FROM pg_foreign_server
    UNION ALL SELECT format('fdw|%s', fdwname) FROM pg_foreign_data_wrapper
    UNION ALL SELECT format('publication|%s', pubname) FROM pg_publication
    UNION ALL SELECT format('subscription|%s', subname) FROM pg_subscription
    UNION ALL SELECT format('default_acl|%s', defaclacl) FROM pg_default_acl
    UNION ALL SELECT format('cast|%s', oid) FROM pg_cast WHERE oid >= 16384
    UNION ALL SELECT format('operator|%s', oid) FROM pg_operator WHERE oid >= 16384
    UNION ALL SELECT format('database|%s|%s', datname, datacl) FROM pg_database
    UNION ALL SELECT format('tablespace|%s', spcname) FROM pg_tablespace
    UNION ALL SELECT format('seclabel|%s|%s', objoid, label) FROM pg_seclabel
) AS s(x)
"""
CHECKS: dict[str, str] = {
    "schema": SCHEMA_CHECKSUM,
    "sequences": "SELECT string_agg(format('%s.%s=%s', schemaname, sequencename, last_value), ',' "
    "ORDER BY schemaname, sequencename) FROM pg_sequences",
    "large_objects": "SELECT count(*) FROM pg_largeobject_metadata",
    "roles": "SELECT md5(string_agg(r::text, ',' ORDER BY r.rolname)) FROM pg_roles r",
    "memberships": "SELECT md5(coalesce(string_agg(m::text, ',' ORDER BY m::text), '')) FROM pg_auth_members m",
    "role_settings": "SELECT coalesce(string_agg(s::text, ',' ORDER BY s::text), '') FROM pg_db_role_setting s",
    "config_files": "SELECT md5(string_agg(f::text, ',' ORDER BY f.sourcefile, f.sourceline)) FROM pg_file_settings f",
    "config_loaded": "SELECT pg_conf_load_time()::text",
    "stats_reset": "SELECT format('%s|%s|%s', (SELECT stats_reset FROM pg_stat_database "
    "WHERE datname = current_database()), (SELECT stats_reset FROM pg_stat_bgwriter), "
    "(SELECT stats_reset FROM pg_stat_archiver))",
    "replication_slots": "SELECT count(*) FROM pg_replication_slots",
    "replication_origins": "SELECT count(*) FROM pg_replication_origin",
    "prepared_transactions": "SELECT count(*) FROM pg_prepared_xacts",
    "advisory_locks": "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'",
    "pg_mcp_locks": "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE a.application_name = 'pg-mcp'",
    "pg_mcp_in_transaction": "SELECT count(*) FROM pg_stat_activity "
    "WHERE application_name = 'pg-mcp' AND state <> 'idle'",
    "victim_alive": f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{VICTIM_APP}'",
}
for _table in SMALL_TABLES:
    CHECKS[f"data {_table}"] = f"SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM {_table} t"
BIG_CHECKS = {
    f"data {table}": f"SELECT ({columns})::text FROM {table} t" for table, columns in BIG_TABLES.items()
}
READER_SESSION = (
    "SELECT current_setting('default_transaction_read_only'), current_setting('statement_timeout'), "
    "current_setting('search_path'), current_setting('transaction_read_only'), current_user::text"
)
#: The state of pg-mcp's own pooled connections, asked through the server itself (every pooled
#: connection must answer the same).
SERVER_SESSION = (
    "SELECT current_setting('statement_timeout') AS statement_timeout, current_setting('search_path') AS path, "
    "current_setting('transaction_read_only') AS ro, current_setting('default_transaction_read_only') AS default_ro, "
    "current_user AS usr, (SELECT count(*) FROM pg_prepared_statements) AS prepared, "
    "(SELECT count(*) FROM pg_cursors) AS cursors, (SELECT count(*) FROM pg_listening_channels()) AS listening, "
    "(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS advisory"
)


async def snapshot(pg: DemoDatabase, *, full: bool) -> dict[str, Any]:
    """Everything an attack could change, read as superuser; `full` adds checksums of the big tables."""
    checks = {**CHECKS, **BIG_CHECKS} if full else CHECKS
    admin = await asyncpg.connect(pg.admin_url)
    try:
        state: dict[str, Any] = {name: await admin.fetchval(sql) for name, sql in checks.items()}
        deadline = time.monotonic() + 3
        while state["pg_mcp_locks"] or state["pg_mcp_in_transaction"]:  # a call may be finishing its reset
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
            for name in ("pg_mcp_locks", "pg_mcp_in_transaction"):
                state[name] = await admin.fetchval(checks[name])
    finally:
        await admin.close()
    reader = await asyncpg.connect(pg.url)
    try:
        state["fresh_reader_session"] = tuple(await reader.fetchrow(READER_SESSION))
    finally:
        await reader.close()
    state["files"] = sorted(str(p) for p in Path(ATTACK_FILES).parent.glob(Path(ATTACK_FILES).name + "*"))
    return state


def differences(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {
        key: (before[key], after[key]) for key in before.keys() & after.keys() if before[key] != after[key]
    }


# ------------------------------------------------------------------------------ shared server


class SharedServer:
    """One `pg-mcp` subprocess for the whole module.

    The MCP client lives in a task of its own (anyio cancel scopes must be entered and left by the
    same task); tests hand it tool calls through a queue.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._requests: asyncio.Queue[tuple[str, dict[str, Any], asyncio.Future[Any]] | None] = (
            asyncio.Queue()
        )
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._serve())
        await asyncio.wait_for(asyncio.shield(self._ready), 60)

    async def _serve(self) -> None:
        try:
            async with mcp_client(self.url, statement_timeout=5) as client:
                self._ready.set_result(None)
                while (request := await self._requests.get()) is not None:
                    tool, arguments, future = request
                    try:
                        future.set_result(await client.call_tool(tool, arguments))
                    except Exception as exc:
                        future.set_exception(exc)
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
            raise

    async def call(self, tool: str, arguments: dict[str, Any]) -> mcp.types.CallToolResult:
        future: asyncio.Future[mcp.types.CallToolResult] = asyncio.get_running_loop().create_future()
        await self._requests.put((tool, arguments, future))
        return await asyncio.wait_for(future, 30)

    async def query(self, sql: str, max_rows: int | None = None) -> mcp.types.CallToolResult:
        arguments: dict[str, Any] = {"sql": sql}
        if max_rows is not None:
            arguments["max_rows"] = max_rows
        return await self.call("query", arguments)

    async def stop(self) -> None:
        await self._requests.put(None)
        if self._task is not None:
            await asyncio.wait_for(self._task, 30)


@dataclass
class Victim:
    """Another session on the database: it must survive the corpus and hear no notification."""

    conn: asyncpg.Connection
    pid: int
    notifications: list[str] = field(default_factory=list)


@dataclass
class Tally:
    guard: int = 0
    lookalikes: int = 0
    db_layer_total: int = 0
    db_layer_raised: int = 0
    db_layer_harmless: int = 0
    categories: set[str] = field(default_factory=set)


TALLY = Tally()


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def server(pg: DemoDatabase) -> AsyncIterator[SharedServer]:
    shared = SharedServer(pg.url)
    await shared.start()
    try:
        yield shared
    finally:
        await shared.stop()


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def victim(pg: DemoDatabase) -> AsyncIterator[Victim]:
    conn = await asyncpg.connect(pg.url, server_settings={"application_name": VICTIM_APP})
    found = Victim(conn, conn.get_server_pid())
    await conn.add_listener(VICTIM_CHANNEL, lambda *args: found.notifications.append(str(args[-1])))
    try:
        yield found
    finally:
        with contextlib.suppress(Exception):
            await conn.close()


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def baseline(pg: DemoDatabase, server: SharedServer, victim: Victim) -> dict[str, Any]:
    """The state before any attack, and pg-mcp's own session state as the server reports it."""
    for path in Path(ATTACK_FILES).parent.glob(Path(ATTACK_FILES).name + "*"):
        path.unlink()
    state = await snapshot(pg, full=True)
    assert state["victim_alive"] == 1 and state["advisory_locks"] == 0 and state["files"] == []
    state["server_session"] = await server_session(server)
    return state


async def server_session(server: SharedServer) -> list[Any]:
    """pg-mcp's pooled connections, as seen through the server: asked often enough to reach several."""
    answers = []
    for _ in range(3):
        result = await server.query(SERVER_SESSION)
        assert not result.is_error, text_of(result)
        answers.append(result.structured_content["rows"])
    assert all(answer == answers[0] for answer in answers), answers
    first: list[Any] = answers[0]
    return first


async def check_unchanged(
    pg: DemoDatabase,
    server: SharedServer,
    victim: Victim,
    baseline: dict[str, Any],
    *,
    full: bool,
    label: str,
) -> None:
    after = await snapshot(pg, full=full)
    assert not differences(baseline, after), f"{label} changed the database: {differences(baseline, after)}"
    assert await server_session(server) == baseline["server_session"], f"{label} left session state behind"
    assert await victim.conn.fetchval("SELECT pg_backend_pid()") == victim.pid, (
        "the victim session was replaced"
    )
    assert victim.notifications == [], f"{label} delivered notifications: {victim.notifications}"


# ----------------------------------------------------------------------------------------- tests


def test_corpus_is_large_and_ids_are_unique() -> None:
    for name, cases in CATEGORIES.items():
        ids = [case_id for case_id, _ in cases]
        assert len(ids) == len(set(ids)), f"duplicate ids in {name}"
    assert sum(len(cases) for cases in CATEGORIES.values()) >= 150
    assert len(DB_LAYER_CORPUS) >= 100


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def policy(pg: DemoDatabase) -> GuardPolicy:
    """The guard policy the server uses: with this database's function names."""
    conn = await asyncpg.connect(pg.url)
    try:
        rows = await conn.fetch(FIELD_CALLABLE_FUNCTIONS_SQL)
    finally:
        await conn.close()
    return GuardPolicy(
        one_arg_functions=frozenset(r["name"] for r in rows),
        row_functions=frozenset(r["name"] for r in rows if r["takes_row"]),
    )


async def attack(server: SharedServer, policy: GuardPolicy, case_id: str, sql: str) -> str | None:
    """Send one attack; return what is wrong with the answer, or None when it was refused properly."""
    try:
        check_query(sql, 100, policy)
    except GuardError as error:
        expected = str(error)
    else:
        return f"{case_id}: the guard accepted {sql[:200]!r}"
    result = await server.query(sql)
    text = text_of(result)
    if not result.is_error:
        return f"{case_id}: not an error: {text[:200]!r}"
    if "Traceback" in text:
        return f"{case_id}: traceback in {text[:300]!r}"
    if "\nHint: " not in text:
        return f"{case_id}: no hint in {text[:300]!r}"
    if text != expected:
        return f"{case_id}: not the guard's refusal: {text[:300]!r} (expected {expected[:200]!r})"
    return None


@pytest.mark.parametrize("category", list(CATEGORIES))
async def test_refused_at_the_guard(
    category: str,
    pg: DemoDatabase,
    server: SharedServer,
    policy: GuardPolicy,
    victim: Victim,
    baseline: dict[str, Any],
) -> None:
    cases = CATEGORIES[category]
    failures = [failure for case_id, sql in cases if (failure := await attack(server, policy, case_id, sql))]
    assert not failures, f"{len(failures)} of {len(cases)} {category} attacks misbehaved:\n" + "\n".join(
        failures
    )
    await check_unchanged(pg, server, victim, baseline, full=False, label=category)
    TALLY.guard += len(cases)
    TALLY.categories.add(category)


async def test_lookalike_separators_are_not_a_bypass(
    pg: DemoDatabase, server: SharedServer, victim: Victim, baseline: dict[str, Any]
) -> None:
    failures = []
    for case_id, sql in LOOKALIKES:
        result = await server.query(sql)
        text = text_of(result)
        if not result.is_error or "Traceback" in text or "Internal error" in text:
            failures.append(f"{case_id}: {result.is_error=} {text[:200]!r}")
    assert not failures, "\n".join(failures)
    await check_unchanged(pg, server, victim, baseline, full=False, label="lookalikes")
    TALLY.lookalikes = len(LOOKALIKES)


async def _raw_session(
    pg: DemoDatabase, payloads: list[bytes], wanted: set[int]
) -> dict[int, dict[str, Any]]:
    """Drive the server with hand-written JSON-RPC lines (the official client cannot send these);
    collect answers until every id in `wanted` has one."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pg_mcp", pg.url, cwd=str(ROOT), env=server_env(),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    init = {"protocolVersion": mcp.types.LATEST_PROTOCOL_VERSION, "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"}}  # fmt: skip
    lines = [
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init}).encode(),
        json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode(),
        *payloads,
    ]
    process.stdin.write(b"\n".join(lines) + b"\n")
    await process.stdin.drain()
    answers: dict[int, dict[str, Any]] = {}
    try:
        async with asyncio.timeout(20):
            while not {1, *wanted} <= answers.keys():
                line = await process.stdout.readline()
                if not line:
                    break
                message = json.loads(line)
                if "id" in message:
                    answers[message["id"]] = message
    finally:
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()
    return answers


def _tool_call(request_id: int, sql_json: str) -> bytes:
    """A tools/call line whose `sql` value is given as raw JSON text (escapes kept as written)."""
    return (
        f'{{"jsonrpc": "2.0", "id": {request_id}, "method": "tools/call", '
        f'"params": {{"name": "query", "arguments": {{"sql": {sql_json}}}}}}}'
    ).encode("utf-8", errors="surrogatepass")


async def test_lone_surrogates_and_invalid_utf8_do_not_crash_the_server(pg: DemoDatabase) -> None:
    """Lone surrogates ('\\ud800' escapes) are answered as invalid requests with their id, a line of
    invalid UTF-8 as a parse error (id null: no id can be trusted from it); no tool runs for either,
    and the server keeps serving."""
    answers = await _raw_session(
        pg,
        [
            _tool_call(100, "\"SELECT '\\ud800'\""),
            _tool_call(101, "\"SELECT '\\udfff\\ud800'; DROP TABLE sales.products\""),
            _tool_call(102, '"SELECT 1"').replace(
                b"SELECT 1", b"SELECT '\xff\xfe'; DROP TABLE sales.products"
            ),
            _tool_call(103, "\"SELECT '\\u0000'\""),
            _tool_call(104, '"SELECT 42 AS still_alive"'),
        ],
        wanted={100, 101, 103, 104, None},  # type: ignore[arg-type]
    )
    for request_id in (100, 101):
        assert answers[request_id]["error"]["code"] == -32600, answers[request_id]
    assert answers[None]["error"]["code"] == -32700, "the invalid UTF-8 line"  # type: ignore[index]
    assert 102 not in answers, "no tool ran for a line that is not valid UTF-8"
    assert "Traceback" not in json.dumps(answers[103]) and answers[103]["result"]["isError"] is True
    alive = answers[104]["result"]
    assert not alive.get("isError") and alive["structuredContent"]["rows"] == [[42]], alive
    assert await _count_products(pg) == 500


async def _count_products(pg: DemoDatabase) -> int:
    conn = await asyncpg.connect(pg.admin_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM sales.products"))
    finally:
        await conn.close()


# -------------------------------------------------------------- the database layer on its own


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def superuser_db(pg: DemoDatabase) -> AsyncIterator[Database]:
    """The session layer alone: a superuser connection, one of it, so each call inherits the last one's session."""
    database = database_for(pg.admin_url, pool_min=1, pool_max=1, statement_timeout=1.0)
    yield database
    await database.close()


async def _db_session(database: Database) -> tuple[Any, ...]:
    result = await database.run_query(unguarded(SERVER_SESSION.replace("current_user AS usr, ", "")))
    return result.rows[0]


async def test_database_layer_alone_stops_the_write_corpus(
    pg: DemoDatabase, superuser_db: Database, victim: Victim, baseline: dict[str, Any]
) -> None:
    clean = await _db_session(superuser_db)
    before = await snapshot(pg, full=False)
    failures: list[str] = []
    raised = harmless = 0
    for case_id, sql in DB_LAYER_CORPUS:
        try:
            await superuser_db.run_query(unguarded(sql))
        except PgMcpError as error:
            raised += 1
            if "Traceback" in str(error):
                failures.append(f"{case_id}: traceback")
        else:
            harmless += 1
            print(f"\ndatabase layer alone let {case_id} run; checking it changed nothing")
            after = await snapshot(pg, full=False)
            if differences(before, after):
                failures.append(f"{case_id}: ran and changed {differences(before, after)}")
        if await _db_session(superuser_db) != clean:
            failures.append(f"{case_id}: the next call on the same connection saw a changed session")
    after = await snapshot(pg, full=True)
    assert not failures, "\n".join(failures)
    assert not differences(baseline, after), differences(baseline, after)
    assert victim.notifications == []
    TALLY.db_layer_total, TALLY.db_layer_raised, TALLY.db_layer_harmless = (
        len(DB_LAYER_CORPUS),
        raised,
        harmless,
    )
    assert raised >= len(DB_LAYER_CORPUS) - 5, (
        "almost everything in this corpus fails in a read-only transaction"
    )


#: Functions the session layer does NOT refuse: they run, and must leave nothing behind.
SESSION_LAYER_BOUNDS: list[Case] = [
    ("pg_sleep_cancelled", "SELECT pg_sleep(30)"),
    ("pg_sleep_for_cancelled", "SELECT pg_sleep_for('30 seconds')"),
    ("advisory_lock", "SELECT pg_advisory_lock(4242)"),
    ("advisory_lock_shared", "SELECT pg_advisory_lock_shared(4243)"),
    ("advisory_lock_two_keys", "SELECT pg_advisory_lock(1, 2)"),
    ("try_advisory_lock", "SELECT pg_try_advisory_lock(4244)"),
    ("advisory_xact_lock", "SELECT pg_advisory_xact_lock(4245)"),
    ("set_config_session", "SELECT set_config('statement_timeout', '0', false)"),
    ("set_config_search_path", "SELECT set_config('search_path', 'pg_temp', false)"),
    ("set_config_read_write", "SELECT set_config('default_transaction_read_only', 'off', false)"),
    ("setseed", "SELECT setseed(0.5)"),
    ("query_to_xml_select", "SELECT query_to_xml('SELECT 1 AS a', true, false, '')"),
    ("query_to_xml_delete", "SELECT query_to_xml('DELETE FROM sales.products RETURNING 1', true, false, '')"),
    ("ts_stat", "SELECT count(*) FROM ts_stat('SELECT to_tsvector(name) FROM sales.products')"),
    ("nextval", "SELECT nextval('sales.customers_id_seq')"),
    ("setval", "SELECT setval('sales.customers_id_seq', 1)"),
    ("lo_create", "SELECT lo_create(0)"),
    ("lo_from_bytea", "SELECT lo_from_bytea(0, '\\x00')"),
    ("pg_notify", f"SELECT pg_notify('{VICTIM_CHANNEL}', 'owned')"),
    ("txid_current", "SELECT txid_current()"),
    ("cursor_to_xml_missing_cursor", "SELECT cursor_to_xml('c'::refcursor, 1, false, false, '')"),
]


async def test_session_layer_bounds_what_it_does_not_refuse(
    pg: DemoDatabase, superuser_db: Database, victim: Victim, baseline: dict[str, Any]
) -> None:
    clean = await _db_session(superuser_db)
    before = await snapshot(pg, full=False)
    failures = []
    outcomes: dict[str, str] = {}
    for case_id, sql in SESSION_LAYER_BOUNDS:
        try:  # returns at all: the call's deadline bounds even what the timeout cannot stop
            await superuser_db.run_query(unguarded(sql))
            outcomes[case_id] = "ran"
        except PgMcpError as error:
            outcomes[case_id] = f"refused: {error.message[:60]}"
        if await _db_session(superuser_db) != clean:
            failures.append(f"{case_id}: left session state behind")
        after = await snapshot(pg, full=False)
        if differences(before, after):
            failures.append(f"{case_id}: changed {differences(before, after)}")
    assert not failures, "\n".join(failures) + f"\n{outcomes}"
    await asyncio.sleep(0.2)  # a notification, had one been committed, arrives asynchronously
    assert victim.notifications == []
    ran = {case_id for case_id, outcome in outcomes.items() if outcome == "ran"}
    # What is true of PostgreSQL: these run inside the read-only transaction (even lo_create, pg_notify
    # and txid_current) and are undone by the rollback and the reset that follow every call ...
    assert {
        "advisory_lock", "advisory_lock_shared", "try_advisory_lock", "set_config_session",
        "set_config_read_write", "query_to_xml_select", "setseed", "pg_notify", "lo_create",
    } <= ran, outcomes  # fmt: skip
    # ... and these are stopped by the timeout or by the read-only transaction itself.
    assert outcomes["pg_sleep_cancelled"].startswith("refused: The query was cancelled"), outcomes
    assert outcomes["pg_sleep_for_cancelled"].startswith("refused: The query was cancelled"), outcomes
    assert not {"nextval", "setval", "query_to_xml_delete"} & ran, outcomes
    print(f"\nsession layer alone on side-effecting functions: {outcomes}")


async def test_nothing_changed_after_the_whole_corpus(
    pg: DemoDatabase, server: SharedServer, victim: Victim, baseline: dict[str, Any]
) -> None:
    await asyncio.sleep(0.2)
    await check_unchanged(pg, server, victim, baseline, full=True, label="the corpus")
    assert await victim.conn.fetchval("SELECT 1") == 1
    assert not list(Path(ATTACK_FILES).parent.glob(Path(ATTACK_FILES).name + "*"))
    ok = await server.query("SELECT count(*) AS n FROM sales.products")
    assert not ok.is_error and ok.structured_content["rows"] == [[500]]
    print(
        f"\nattacks refused at the guard: {TALLY.guard} (categories: {len(TALLY.categories)}); "
        f"look-alike separators refused without harm: {TALLY.lookalikes}; "
        f"stopped by the database layer alone: {TALLY.db_layer_raised + TALLY.db_layer_harmless} of "
        f"{TALLY.db_layer_total} ({TALLY.db_layer_raised} raised an error, {TALLY.db_layer_harmless} "
        "returned without changing anything)"
    )
