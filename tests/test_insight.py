"""The DBA insight tools against a real cluster that loads pg_stat_statements.

The cluster is this module's own (initdb, then shared_preload_libraries = 'pg_stat_statements' and a
restart): the shared test cluster does not preload the library. Its database holds a few tables made
to show each finding: an unused index, a duplicate pair, an invalid index, a foreign key without an
index, dead rows, sequential scans; and an indexed column and a table the operator hides.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import asyncpg
import pytest
from factories import context_for
from pydantic import ConfigDict

from pg_mcp.database.insight import (
    MAX_STATEMENT_CHARS,
    WITHHELD_OTHER_ROLE,
    WITHHELD_OUT_OF_REACH,
    WITHHELD_PRIVILEGE,
    AnalyzedPlan,
    DatabaseHealth,
    IndexHealth,
    StatementsReport,
    TableHealthReport,
)
from pg_mcp.database.records import Record
from pg_mcp.errors import ConfigError, GuardError, InvalidArgumentError
from pg_mcp.explore import DatabaseContext, ToolOutput
from pg_mcp.explore import insight_tools as insight
from pg_mcp.guard.rules import Rule
from pg_mcp.local_pg import LocalPostgres, find_pg_bin, start_local_postgres

pytestmark = pytest.mark.asyncio(loop_scope="session")

DEBIAN_PACKAGE = "postgresql-NN (it ships the contrib modules; or the postgresql-contrib metapackage)"

#: The operator's limits of the limited contexts: insight.vault and items.secret_col are out of reach.
LIMITS: dict[str, Any] = {
    "tables": "insight.items,insight.lines,insight.dupes",
    "hidden_columns": "insight.items.secret_col",
}

SETUP = """
CREATE EXTENSION pg_stat_statements;
CREATE SCHEMA insight;
CREATE TABLE insight.items (id int PRIMARY KEY, code text NOT NULL, note text, secret_col text)
    WITH (autovacuum_enabled = false);
CREATE TABLE insight.lines (id int PRIMARY KEY, item_id int NOT NULL REFERENCES insight.items(id), qty int)
    WITH (autovacuum_enabled = false);
CREATE TABLE insight.vault (id int PRIMARY KEY, item_id int REFERENCES insight.items(id));
CREATE TABLE insight.dupes (v int);
INSERT INTO insight.items SELECT g, 'c' || g, repeat('n', 40), 's' || g FROM generate_series(1, 20000) g;
INSERT INTO insight.lines SELECT g, 1 + g % 20000, g FROM generate_series(1, 5000) g;
INSERT INTO insight.vault VALUES (1, 1);
INSERT INTO insight.dupes VALUES (1), (1);
CREATE INDEX items_note_idx ON insight.items (note);
CREATE INDEX items_code_idx ON insight.items (code);
CREATE INDEX items_code_dup ON insight.items (code);
CREATE INDEX items_secret_idx ON insight.items (secret_col);
CREATE INDEX items_secret_lower_a ON insight.items (lower(secret_col));
CREATE INDEX items_secret_lower_b ON insight.items (lower(secret_col));
ANALYZE insight.items; ANALYZE insight.lines; ANALYZE insight.vault; ANALYZE insight.dupes;
"""
"""One transaction, ANALYZE included: ANALYZE then counts the transaction's own inserts once."""

READERS = """
CREATE ROLE {role} LOGIN PASSWORD '{password}' NOSUPERUSER NOCREATEDB NOCREATEROLE;
GRANT USAGE ON SCHEMA insight TO {role};
GRANT SELECT ON ALL TABLES IN SCHEMA insight TO {role};
ALTER ROLE {role} SET default_transaction_read_only = on;
GRANT SET ON PARAMETER log_min_messages TO {role};
"""

#: Run by the reader itself (not through pg-mcp) until each is among the most called statements.
OWN_STATEMENT = "SELECT count(*) FROM insight.items WHERE note LIKE '%n'"
OUT_OF_REACH_STATEMENT = "SELECT count(*) AS out_of_reach FROM insight.vault"
LONG_STATEMENT = "SELECT " + ", ".join(f"{i} AS long_column_{i}" for i in range(60))
#: Run by the superuser: another role's statement.
ADMIN_STATEMENT = "SELECT count(*) AS admin_marker FROM insight.dupes"
REPEATS = 60

