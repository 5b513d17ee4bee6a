"""pg-mcp on a real hot standby (streaming replication from a throwaway primary): the tools, `check`,
multi-host URLs that prefer the standby and fall back to the primary, and queries the replica cancels
to replay the primary's changes (recovery conflicts)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from factories import unguarded
from mcp_helpers import fetchval, mcp_client, password_of, run_cli, text_of
from replica_helpers import Standby, start_standby, wait_for_replay

from pg_mcp.database.driver_errors import describe_target, query_error
from pg_mcp.errors import ConfigError
from pg_mcp.local_pg import LocalPostgres, find_pg_bin, start_local_postgres

#: A small shop with a least-privilege reader; `churn` is for the recovery conflict.
SHOP_SQL = """
CREATE SCHEMA store;
CREATE TABLE store.customers (id int PRIMARY KEY, name text NOT NULL, city text);
COMMENT ON TABLE store.customers IS 'People who bought something';
CREATE TABLE store.orders (
    id bigint PRIMARY KEY, customer_id int NOT NULL REFERENCES store.customers(id),
    amount numeric(10, 2) NOT NULL, placed_at timestamptz NOT NULL);
CREATE INDEX orders_customer_id_idx ON store.orders (customer_id);
CREATE TABLE store.churn (id int, payload text);
INSERT INTO store.customers SELECT g, 'customer ' || g, (ARRAY['Oslo', 'Lima', 'Pune'])[g % 3 + 1]
    FROM generate_series(1, 500) g;
INSERT INTO store.orders SELECT g, g % 500 + 1, (g % 997) / 10.0, '2025-01-01'::timestamptz + g * interval '1 hour'
    FROM generate_series(1, 5000) g;
