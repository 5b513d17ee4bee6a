"""A real, throwaway PostgreSQL for the whole test session.

Tried in order: an admin URL in PG_MCP_TEST_DATABASE_URL (a fresh database and role are created
on that server and dropped afterwards); a Docker engine through testcontainers; PostgreSQL
binaries on this machine (initdb into a temporary directory). Without any of them the
database tests are skipped with the reason; they never pass silently.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from pg_mcp.errors import ConfigError
from pg_mcp.local_pg import find_pg_bin, load_demo, start_local_postgres


@dataclass(frozen=True)
class DemoDatabase:
    """The demo database: `url` connects as the least-privilege reader, `admin_url` as a superuser."""

    url: str
    admin_url: str
    source: str

    async def admin_execute(self, script: str) -> None:
        """Run statements as the superuser, e.g. to create objects a test needs."""
        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(script)
        finally:
            await conn.close()

    async def admin_fetch(self, sql: str, *args: object) -> list[asyncpg.Record]:
        """Rows of one query run as the superuser, e.g. the expected answer from pg_catalog."""
        conn = await asyncpg.connect(self.admin_url)
        try:
            rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
            return rows
        finally:
            await conn.close()


def _docker_available() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


def _demo(admin_url: str, password: str, database: str, reader: str, source: str) -> DemoDatabase:
    reader_url = asyncio.run(load_demo(admin_url, password, database=database, reader=reader))
    base, _, _ = admin_url.rpartition("/")
    return DemoDatabase(reader_url, f"{base}/{database}", source)


@pytest.fixture(scope="session")
def pg() -> Iterator[DemoDatabase]:
    password = secrets.token_urlsafe(16)
    external = os.environ.get("PG_MCP_TEST_DATABASE_URL")
    if external:
        suffix = secrets.token_hex(4)
        database, reader = f"pg_mcp_test_{suffix}", f"mcp_reader_{suffix}"
        yield _demo(external, password, database, reader, "PG_MCP_TEST_DATABASE_URL")
        asyncio.run(_drop(external, database, reader))
        return
    if _docker_available():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as container:
            yield _demo(container.get_connection_url(), password, "demo", "mcp_reader", "testcontainers")
        return
    try:
        find_pg_bin()
    except ConfigError as exc:
        pytest.skip(f"no PostgreSQL for the tests: set PG_MCP_TEST_DATABASE_URL, run Docker, or {exc.hint}")
    with start_local_postgres() as cluster:
        yield _demo(cluster.url(), cluster.password, "demo", "mcp_reader", "local binaries")


async def _drop(admin_url: str, database: str, reader: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        await conn.execute(f"DROP ROLE IF EXISTS {reader}")
    finally:
        await conn.close()


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No inherited settings, and no `.env` in the working directory: for tests of the config file."""
    for key in list(os.environ):
        if key.startswith("PG_MCP_") or key.endswith("DATABASE_URL"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