R = TypeVar("R", bound=Record)


@dataclass(frozen=True)
class Cluster:
    admin_url: str
    #: A least-privilege reader, and one that is also a member of pg_read_all_stats.
    reader_url: str
    stats_reader_url: str
    #: A database without the extension.
    plain_url: str


def _missing_extension(bin_dir: Path) -> str | None:
    """Why pg_stat_statements cannot be loaded from these binaries, or None (unknown: try)."""
    pg_config = bin_dir / "pg_config"
    if not pg_config.exists():
        return None
    found = subprocess.run(
        [str(pg_config), "--sharedir", "--pkglibdir"], capture_output=True, text=True, check=False
    )
    if found.returncode != 0:
        return None
    sharedir, libdir = found.stdout.split()
    control = Path(sharedir) / "extension" / "pg_stat_statements.control"
    if control.exists() and any(Path(libdir).glob("pg_stat_statements.*")):
        return None
    return (
        f"pg_stat_statements is not installed with the PostgreSQL binaries in {bin_dir} (no {control} or "
        f"library in {libdir}): on Debian/Ubuntu install {DEBIAN_PACKAGE}."
    )


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    try:
        bin_dir = find_pg_bin()
    except ConfigError as exc:
        pytest.skip(f"no PostgreSQL binaries for the insight tests: {exc.hint}")
    missing = _missing_extension(bin_dir)
    if missing:
        pytest.skip(missing)
    with start_local_postgres() as server:
        _preload(server)
        yield asyncio.run(_prepare(server))


def _preload(server: LocalPostgres) -> None:
    async def configure() -> None:
        conn = await asyncpg.connect(server.url())
        try:
            await conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        finally:
            await conn.close()

    asyncio.run(configure())
    server.stop_server("fast")
    try:
        server.start_server()
    except ConfigError as exc:
        pytest.skip(
            f"PostgreSQL did not start with pg_stat_statements preloaded ({exc}); install {DEBIAN_PACKAGE}"
        )


async def _prepare(server: LocalPostgres) -> Cluster:
    password = secrets.token_urlsafe(12)
    admin = await asyncpg.connect(server.url())
    try:
        await admin.execute("CREATE DATABASE insight")
        await admin.execute("CREATE DATABASE plain")
    finally:
        await admin.close()
    admin_url = server.url("insight")
    await _execute(admin_url, SETUP)
    for role in ("insight_reader", "insight_stats_reader"):
        await _execute(admin_url, READERS.format(role=role, password=password))
    await _execute(admin_url, "GRANT pg_read_all_stats TO insight_stats_reader")
    # An invalid index: a unique index built concurrently over duplicate values fails and stays behind.
    with pytest.raises(asyncpg.UniqueViolationError):
        await _execute(admin_url, "CREATE UNIQUE INDEX CONCURRENTLY dupes_v_key ON insight.dupes (v)")
    await _execute(admin_url, "UPDATE insight.items SET note = repeat('m', 40) WHERE id <= 10000")
    base = f"postgresql://{{}}:{password}@127.0.0.1:{server.port}/"
    reader = base.format("insight_reader") + "insight"
    stats_reader = base.format("insight_stats_reader") + "insight"
    conn = await asyncpg.connect(reader)
    try:
        for _ in range(REPEATS):
            await conn.fetchval(OWN_STATEMENT)
            await conn.fetchval(OUT_OF_REACH_STATEMENT)
            await conn.fetchrow(LONG_STATEMENT)
    finally:
        await conn.close()
    conn = await asyncpg.connect(admin_url)
    try:
        for _ in range(REPEATS):
            await conn.fetchval(ADMIN_STATEMENT)
    finally:
        await conn.close()
    # Statistics reach the shared counters about once a second: wait for the dead rows and scans.
    await _wait_for(
        admin_url,
        "SELECT n_dead_tup >= 10000 AND seq_scan >= $1 FROM pg_stat_user_tables WHERE relid = 'insight.items'::regclass",
        REPEATS,
    )
    return Cluster(admin_url, reader, stats_reader, base.format("insight_reader") + "plain")


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _fetch_value(url: str, sql: str) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def _wait_for(url: str, sql: str, *args: object, polls: int = 100) -> None:
    """Poll `sql` until it is true (the statistics are sent at the end of a transaction), at most
    `polls` times a fifth of a second apart; the test's own timeout bounds the whole."""
    conn = await asyncpg.connect(url)
    try:
        for _ in range(polls):
            if await conn.fetchval(sql, *args):
                return
            await asyncio.sleep(0.2)
        pytest.fail(f"still false after {polls} polls: {sql}")
    finally:
        await conn.close()


