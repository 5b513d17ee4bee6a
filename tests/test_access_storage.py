"""Operator limits hold for every relation that stores the data, checked on PostgreSQL's own analysis and
on real plans."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from analysis_helpers import analysis_of
from conftest import DemoDatabase
from factories import context_for, database_for

from pg_mcp.database.executor import Database
from pg_mcp.database.lineage import LineagePolicy, expand_policy
from pg_mcp.database.reach import read_reach
from pg_mcp.errors import GuardError
from pg_mcp.guard import analysed, judge_analysis
from pg_mcp.guard.access import AccessPolicy, check_plan

SETUP = """
CREATE SCHEMA storage_t;
CREATE TABLE storage_t.payments (id int, card_number text, amount int) PARTITION BY RANGE (id);
CREATE TABLE storage_t.payments_1 PARTITION OF storage_t.payments FOR VALUES FROM (0) TO (100);
CREATE TABLE storage_t.payments_2 PARTITION OF storage_t.payments FOR VALUES FROM (100) TO (200)
    PARTITION BY RANGE (id);
CREATE TABLE storage_t.payments_2a PARTITION OF storage_t.payments_2 FOR VALUES FROM (100) TO (200);
INSERT INTO storage_t.payments SELECT g, '4111-' || g, g * 10 FROM generate_series(0, 199) g;
CREATE TABLE storage_t.events (id int, kind text, secret text);
CREATE TABLE storage_t.events_2024 () INHERITS (storage_t.events);
CREATE MATERIALIZED VIEW storage_t.cards AS SELECT id, card_number FROM storage_t.payments;
CREATE MATERIALIZED VIEW storage_t.amounts AS SELECT id, amount FROM storage_t.payments;
ANALYZE storage_t.payments, storage_t.events;
GRANT USAGE ON SCHEMA storage_t TO {reader};
GRANT SELECT ON ALL TABLES IN SCHEMA storage_t TO {reader};
"""

HIDDEN = ("storage_t.payments.card_number", "storage_t.events.secret")

#: (hidden columns, tables, schemas) -> queries refused, each with a nearby query that passes.
CASES: list[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], str, str]] = [
    (HIDDEN, (), (), "SELECT id, card_number FROM storage_t.payments", "SELECT id, amount FROM storage_t.payments"),
    (HIDDEN, (), (), "SELECT card_number FROM storage_t.payments_2a", "SELECT id FROM storage_t.payments_2a"),
    (HIDDEN, (), (), "SELECT * FROM storage_t.payments_1", "SELECT id, amount FROM storage_t.payments_1"),
    (HIDDEN, (), (), "SELECT id FROM storage_t.payments_2 WHERE card_number LIKE '4%'", "SELECT count(*) FROM storage_t.payments_2"),
    (HIDDEN, (), (), "SELECT secret FROM storage_t.events_2024", "SELECT id, kind FROM storage_t.events_2024"),
    (HIDDEN, (), (), "SELECT id FROM storage_t.cards", "SELECT id, amount FROM storage_t.amounts"),
    ((), ("storage_t.payments",), (), "SELECT id FROM storage_t.events", "SELECT id, card_number FROM storage_t.payments"),
    ((), ("storage_t.payments",), (), "SELECT id FROM storage_t.amounts", "SELECT id FROM storage_t.payments_2a"),
    ((), (), ("storage_t",), "SELECT most_common_vals FROM pg_stats WHERE schemaname = 'storage_t'", "SELECT relname FROM pg_class"),
]  # fmt: skip


@pytest.fixture(scope="module")
def storage(pg: DemoDatabase) -> Iterator[DemoDatabase]:
    reader = urlsplit(pg.url).username
    asyncio.run(pg.admin_execute(SETUP.format(reader=reader)))
    yield pg
    asyncio.run(pg.admin_execute("DROP SCHEMA storage_t CASCADE"))


@pytest.fixture
async def database(storage: DemoDatabase) -> AsyncIterator[Database]:
    db = database_for(storage.url)
    yield db
    await db.close()


async def _plan(url: str, sql: str) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        plan: dict[str, Any] = json.loads(await conn.fetchval("EXPLAIN (VERBOSE, FORMAT JSON) " + sql))[0][
            "Plan"
        ]
        return plan
    finally:
        await conn.close()


@pytest.mark.parametrize(("hidden", "tables", "schemas", "refused", "passes"), CASES)
async def test_limits_hold_on_every_relation_storing_the_data(
    storage: DemoDatabase,
    database: Database,
    hidden: tuple[str, ...],
    tables: tuple[str, ...],
    schemas: tuple[str, ...],
    refused: str,
    passes: str,
) -> None:
    policy = await expand_policy(database, AccessPolicy.from_settings(schemas, tables, hidden))
    with pytest.raises(GuardError, match=r"hidden|does not expose|catalog stores"):
        await _judge(storage.url, refused, policy, database)
    await _judge(storage.url, passes, policy, database)


async def _judge(url: str, sql: str, policy: AccessPolicy, database: Database) -> None:
    """pg-mcp's verdict on PostgreSQL's analysis of `sql` (structural), then on its plan (relations)."""
    reach = await read_reach(database, (), policy)
    analysed.check(analysed.analyse(await analysis_of(url, sql)), reach, limits_active=policy.active)
    check_plan(await _plan(url, sql), policy)


async def test_the_configured_policy_alone_misses_partitions(
    storage: DemoDatabase, database: Database
) -> None:
    """Without expansion the plan names only leaf partitions: the hidden column leaks, the allowed table is refused."""
    hidden = AccessPolicy.from_settings((), (), HIDDEN)
    check_plan(await _plan(storage.url, "SELECT card_number FROM storage_t.payments"), hidden)
    allowed = AccessPolicy.from_settings((), ("storage_t.payments",), ())
    with pytest.raises(GuardError):
        check_plan(await _plan(storage.url, "SELECT id FROM storage_t.payments"), allowed)
    expanded = await expand_policy(database, hidden)
    assert expanded.hidden("storage_t", "payments_2a") == {"card_number"}
    assert "storage_t.payments.card_number" in expanded.denied[("storage_t", "cards")]
    assert ("storage_t", "amounts") not in expanded.denied


async def test_toast_is_refused_without_any_limit(storage: DemoDatabase) -> None:
    toast = (
        await storage.admin_fetch(
            "SELECT reltoastrelid::regclass::text FROM pg_class WHERE oid = 'storage_t.events'::regclass"
        )
    )[0][0]
    assert toast.startswith("pg_toast.")
    with pytest.raises(GuardError, match="does not expose"):
        check_plan(await _plan(storage.admin_url, f"SELECT chunk_data FROM {toast}"), AccessPolicy())
    check_plan(await _plan(storage.admin_url, "SELECT id FROM storage_t.events"), AccessPolicy())
    check_plan(await _plan(storage.url, "SELECT most_common_vals FROM pg_stats"), AccessPolicy())


async def test_a_new_partition_is_covered_at_the_next_call(storage: DemoDatabase, database: Database) -> None:
    lineage = LineagePolicy(AccessPolicy.from_settings((), (), HIDDEN))
    first = await lineage.get(database)
    assert await lineage.get(database) is first  # nothing changed: no second expansion
    await storage.admin_execute(
        "CREATE TABLE storage_t.payments_3 PARTITION OF storage_t.payments FOR VALUES FROM (200) TO (300)"
    )
    try:
        assert (await lineage.get(database)).hidden("storage_t", "payments_3") == {"card_number"}
    finally:
        await storage.admin_execute("DROP TABLE storage_t.payments_3")
    assert await LineagePolicy(AccessPolicy()).get(database) == AccessPolicy()


async def test_denied_relations_are_not_listed(storage: DemoDatabase) -> None:
    """A matview copying a hidden column is refused, and the listings do not offer it either."""
    from pg_mcp import explore

    explorer = context_for(storage.url, hidden_columns=",".join(HIDDEN), schemas="storage_t")
    db = explorer.db
    try:
        listed = await explore.list_tables(explorer, "storage_t")
        names = {table["name"] for table in listed.structured["tables"]}
        assert "amounts" in names and "cards" not in names, names
        with pytest.raises(GuardError):
            await explore.query(explorer, "SELECT id FROM storage_t.cards")
    finally:
        await db.close()


def test_check_says_which_relations_the_limits_put_out_of_reach(storage: DemoDatabase) -> None:
    import subprocess
    import sys

    from mcp_helpers import ROOT, server_env

    result = subprocess.run(
        [sys.executable, "-m", "pg_mcp", "check", storage.url, "--hidden-columns", ",".join(HIDDEN)],
        capture_output=True, text=True, timeout=120, env=server_env(), cwd=ROOT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "  - storage_t.cards: " in result.stdout, result.stdout
    assert "storage_t.amounts" not in result.stdout


async def test_a_failing_cast_does_not_echo_a_value_while_limits_are_set(storage: DemoDatabase) -> None:
    """The plan check refuses reading a hidden column; a data error elsewhere still quotes no value."""
    from pg_mcp import explore
    from pg_mcp.errors import QueryError

    for hidden, shown in (((), True), (HIDDEN, False)):
        explorer = context_for(storage.url, hidden_columns=",".join(hidden))
        try:
            with pytest.raises(QueryError) as caught:
                await explore.query(explorer, "SELECT kind::int FROM (VALUES ('4111-secret')) AS v(kind)")
        finally:
            await explorer.db.close()
        assert ("4111-secret" in caught.value.message) is shown, caught.value.message
        assert "invalid input syntax for type integer" in caught.value.message


async def test_an_accepted_tree_is_not_read_again_while_its_model_stands(
    pg: DemoDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The verdict on a tree depends only on the tree and the catalog model: the same tree under the same
    model is accepted without being read again, and under another model it is judged afresh."""
    tree = await analysis_of(pg.url, "SELECT * FROM sales.orders WHERE id = 7")
    conn = await asyncpg.connect(pg.url)
    try:
        orders = await conn.fetchval("SELECT 'sales.orders'::regclass::oid")
    finally:
        await conn.close()
    known = frozenset(analysed.analyse(tree).oids())  # every object the tree names, as of now
    accepting = analysed.CatalogReach(known=known)
    refusing = analysed.CatalogReach(relations={orders: "sales.orders"}, known=known)
    await judge_analysis(tree, accepting, limits_active=False, fresh=True)
    with pytest.raises(GuardError, match=r"sales\.orders"):
        await judge_analysis(tree, refusing, limits_active=False, fresh=True)

    def unread(_: str) -> analysed.AnalysedStatement:
        raise AssertionError("the tree was read again")

    monkeypatch.setattr(analysed, "analyse", unread)
    await judge_analysis(tree, accepting, limits_active=False, fresh=True)
    with pytest.raises(AssertionError, match="read again"):  # another model: judged afresh
        await judge_analysis(tree, analysed.CatalogReach(known=known), limits_active=False, fresh=True)