INSERT INTO store.churn SELECT g, repeat('x', 100) FROM generate_series(1, 2000) g;
REVOKE ALL ON DATABASE shop FROM PUBLIC;
GRANT CONNECT ON DATABASE shop TO reader;
GRANT USAGE ON SCHEMA store TO reader;
GRANT SELECT ON ALL TABLES IN SCHEMA store TO reader;
"""

#: Far longer than any test waits; only a recovery conflict (or the statement timeout) ends it.
ENDLESS = "SELECT count(*) FROM store.churn a CROSS JOIN store.orders b CROSS JOIN store.orders c"
NO_BUDGET = {"max_cost": 0, "max_plan_rows": 0}
WHERE_AM_I = {"sql": "SELECT pg_is_in_recovery() AS standby"}


@dataclass
class Replicated:
    primary: LocalPostgres
    standby: Standby
    #: The reader on the primary and on the standby.
    primary_url: str
    standby_url: str

    def admin(self, on_standby: bool = False) -> str:
        return (self.standby.url if on_standby else self.primary.url)("shop")

    def multi_host(self, *ports: int, attrs: str = "prefer-standby") -> str:
        """The reader on several servers, in the form pg-mcp's URL check accepts today: hosts and
        ports in the `host` parameter (asyncpg also reads `user:pw@h1:p1,h2:p2/db`, which pg-mcp refuses)."""
        hosts = ",".join(f"127.0.0.1:{port}" for port in ports)
        parts = self.primary_url.partition("@")
        return f"{parts[0]}@/shop?host={hosts}&target_session_attrs={attrs}"


async def _create_shop(primary: LocalPostgres, password: str) -> None:
    admin = await asyncpg.connect(primary.url())
    try:
        await admin.execute("CREATE DATABASE shop")
        await admin.execute(
            f"CREATE ROLE reader LOGIN PASSWORD '{password}' NOINHERIT; "
            "ALTER ROLE reader SET default_transaction_read_only = on; "
            "GRANT SET ON PARAMETER log_min_messages TO reader"
        )
        await admin.execute("ALTER SYSTEM SET autovacuum = off")  # the only VACUUM: the conflict test's
        await admin.execute("SELECT pg_reload_conf()")
    finally:
        await admin.close()
    shop = await asyncpg.connect(primary.url("shop"))
    try:
        await shop.execute(SHOP_SQL)
        await shop.execute("VACUUM ANALYZE")
    finally:
        await shop.close()


@pytest.fixture(scope="module")
def replicated() -> Iterator[Replicated]:
    try:
        find_pg_bin()
    except ConfigError as exc:
        pytest.skip(f"no PostgreSQL server binaries for a primary and a standby: {exc.hint}")
    with start_local_postgres() as primary:
        password = secrets.token_urlsafe(12)
        asyncio.run(_create_shop(primary, password))
        # Conflicting queries are cancelled at once instead of after 30 s.
        standby = start_standby(primary, "max_standby_streaming_delay = 0")
        try:
            primary_url = f"postgresql://reader:{password}@127.0.0.1:{primary.port}/shop"
            yield Replicated(primary, standby, primary_url, standby.reader_url(primary_url))
        finally:
            standby.stop()


async def test_the_tools_work_on_a_standby(replicated: Replicated) -> None:
    assert await fetchval(replicated.standby_url, "SELECT pg_is_in_recovery()") is True
    async with mcp_client(replicated.standby_url) as client:
        where = await client.call_tool("query", WHERE_AM_I)
        tables = await client.call_tool("list_tables", {})
        described = await client.call_tool("describe_table", {"table": "store.orders"})
        counted = await client.call_tool(
            "query", {"sql": "SELECT city, count(*) AS n FROM store.customers GROUP BY city ORDER BY city"}
        )
        sample = await client.call_tool("sample_rows", {"table": "store.customers", "n": 5})
        stats = await client.call_tool("column_stats", {"table": "store.customers"})
        plan = await client.call_tool("explain", {"sql": "SELECT * FROM store.orders WHERE customer_id = 7"})
        related = await client.call_tool("relationships", {"table": "store.orders"})
    for result in (where, tables, described, counted, sample, stats, plan, related):
        assert not result.is_error, text_of(result)
    assert where.structured_content["rows"] == [[True]]
    names = {f"{t['schema']}.{t['name']}" for t in tables.structured_content["tables"]}
    assert names == {"store.customers", "store.orders", "store.churn"}
    assert described.structured_content["primary_key"] == ["id"]
    assert any(fk["references"] == "store.customers" for fk in described.structured_content["foreign_keys"])
    assert counted.structured_content["rows"] == [["Lima", 167], ["Oslo", 166], ["Pune", 167]]
    assert sample.structured_content["row_count"] == 5
    assert "city text" in text_of(stats) and "Oslo" in text_of(stats), "the primary's ANALYZE, replicated"
    assert "orders_customer_id_idx" in text_of(plan)
    assert "store.customers" in text_of(related)


def test_check_on_a_standby_says_so(replicated: Replicated) -> None:
    standby = run_cli("check", replicated.standby_url)
    primary = run_cli("check", replicated.primary_url)
    assert standby.returncode == 0, standby.stderr
    first = standby.stdout.splitlines()[1]
    assert first.startswith("PostgreSQL ") and first.endswith("(standby), database shop"), standby.stdout
    assert "Role: reader" in standby.stdout and "no risks found" in standby.stdout, standby.stdout
    assert password_of(replicated.standby_url) not in standby.stdout + standby.stderr
    assert primary.returncode == 0 and "(standby)" not in primary.stdout, primary.stdout


async def test_a_recovery_conflict_is_explained(replicated: Replicated) -> None:
    async with mcp_client(replicated.standby_url, statement_timeout=20, **NO_BUDGET) as client:
        running = asyncio.create_task(client.call_tool("query", {"sql": ENDLESS}))
        standby_admin = await asyncpg.connect(replicated.admin(on_standby=True))
        try:
            for _ in range(400):  # until it has run for a moment: executing, its snapshot taken
                active = await standby_admin.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%CROSS JOIN%' "
                    "AND clock_timestamp() - query_start > interval '0.2 s' AND pid <> pg_backend_pid()"
                )
                if active or running.done():
                    break
                await asyncio.sleep(0.05)
        finally:
            await standby_admin.close()
        primary = await asyncpg.connect(replicated.admin())
        try:  # rows the standby's query may still need, removed on the primary
            await primary.execute("DELETE FROM store.churn WHERE id % 2 = 0")
            await primary.execute("VACUUM store.churn")
        finally:
            await primary.close()
        cancelled = await running
        after = await client.call_tool("query", {"sql": "SELECT count(*) AS n FROM store.churn"})
    assert cancelled.is_error
    text = text_of(cancelled)
    assert text.startswith(
        "The replica cancelled the query to apply changes from the primary (a recovery conflict). "
        "Nothing was changed."
    ), text
    assert "Retry, or run long queries on the primary (or raise max_standby_streaming_delay" in text
    assert not after.is_error, text_of(after)
    assert after.structured_content["rows"] == [[1000]], "the next call runs, on the replayed data"


def test_recovery_conflict_messages() -> None:
    """What asyncpg raises for each kind of recovery conflict, and what is not one."""
    checked = unguarded("SELECT 1")

    def error(kind: type[asyncpg.PostgresError], code: str, message: str, detail: str = "") -> Any:
        fields = {"S": "ERROR", "C": code, "M": message} | ({"D": detail} if detail else {})
        return query_error(kind.new(fields), checked, "SELECT 1")

    snapshot = error(
        asyncpg.SerializationError, "40001", "canceling statement due to conflict with recovery",
        "User query might have needed to see row versions that must be removed.",
    )  # fmt: skip
    assert snapshot.message == (
        "The replica cancelled the query to apply changes from the primary (a recovery conflict). "
        "Nothing was changed.\nDetail: User query might have needed to see row versions that must be removed."
    )
    assert snapshot.hint == (
        "Retry, or run long queries on the primary (or raise max_standby_streaming_delay on the replica)."
    )
    idle = error(asyncpg.SerializationError, "40001", "terminating connection due to conflict with recovery")
    deadlock = error(
        asyncpg.DeadlockDetectedError, "40P01", "canceling statement due to conflict with recovery",
        "User transaction caused buffer deadlock with recovery.",
    )  # fmt: skip
    assert idle.message.startswith("The replica cancelled") and deadlock.message.startswith("The replica")
    serializable = error(asyncpg.SerializationError, "40001", "could not serialize access")
    assert serializable.message == "could not serialize access"


async def test_a_multi_host_url_prefers_the_standby_and_falls_back(replicated: Replicated) -> None:
    standby = replicated.standby
    url = replicated.multi_host(replicated.primary.port, standby.port)
    primary_only = replicated.multi_host(replicated.primary.port, standby.port, attrs="primary")
    async with mcp_client(url) as client, mcp_client(primary_only) as writer_side:
        on_standby = await client.call_tool("query", WHERE_AM_I)
        on_primary = await writer_side.call_tool("query", WHERE_AM_I)
        standby.stop_server()
        try:
            reconnected = await client.call_tool("query", WHERE_AM_I)
            async with mcp_client(url) as fresh:
                new_server = await fresh.call_tool("query", WHERE_AM_I)
            checked = run_cli("check", url)
        finally:
            standby.start_server()
            await wait_for_replay(replicated.primary.url(), standby.url())
        back = await client.call_tool("query", WHERE_AM_I)
    assert on_standby.structured_content["rows"] == [[True]], text_of(on_standby)
    assert on_primary.structured_content["rows"] == [[False]], text_of(on_primary)
    assert not reconnected.is_error, "the first call after the standby went away reconnects to the primary"
    assert reconnected.structured_content["rows"] == [[False]]
    assert new_server.structured_content["rows"] == [[False]]
    assert checked.returncode == 0 and "(standby)" not in checked.stdout, checked.stdout + checked.stderr
    assert password_of(replicated.primary_url) not in checked.stdout + checked.stderr
    assert not back.is_error, text_of(back)


def test_messages_name_every_host_of_a_host_list() -> None:
    """Errors say where pg-mcp tried to connect: every host of a list, never the password."""
    query_form = "postgresql://reader:pw@/shop?host=127.0.0.1:5432,127.0.0.1:5433&target_session_attrs=any"
    assert describe_target(query_form) == "reader@127.0.0.1:5432,127.0.0.1:5433/shop"
    assert (
        describe_target("postgresql://reader:pw@/shop?host=a,b&port=6000,6001") == "reader@a:6000,b:6001/shop"
    )
    assert describe_target("postgresql://reader:pw@Db1:6000,[::1]/shop") == "reader@db1:6000,[::1]:5432/shop"
    assert describe_target("postgresql://reader:pw@db.example/shop") == "reader@db.example:5432/shop"
    assert describe_target("postgresql://reader:pw@db:port/shop") == "(unparseable DATABASE_URL)"


def test_the_libpq_multi_host_form_is_accepted(replicated: Replicated) -> None:
    primary = f"127.0.0.1:{replicated.primary.port}"
    url = replicated.primary_url.replace(primary, f"{primary},127.0.0.1:{replicated.standby.port}")
    result = run_cli("check", f"{url}?target_session_attrs=prefer-standby")
    assert result.returncode == 0, result.stderr
    assert "(standby)" in result.stdout