async def _run(url: str, tool: Any, *args: Any, **settings: Any) -> ToolOutput:
    ctx: DatabaseContext = context_for(url, **settings)
    try:
        output: ToolOutput = await tool(ctx, *args)
        return output
    finally:
        await ctx.db.close()


def _wire(output: ToolOutput) -> str:
    """Everything a client receives: the text and the structured content."""
    return output.text + "\n" + json.dumps(output.structured)


def _as_output_model(record: type[R], structured: dict[str, Any]) -> R:
    """The structured content read back through the record as the tool's output model would be (a
    subclass allowing the `truncated` and `cut` fields a byte cut adds)."""
    config = ConfigDict(frozen=True, populate_by_name=True, extra="allow")
    model = cast(type[R], type(f"{record.__name__}Output", (record,), {"model_config": config}))
    return model.model_validate(structured)


# --- slow_queries -----------------------------------------------------------------------------------


async def test_slow_queries_show_the_roles_own_statements_and_withhold_others(cluster: Cluster) -> None:
    output = await _run(cluster.reader_url, insight.slow_queries, "calls", 50)
    report = _as_output_model(StatementsReport, output.structured)
    assert report.available and report.since is not None
    by_text = {s.query: s for s in report.statements if s.query}
    own = by_text.get("SELECT count(*) FROM insight.items WHERE note LIKE $1")
    assert own is not None and own.calls >= REPEATS and own.role == "insight_reader", list(by_text)
    assert own.rows >= REPEATS and own.mean_ms == pytest.approx(own.total_ms / own.calls, rel=0.01, abs=0.01)
    assert "SELECT count(*) FROM insight.items WHERE note LIKE $1" in output.text
    long = next(s for s in report.statements if s.query and s.query.startswith("SELECT $1 AS long_column_0"))
    assert long.query_cut and len(long.query or "") == MAX_STATEMENT_CHARS
    admin = [s for s in report.statements if s.role == "postgres" and s.calls >= REPEATS]
    assert admin and all(s.query is None and s.withheld == WITHHELD_OTHER_ROLE for s in admin)
    assert "admin_marker" not in _wire(output)
    assert report.texts_withheld >= 1 and "PG_MCP_ALLOW_SECRETS=other_sessions" in output.text
    assert report.tracked >= len(report.statements) and report.total_ms >= own.total_ms


async def test_other_roles_texts_need_the_secret_group_and_the_privilege(cluster: Cluster) -> None:
    privileged = await _run(cluster.stats_reader_url, insight.slow_queries, "calls", 50)
    assert "admin_marker" not in _wire(privileged), "pg_read_all_stats alone shows no other role's text"
    allowed = await _run(
        cluster.stats_reader_url, insight.slow_queries, "calls", 50, allow_secrets="other_sessions"
    )
    assert "SELECT count(*) AS admin_marker FROM insight.dupes" in allowed.text
    unprivileged = await _run(
        cluster.reader_url, insight.slow_queries, "calls", 50, allow_secrets="other_sessions"
    )
    statements = unprivileged.structured["statements"]
    assert any(s["role"] == "postgres" and s["withheld"] == WITHHELD_PRIVILEGE for s in statements)
    assert "admin_marker" not in _wire(unprivileged)


