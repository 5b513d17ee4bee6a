"""sql/readonly_role.sql creates a role that can read the chosen schemas and nothing else."""

from __future__ import annotations

import shutil
import subprocess
import sys
from urllib.parse import quote, urlsplit

import asyncpg
import pytest
from conftest import DemoDatabase
from mcp_helpers import ROOT, server_env

ROLE, PASSWORD = "shop_reader", "it's a s3cret: @/?"


@pytest.fixture(scope="module")
def role_url(pg: DemoDatabase) -> str:
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is not installed")
    parts = urlsplit(pg.admin_url)
    result = subprocess.run(
        [psql, pg.admin_url, "-q", "-v", f"role_name={ROLE}", "-v", f"password={PASSWORD}",
         "-v", f"dbname={parts.path.lstrip('/')}", "-v", "schemas=sales, hr", "-f", str(ROOT / "sql/readonly_role.sql")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return f"postgresql://{ROLE}:{quote(PASSWORD, safe='')}@{parts.hostname}:{parts.port}{parts.path}"


async def test_role_reads_the_chosen_schemas_only(role_url: str) -> None:
    conn = await asyncpg.connect(role_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM sales.products") == 500
        assert await conn.fetchval("SHOW default_transaction_read_only") == "on"
        assert await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user") is False
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await conn.execute("CREATE TABLE sales.mine (id int)")
        await conn.execute("SET default_transaction_read_only = off")  # the role default is only a backstop
        for sql in [
            "SELECT count(*) FROM inventory.warehouses",
            "INSERT INTO sales.products (id, sku, name, category, price, created_on) "
            "VALUES (-1, 'x', 'x', 'x', 1, now())",
            "CREATE TABLE sales.mine (id int)",
            "CREATE TEMP TABLE mine (id int)",
            "CREATE SCHEMA mine",
        ]:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(sql)
    finally:
        await conn.close()


def test_check_finds_no_risks(role_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pg_mcp", "check", role_url],
        capture_output=True, text=True, timeout=60, env=server_env(), cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Role: shop_reader" in result.stdout and "no risks found" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr
