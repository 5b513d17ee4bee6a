"""sql/readonly_role.sql creates a role that can read the chosen schemas and nothing else."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import quote, urlsplit

import asyncpg
import pytest
from conftest import DemoDatabase
from factories import context_for
from mcp_helpers import ROOT, server_env

ROLE, PASSWORD = f"shop_reader_{secrets.token_hex(3)}", "it's a s3cret: @/?"


def _run_role_script(pg: DemoDatabase, role: str, *extra: str, schemas: str = "sales") -> None:
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is not installed")
    parts = urlsplit(pg.admin_url)
    result = subprocess.run(
        [psql, pg.admin_url, "-q", "-v", f"role_name={role}", "-v", f"password={PASSWORD}",
         "-v", f"dbname={parts.path.lstrip('/')}", "-v", f"schemas={schemas}", *extra,
         "-f", str(ROOT / "sql/readonly_role.sql")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def _check(url: str, *extra: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "pg_mcp", "check", url, *extra],
        capture_output=True, text=True, timeout=60, env=server_env(), cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    return result.stdout


def _url_for(pg: DemoDatabase, role: str) -> str:
    parts = urlsplit(pg.admin_url)
    return f"postgresql://{role}:{quote(PASSWORD, safe='')}@{parts.hostname}:{parts.port}{parts.path}"


@pytest.fixture(scope="module")
def role_url(pg: DemoDatabase) -> Iterator[str]:
    _run_role_script(pg, ROLE, schemas="sales, hr")
    yield _url_for(pg, ROLE)
    asyncio.run(pg.admin_execute(f"DROP OWNED BY {ROLE}; DROP ROLE {ROLE}"))


async def test_role_reads_the_chosen_schemas_only(role_url: str) -> None:
    conn = await asyncpg.connect(role_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM sales.products") == 500
        assert await conn.fetchval("SHOW default_transaction_read_only") == "on"
        assert await conn.fetchval("SHOW temp_file_limit") == "1GB", "the script ran as a superuser"
        assert await conn.fetchval("SHOW statement_timeout") == "30s"
        assert await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user") is False
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await conn.execute("CREATE TABLE sales.mine (id int)")
    finally:
        await conn.close()
    await _assert_lacks_privilege(
        role_url,
        "SELECT count(*) FROM inventory.warehouses",
        "INSERT INTO sales.products (id, sku, name, category, price, created_on) VALUES (-1, 'x', 'x', 'x', 1, now())",
        "CREATE TABLE sales.mine (id int)",
        "CREATE TEMP TABLE mine (id int)",
        "CREATE SCHEMA mine",
    )


async def _assert_lacks_privilege(url: str, *statements: str) -> None:
    """Each statement fails for want of a privilege, even with the role's read-only default turned off."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET default_transaction_read_only = off")  # the role default is only a backstop
        for sql in statements:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(sql)
    finally:
        await conn.close()


def test_check_finds_no_risks(role_url: str) -> None:
    report = _check(role_url)
    assert f"Role: {ROLE}" in report and "no risks found" in report
    assert (
        "Role defaults: default_transaction_read_only=on, idle_in_transaction_session_timeout=60s, "
        "lock_timeout=5s, statement_timeout=30s, temp_file_limit=1GB"
    ) in report
    assert "statement_timeout 30 s, lock_timeout 5 s" in report


#: The functions `-v strict=on` revokes from PUBLIC, to grant back after the test.
STRICT_FUNCTIONS = """
SELECT string_agg(format('GRANT EXECUTE ON FUNCTION %s TO PUBLIC', oid::regprocedure), '; ')
FROM pg_proc WHERE pronamespace = 'pg_catalog'::regnamespace
  AND (proname IN ('pg_sleep', 'pg_sleep_for', 'pg_sleep_until', 'pg_notify', 'pg_cancel_backend',
                   'pg_terminate_backend', 'lo_create', 'lo_creat', 'lo_unlink', 'lo_put', 'lo_from_bytea',
                   'lo_truncate', 'lo_truncate64', 'lowrite')
       OR proname LIKE 'pg\\_%advisory%lock%')
"""


async def test_strict_role_loses_temp_create_and_side_effect_functions_granted_to_public(
    pg: DemoDatabase,
) -> None:
    role = f"strict_reader_{secrets.token_hex(3)}"
    database = urlsplit(pg.admin_url).path.lstrip("/")
    conn = await asyncpg.connect(pg.admin_url)
    try:
        grant_back = await conn.fetchval(STRICT_FUNCTIONS)
        await conn.execute(f"GRANT TEMPORARY ON DATABASE {database} TO PUBLIC")  # PostgreSQL's default
        await conn.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")  # the default before PostgreSQL 15
        _run_role_script(pg, role)
        lenient = _check(_url_for(pg, role))
        await conn.execute(f"DROP OWNED BY {role}; DROP ROLE {role}")
        _run_role_script(pg, role, "-v", "strict=on")
        strict = _check(_url_for(pg, role))
        await _assert_lacks_privilege(
            _url_for(pg, role),
            "SELECT pg_sleep(0)",
            "SELECT pg_advisory_lock(1)",
            "CREATE TEMP TABLE mine (id int)",
        )
    finally:
        await conn.execute(
            f"REVOKE TEMPORARY ON DATABASE {database} FROM PUBLIC; REVOKE CREATE ON SCHEMA public FROM PUBLIC; "
            f"{grant_back}"
        )
        await conn.execute(f"DROP OWNED BY {role}; DROP ROLE IF EXISTS {role}")
        await conn.close()
    assert (
        f"Role {role} can create temporary tables: REVOKE TEMPORARY ON DATABASE {database} FROM {role}; "
        f"REVOKE TEMPORARY ON DATABASE {database} FROM PUBLIC;"
    ) in lenient
    assert (
        f"Role {role} can create objects in schemas public: REVOKE CREATE ON SCHEMA public FROM {role}; "
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC;"
    ) in lenient, lenient
    assert "no risks found" in strict, strict