async def test_a_statement_naming_what_is_out_of_reach_is_shown_without_its_text(cluster: Cluster) -> None:
    open_ = await _run(cluster.reader_url, insight.slow_queries, "calls", 50)
    assert "out_of_reach FROM insight.vault" in open_.text
    limited = await _run(cluster.reader_url, insight.slow_queries, "calls", 50, **LIMITS)
    statements = limited.structured["statements"]
    assert any(s["withheld"] == WITHHELD_OUT_OF_REACH and s["calls"] >= REPEATS for s in statements)
    assert "vault" not in _wire(limited) and "secret_col" not in _wire(limited)
    assert "SELECT count(*) FROM insight.items WHERE note LIKE $1" in limited.text, "the rest is shown"


async def test_slow_queries_are_bounded_and_ordered(cluster: Cluster) -> None:
    top = await _run(cluster.reader_url, insight.slow_queries, "total_time", 3)
    assert len(top.structured["statements"]) == 3
    times = [s["total_ms"] for s in top.structured["statements"]]
    assert times == sorted(times, reverse=True)
    by_mean = await _run(cluster.reader_url, insight.slow_queries, "mean_time", 5)
    means = [s["mean_ms"] for s in by_mean.structured["statements"]]
    assert means == sorted(means, reverse=True) and "by mean time" in by_mean.text
    for bad in ((51,), (0,)):
        with pytest.raises(InvalidArgumentError):
            await _run(cluster.reader_url, insight.slow_queries, "calls", *bad)
    with pytest.raises(InvalidArgumentError):
        await _run(cluster.reader_url, insight.slow_queries, "rows")


async def test_slow_queries_say_how_to_install_the_extension(cluster: Cluster) -> None:
    output = await _run(cluster.plain_url, insight.slow_queries)
    assert output.structured["available"] is False
    assert "shared_preload_libraries" in output.text and "CREATE EXTENSION pg_stat_statements" in output.text


# --- index_health -----------------------------------------------------------------------------------


async def test_index_health_finds_each_kind(cluster: Cluster) -> None:
    output = await _run(cluster.reader_url, insight.index_health)
    health = _as_output_model(IndexHealth, output.structured)
    unused = {(u.table, u.index) for u in health.unused}
    assert ("items", "items_note_idx") in unused
    assert not {u.index for u in health.unused} & {"items_pkey", "lines_pkey", "dupes_v_key"}
    assert all(u.scans == 0 and u.size_bytes > 0 for u in health.unused)
    codes = next(d for d in health.duplicates if "items_code_idx" in (d.keep, *d.drop))
    assert (codes.keep, codes.drop) == ("items_code_idx", ["items_code_dup"]) and codes.drop_bytes > 0
    assert [(v.table, v.index) for v in health.invalid] == [("dupes", "dupes_v_key")]
    keys = {(k.table, tuple(k.columns), k.references) for k in health.unindexed_foreign_keys}
    assert ("lines", ("item_id",), "insight.items") in keys and (
        "vault",
        ("item_id",),
        "insight.items",
    ) in keys
    lines = next(k for k in health.unindexed_foreign_keys if k.table == "lines")
    assert lines.suggestion == "CREATE INDEX CONCURRENTLY ON insight.lines (item_id);"
    assert lines.estimated_rows == 5000
    for text in ("DROP INDEX CONCURRENTLY insight.items_note_idx;", "drop items_code_dup",
                 "REINDEX INDEX CONCURRENTLY insight.dupes_v_key;", lines.suggestion):  # fmt: skip
        assert text in output.text, text
    assert "secret" in _wire(output), "without limits the hidden column's indexes are reported"


async def test_index_health_never_names_a_hidden_table_or_column(cluster: Cluster) -> None:
    output = await _run(cluster.reader_url, insight.index_health, **LIMITS)
    assert "vault" not in _wire(output) and "secret" not in _wire(output)
    health = IndexHealth.model_validate(output.structured)
    assert {u.index for u in health.unused} >= {"items_note_idx"}
    assert [k.table for k in health.unindexed_foreign_keys] == ["lines"]
    assert not [d for d in health.duplicates if d.keep.startswith("items_secret")]
    narrowed = await _run(cluster.reader_url, insight.index_health, "INSIGHT", 1)
    assert len(narrowed.structured["unused"]) == 1 and narrowed.structured["unused_total"] > 1
    assert "first 1 shown" in narrowed.text


# --- table_health -----------------------------------------------------------------------------------


async def test_table_health_reports_dead_rows_bloat_and_sequential_scans(cluster: Cluster) -> None:
    output = await _run(cluster.reader_url, insight.table_health)
    report = _as_output_model(TableHealthReport, output.structured)
    items = report.tables[0]
    assert (items.schema_, items.name) == ("insight", "items")
    assert (
        items.dead_rows == 10_000 and items.live_rows == 20_000 and items.dead_ratio == pytest.approx(1 / 3)
    )
    assert items.last_analyze is not None and items.last_vacuum is None and items.last_autovacuum is None
    assert items.estimated_bloat_bytes is not None and items.estimated_bloat_bytes > 0
    assert items.seq_scans >= REPEATS and items.seq_rows_read >= REPEATS * 20_000
    assert any("VACUUM (ANALYZE) insight.items" in note for note in items.notes)
    assert any("sequential scans" in note for note in items.notes)
    assert "bloat ≈" in output.text and "estimate" in output.text
    by_reads = await _run(cluster.reader_url, insight.table_health, "seq_reads", 2)
    assert by_reads.structured["tables"][0]["name"] == "items"
    assert len(by_reads.structured["tables"]) == 2 and by_reads.structured["total"] >= 4
    every = await _run(cluster.reader_url, insight.table_health, "size", 50)
    assert {"items", "lines", "dupes", "vault"} <= {t["name"] for t in every.structured["tables"]}


async def test_table_health_leaves_out_what_the_operator_hides(cluster: Cluster) -> None:
    output = await _run(cluster.reader_url, insight.table_health, "size", 50, **LIMITS)
    assert {t["name"] for t in output.structured["tables"]} == {"items", "lines", "dupes"}
    assert "vault" not in _wire(output) and "secret" not in _wire(output)
    with pytest.raises(InvalidArgumentError):
        await _run(cluster.reader_url, insight.table_health, "oldest", 5)


# --- database_health --------------------------------------------------------------------------------


async def test_database_health_counts_sessions_and_locks_without_their_sql(cluster: Cluster) -> None:
    holder = await asyncpg.connect(cluster.admin_url, server_settings={"application_name": "holder"})
    waiter = await asyncpg.connect(cluster.admin_url, server_settings={"application_name": "waiter"})
    blocked: asyncio.Task[Any] | None = None
    try:
        await holder.execute("BEGIN; LOCK TABLE insight.dupes IN ACCESS EXCLUSIVE MODE")
        blocked = asyncio.create_task(
            waiter.fetchval("SELECT /* insight_blocked */ count(*) FROM insight.dupes")
        )
        await _wait_for(cluster.admin_url, "SELECT count(*) > 0 FROM pg_locks WHERE NOT granted")
        plain = await _run(cluster.reader_url, insight.database_health)
        privileged = await _run(cluster.stats_reader_url, insight.database_health)
    finally:
        await holder.execute("ROLLBACK")
        if blocked is not None:
            await blocked
        await holder.close()
        await waiter.close()
    for output in (plain, privileged):
        health = _as_output_model(DatabaseHealth, output.structured)
        assert health.blocked_sessions == 1 and health.blocking_sessions == 1 and health.locks_waiting >= 1
        assert health.longest_lock_wait_seconds is not None
        assert any(lock.mode == "AccessExclusiveLock" and lock.granted for lock in health.locks)
        assert 0 < (health.cache_hit_ratio or 0) <= 1 and health.commits > 0
        assert health.sessions >= 3 and health.server_sessions >= health.sessions
        assert {"holder", "waiter"} <= {g.name for g in health.by_application}
        assert "insight_blocked" not in _wire(output) and "LOCK TABLE" not in _wire(output)
    seen_by_reader = DatabaseHealth.model_validate(plain.structured)
    assert seen_by_reader.sessions_not_visible >= 2 and "pg_read_all_stats" in plain.text
    seen_by_stats = DatabaseHealth.model_validate(privileged.structured)
    assert seen_by_stats.sessions_not_visible == 0
    assert "idle in transaction" in {g.name for g in seen_by_stats.by_state}
    assert "Lock/relation" in {g.name for g in seen_by_stats.by_wait_event}
    assert seen_by_stats.longest_idle_in_transaction_seconds is not None
    assert seen_by_stats.oldest_transaction_seconds is not None