async def test_check_names_each_risk_with_the_statement_that_fixes_it(pg: DemoDatabase) -> None:
    suffix = secrets.token_hex(3)
    role, writer = f"risky_{suffix}", f"writer_{suffix}"
    database = urlsplit(pg.admin_url).path.lstrip("/")
    await pg.admin_execute(
        f"""
        CREATE ROLE {writer};
        CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD.replace("'", "''")}' CREATEROLE CREATEDB REPLICATION BYPASSRLS;
        GRANT CONNECT, CREATE ON DATABASE {database} TO {role};
        GRANT pg_signal_backend, {writer} TO {role};
        GRANT USAGE ON SCHEMA sales, hr TO {role};
        GRANT SELECT, INSERT ON sales.products TO {role};
        GRANT CREATE ON SCHEMA hr TO {role};
        CREATE EXTENSION dblink SCHEMA hr;
        """,
    )
    try:
        report = _check(_url_for(pg, role))
    finally:
        await pg.admin_execute(
            f"DROP EXTENSION dblink; DROP OWNED BY {role}; DROP ROLE {role}; DROP ROLE {writer}",
        )
    for line in [
        f"Role {role} has CREATEROLE: ALTER ROLE {role} NOCREATEROLE;",
        f"Role {role} has CREATEDB: ALTER ROLE {role} NOCREATEDB;",
        f"Role {role} has REPLICATION: ALTER ROLE {role} NOREPLICATION;",
        f"Role {role} has BYPASSRLS: ALTER ROLE {role} NOBYPASSRLS;",
        f"Role {role} can write to 1 tables: REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA "
        f"sales FROM {role};",
        f"Role {role} can create objects in schemas hr: REVOKE CREATE ON SCHEMA hr FROM {role};",
        f"Role {role} can create schemas: REVOKE CREATE ON DATABASE {database} FROM {role};",
        f"Role {role} is a member of pg_signal_backend: REVOKE pg_signal_backend FROM {role};",
        f"Role {role} is a member of {writer} and may use its privileges: REVOKE {writer} FROM {role};",
        "Extension dblink (schema hr) is installed: it can reach outside the database. Unless",
        "DROP EXTENSION dblink;",
    ]:
        assert line in report, f"{line!r} not in:\n{report}"


async def test_temp_file_limit_can_be_chosen(pg: DemoDatabase) -> None:
    role = f"tfl_reader_{secrets.token_hex(3)}"
    _run_role_script(pg, role, "-v", "temp_file_limit=256MB")
    try:
        conn = await asyncpg.connect(_url_for(pg, role))
        try:
            assert await conn.fetchval("SHOW temp_file_limit") == "256MB"
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("SET temp_file_limit = -1")  # the role cannot lift its own cap
        finally:
            await conn.close()
    finally:
        await pg.admin_execute(f"DROP OWNED BY {role}; DROP ROLE {role}")


@pytest.mark.parametrize(
    "limits",
    [{}, {"schemas": "sales"}, {"tables": "sales.*,hr.employees"}],
    ids=["everything", "one schema", "a table allowlist"],
)
async def test_the_report_counts_the_tables_list_tables_lists(
    pg: DemoDatabase, limits: dict[str, str]
) -> None:
    """`pg-mcp check` and the start-up report count in the database what `list_tables` would list,
    under the operator's limits, without holding one row per table."""
    from pg_mcp.database.role_report import role_report, visible_tables

    context = context_for(pg.url, "demo", **limits)
    try:
        listed = await context.catalog.list_tables(limit=100_000)
        assert listed, "the demo has tables"
        assert await visible_tables(context.catalog) == len(listed)
        assert (await role_report(context.db, context.catalog)).visible_tables == len(listed)
    finally:
        await context.db.close()


async def test_hidden_columns_are_refused_by_postgresql_itself(pg: DemoDatabase) -> None:
    """-v hidden_columns: the role's own privileges refuse the hidden column, whatever reaches the server;
    `check` agrees with the configured PG_MCP_HIDDEN_COLUMNS only once they do."""
    role = f"column_reader_{secrets.token_hex(3)}"
    conn = await asyncpg.connect(pg.admin_url)
    try:
        _run_role_script(pg, role, schemas="sales, hr")
        loose = _check(_url_for(pg, role), "--hidden-columns", "hr.employees.salary")
        await conn.execute(f"DROP OWNED BY {role}; DROP ROLE {role}")
        _run_role_script(pg, role, "-v", "hidden_columns=hr.employees.salary", schemas="sales, hr")
        tight = _check(_url_for(pg, role), "--hidden-columns", "hr.employees.salary")
        reader = await asyncpg.connect(_url_for(pg, role))
        try:
            assert await reader.fetchval("SELECT count(first_name) FROM hr.employees") > 0
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await reader.fetchval("SELECT max(salary) FROM hr.employees")
        finally:
            await reader.close()
    finally:
        await conn.execute(f"DROP OWNED BY {role}; DROP ROLE IF EXISTS {role}")
        await conn.close()
    assert f"Role {role} may read the hidden columns hr.employees.salary itself" in loose, loose
    assert "GRANT SELECT (id, department_id, manager_id, first_name" in loose, loose
    assert "hidden columns" not in tight, tight