# --- explain_analyze --------------------------------------------------------------------------------


async def test_explain_analyze_reports_actual_rows_of_an_accepted_statement(cluster: Cluster) -> None:
    output = await _run(
        cluster.reader_url, insight.explain_analyze, "SELECT id FROM insight.items WHERE id <= 42"
    )
    plan = _as_output_model(AnalyzedPlan, output.structured)
    scan = next(node for node in plan.nodes if "insight.items" in node.node)
    assert scan.actual_rows == 42 and scan.loops == 1 and scan.estimated_rows is not None
    assert scan.total_ms is not None and scan.shared_hit_blocks + scan.shared_read_blocks > 0  # timed, read
    assert plan.execution_ms is not None and plan.planning_ms is not None and plan.row_cap == 100
    assert plan.plan is not None and plan.plan["Actual Rows"] == 42
    assert "rows 42 (est" in output.text and "read-only transaction that was rolled back" in output.text
    ran = await _fetch_value(
        cluster.admin_url,
        "SELECT count(*) FROM pg_stat_statements WHERE query ILIKE 'EXPLAIN (ANALYZE%insight.items WHERE id <=%'",
    )
    assert ran >= 1, "a statement run under ANALYZE shows in pg_stat_statements (what the refusal test reads)"


async def test_explain_analyze_refuses_a_write_and_a_statement_over_the_budget(cluster: Cluster) -> None:
    with pytest.raises(GuardError) as write:
        await _run(cluster.reader_url, insight.explain_analyze, "DELETE FROM insight.items")
    assert write.value.rule == Rule.NOT_READ_ONLY
    with pytest.raises(GuardError) as costly:
        await _run(
            cluster.reader_url,
            insight.explain_analyze,
            "SELECT count(*) FROM insight.items a CROSS JOIN insight.items b",
            max_cost=100_000,
        )
    assert costly.value.rule == Rule.COST_BUDGET
    analysed = await _fetch_value(
        cluster.admin_url,
        "SELECT count(*) FROM pg_stat_statements WHERE query ILIKE 'EXPLAIN (ANALYZE%CROSS JOIN insight.items b%'",
    )
    assert analysed == 0, "refused from its plan: the 400-million-row join was never run under ANALYZE"
    with pytest.raises(GuardError):
        await _run(
            cluster.reader_url, insight.explain_analyze, "SELECT secret_col FROM insight.items", **LIMITS
        )
    await _execute(cluster.admin_url, "SELECT 1")  # the table is as it was
    conn = await asyncpg.connect(cluster.admin_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM insight.items") == 20_000
    finally:
        await conn.close()


# --- bounds -----------------------------------------------------------------------------------------

#: The smallest result budget the settings allow.
SMALL = 1024


async def test_every_answer_stays_within_the_result_budget(cluster: Cluster) -> None:
    wide = " UNION ALL ".join(f"SELECT id FROM insight.items WHERE id = {i}" for i in range(40))
    calls: list[tuple[Any, tuple[Any, ...]]] = [
        (insight.slow_queries, ("calls", 50)),
        (insight.index_health, (None, 50)),
        (insight.table_health, ("size", 50)),
        (insight.database_health, ()),
        (insight.explain_analyze, (wide,)),
    ]
    for tool, args in calls:
        output = await _run(cluster.reader_url, tool, *args, max_result_bytes=SMALL)
        assert len(output.text.encode()) <= SMALL, (tool.__name__, len(output.text.encode()))
        size = len(json.dumps(output.structured, separators=(",", ":")).encode())
        assert size <= SMALL, (tool.__name__, size)
        if tool is not insight.database_health:
            assert "output cut at 1,024 bytes" in output.text, tool.__name__
            assert output.structured.get("truncated") is True, tool.__name__
