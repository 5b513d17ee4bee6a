"""DBA insight answers (pg_mcp.database.insight) and analysed plans as compact text (pure).

Each line is one finding with its numbers and, where there is one, what to do about it. Every text is
bounded by `bounded_text`, which says what it cut.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pg_mcp.database.insight import (
    MAX_STATEMENT_CHARS,
    OTHER_SESSIONS,
    CountBy,
    DatabaseHealth,
    IndexHealth,
    StatementsReport,
    TableHealth,
    TableHealthReport,
)
from pg_mcp.names import qualified, quote_ident
from pg_mcp.render.catalog_text import _size
from pg_mcp.render.results import bounded_text
from pg_mcp.render.values import Limits

#: A node's row estimate this many times off its actual rows (either way) is pointed out.
ESTIMATE_OFF = 10.0

_ORDER_NAMES = {"total_time": "total time", "mean_time": "mean time", "calls": "calls"}


def _ms(value: float) -> str:
    if value >= 60_000:
        return f"{value / 60_000:,.1f} min"
    if value >= 1_000:
        return f"{value / 1_000:,.2f} s"
    if 0 < value < 0.01:
        return "<0.01 ms"
    return f"{value:,.2f} ms" if value < 10 else f"{value:,.0f} ms"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3_600:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3_600:.1f} h"
    return f"{seconds / 86_400:.0f} days"


def _when(moment: datetime | None, now: datetime) -> str:
    """`5 min ago`, or `never`."""
    if moment is None:
        return "never"
    return f"{_duration(max(0.0, (now - moment).total_seconds()))} ago"


def _since(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "since the server started (statistics never reset)"
    return f"since {moment:%Y-%m-%d %H:%M %Z}".rstrip() + f" ({_when(moment, now)})"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _percent(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.1%}"


# --- slow queries -----------------------------------------------------------------------------------


def render_statements(report: StatementsReport, now: datetime, limits: Limits = Limits()) -> str:
    """The top statements, one entry each: time, calls, rows, cache, role, then the (cut) text."""
    if not report.available:
        return f"pg_stat_statements is not available: {report.reason}"
    order = _ORDER_NAMES.get(report.order_by, report.order_by)
    lines = [
        f"pg_stat_statements: {report.tracked:,} statements tracked in this database (transaction "
        "control and SET left out), "
        f"{_ms(report.total_ms)} of execution in all, {_since(report.since, now)}. "
        f"Top {len(report.statements)} by {order}:"
    ]
    for rank, s in enumerate(report.statements, 1):
        share = f" ({s.time_share:.0%} of all)" if s.time_share is not None else ""
        blocks = s.shared_hit_blocks + s.shared_read_blocks
        cache = (
            f"cache hit {s.shared_hit_blocks / blocks:.1%} ({s.shared_read_blocks:,} blocks read)"
            if blocks
            else "no blocks"
        )
        temp = f", {s.temp_written_blocks:,} temp blocks written" if s.temp_written_blocks else ""
        most = f", max {_ms(s.max_ms)}" if s.max_ms is not None else ""
        lines.append(
            f"{rank}. {_ms(s.total_ms)} total{share}, {_count(s.calls, 'call')}, mean {_ms(s.mean_ms)}{most}, "
            f"{_count(s.rows, 'row')}; {cache}{temp}; role {s.role or '?'}"
            + (f"; queryid {s.query_id}" if s.query_id is not None else "")
        )
        if s.query is not None:
            lines.append("   " + s.query + ("…" if s.query_cut else ""))
        else:
            lines.append(f"   [text withheld: {s.withheld}]")
    if not report.statements:
        lines.append("(no statements recorded yet in this database)")
    notes = [
        f"Texts are folded onto one line and cut at {MAX_STATEMENT_CHARS} characters (…); constants show as $n."
    ]
    if report.texts_withheld:
        notes.append(
            f"{report.texts_withheld} text(s) withheld: only the connected role's own statements are shown "
            f"unless PG_MCP_ALLOW_SECRETS={OTHER_SESSIONS}."
        )
    notes.append("Check a statement's plan with explain_analyze (write it with real values for the $n).")
    lines.extend(notes)
    return bounded_text("\n".join(lines), limits, "pass a smaller limit")


# --- index health ------------------------------------------------------------------------------------


def render_index_health(report: IndexHealth, now: datetime, limits: Limits = Limits()) -> str:
    lines = [
        "Index health of the exposed tables; scans counted "
        + _since(report.stats_since, now)
        + " on this server (a replica keeps its own counts)."
    ]
    lines.append(_heading("Unused indexes (no scans; not unique, backing no constraint), largest first",
                          len(report.unused), report.unused_total))  # fmt: skip
    for u in report.unused:
        index = qualified(u.schema_, u.index)
        lines.append(
            f"  {index} on {qualified(u.schema_, u.table)}: {_size(u.size_bytes)}; "
            f"{_index_body(u.definition)} — DROP INDEX CONCURRENTLY {index};"
        )
    lines.append(_heading("Duplicate indexes (same columns, expressions, predicate and method)",
                          len(report.duplicates), report.duplicates_total))  # fmt: skip
    for d in report.duplicates:
        if d.drop:
            drops = " ".join(f"DROP INDEX CONCURRENTLY {qualified(d.schema_, name)};" for name in d.drop)
            action = f"drop {', '.join(d.drop)} ({_size(d.drop_bytes)}) — {drops}"
        else:
            action = "each backs a constraint: drop the redundant constraint first"
        lines.append(
            f"  {qualified(d.schema_, d.table)}: keep {d.keep} {_index_body(d.definition)}; {action}"
        )
    lines.append(_heading("Invalid indexes (never used by the planner, still maintained on writes)",
                          len(report.invalid), report.invalid_total))  # fmt: skip
    for v in report.invalid:
        index = qualified(v.schema_, v.index)
        lines.append(
            f"  {index} on {qualified(v.schema_, v.table)}: {_size(v.size_bytes)}; {_index_body(v.definition)} — "
            f"a failed or running CREATE INDEX CONCURRENTLY: REINDEX INDEX CONCURRENTLY {index}; "
            "(or drop it)"
        )
    lines.append(_heading("Foreign keys no index leads with (deletes of referenced rows scan the table)",
                          len(report.unindexed_foreign_keys), report.unindexed_foreign_keys_total))  # fmt: skip
    for k in report.unindexed_foreign_keys:
        rows = f", ~{k.estimated_rows:,} rows" if k.estimated_rows is not None else ""
        columns = ", ".join(map(quote_ident, k.columns))
        target = ", ".join(map(quote_ident, k.referenced_columns))
        lines.append(
            f"  {qualified(k.schema_, k.table)}({columns}) → {k.references}({target}) [{k.name}{rows}] — "
            f"{k.suggestion}"
        )
    lines.append("These tools change nothing: the statements are for a person to review and run.")
    return bounded_text("\n".join(lines), limits, "pass schema= or a smaller limit")


def _heading(title: str, shown: int, total: int) -> str:
    if total == 0:
        return f"{title}: none."
    more = f", first {shown} shown (pass a larger limit, at most 50, or schema=)" if shown < total else ""
    return f"{title}: {total}{more}"


def _index_body(definition: str) -> str:
    """`CREATE INDEX x ON s.t USING btree (a) WHERE …` → `btree (a) WHERE …`."""
    _, found, rest = definition.partition(" USING ")
    return rest if found else definition


# --- table health ------------------------------------------------------------------------------------

_TABLE_ORDERS = {
    "dead_rows": "dead rows",
    "dead_ratio": "share of dead rows (tables of 1,000 rows or more)",
    "bloat": "estimated bloat",
    "seq_reads": "rows read by sequential scans",
    "size": "total size",
}


def render_table_health(report: TableHealthReport, now: datetime, limits: Limits = Limits()) -> str:
    order = _TABLE_ORDERS.get(report.order_by, report.order_by)
    lines = [
        f"Table health: {len(report.tables)} of {report.total:,} exposed tables by {order}; counters "
        f"{_since(report.stats_since, now)}. Bloat is an estimate from the planner's statistics "
        "(row widths), not a measurement (pgstattuple measures)."
    ]
    for t in report.tables:
        lines.append(_table_line(t, now))
        lines.extend(f"    → {note}" for note in t.notes)
    if not report.tables:
        lines.append("(no exposed tables with statistics)")
    if report.total > len(report.tables):
        lines.append(
            f"({report.total - len(report.tables):,} more; pass a larger limit (at most 50) or schema=)"
        )
    return bounded_text("\n".join(lines), limits, "pass schema= or a smaller limit")


def _table_line(t: TableHealth, now: datetime) -> str:
    kind = "" if t.kind == "table" else f" [{t.kind}]"
    dead = f"{t.dead_rows:,} dead / {t.live_rows:,} live rows"
    if t.dead_ratio is not None and t.dead_rows:
        dead += f" ({t.dead_ratio:.0%} dead)"
    size = f"{_size(t.table_bytes)} ({_size(t.total_bytes)} with indexes and TOAST)"
    if t.estimated_bloat_bytes is not None:
        size += f", bloat ≈ {_size(t.estimated_bloat_bytes)} ({_percent(t.bloat_ratio)})"
    else:
        size += ", bloat: no estimate (not analyzed)"
    vacuum = f"vacuum {_when(t.last_vacuum, now)}, autovacuum {_when(t.last_autovacuum, now)}"
    analyze = f"analyze {_when(t.last_analyze, now)}, autoanalyze {_when(t.last_autoanalyze, now)}"
    index_scans = "no indexes" if t.index_scans is None else f"{t.index_scans:,} index scans"
    scans = f"{_count(t.seq_scans, 'seq scan')} reading {_count(t.seq_rows_read, 'row')} vs {index_scans}"
    return f"{qualified(t.schema_, t.name)}{kind}: {dead}; {size}; {vacuum}; {analyze}; {scans}"


# --- database health ---------------------------------------------------------------------------------


def render_database_health(h: DatabaseHealth, now: datetime, limits: Limits = Limits()) -> str:
    lines = [
        f"Database {quote_ident(h.database)}: {_size(h.size_bytes)}; counters {_since(h.stats_since, now)}.",
        f"Cache hit ratio: {_percent(h.cache_hit_ratio)} of all block reads, tables {_percent(h.heap_hit_ratio)}, "
        f"indexes {_percent(h.index_hit_ratio)} (under ~99% on a busy database: the working set may not fit "
        "in shared_buffers and the OS cache).",
        f"Transactions: {h.commits:,} commits, {h.rollbacks:,} rollbacks; {h.deadlocks:,} deadlocks; "
        f"{h.temp_files:,} temp files ({_size(h.temp_bytes)}; raise work_mem for the statements that spill); "
        f"{h.conflicts:,} recovery conflicts.",
        f"Connections: {h.sessions} client sessions on this database (this call's included); "
        f"{h.server_sessions} on the server of max_connections {h.max_connections}.",
        f"  by state: {_groups(h.by_state)}",
        f"  by role: {_groups(h.by_role)}",
        f"  by application: {_groups(h.by_application)}",
        f"  by wait event: {_groups(h.by_wait_event)}",
    ]
    if h.sessions_not_visible:
        lines.append(
            f"  {h.sessions_not_visible} session(s) of other roles: their state, wait event and times are "
            "not visible to this role (pg_read_all_stats shows them)."
        )
    lines.append(
        "Transactions (visible sessions): oldest open "
        f"{_optional_duration(h.oldest_transaction_seconds)}, longest idle in transaction "
        f"{_optional_duration(h.longest_idle_in_transaction_seconds)}, longest running statement "
        f"{_optional_duration(h.longest_running_statement_seconds)}."
    )
    xmin = "none held" if h.oldest_xmin_age is None else f"{h.oldest_xmin_age:,} transactions old"
    prepared = (
        f"{h.prepared_transactions} prepared transaction(s), oldest "
        f"{_optional_duration(h.oldest_prepared_seconds)} (COMMIT PREPARED or ROLLBACK PREPARED them)"
        if h.prepared_transactions
        else "no prepared transactions"
    )
    lines.append(f"Oldest snapshot on the server (what vacuum must keep rows for): {xmin}; {prepared}.")
    wait = (
        f", longest wait {_duration(h.longest_lock_wait_seconds)}"
        if h.longest_lock_wait_seconds is not None
        else ""
    )
    lines.append(
        f"Locks (other sessions): {h.locks_held:,} held, {h.locks_waiting:,} waiting; "
        f"{h.blocked_sessions} session(s) blocked by {h.blocking_sessions}{wait}."
    )
    for lock in h.locks:
        waiting = f", {lock.waiting:,} waiting" if lock.waiting else ""
        lines.append(f"  {lock.locktype} {lock.mode}: {lock.granted:,} granted{waiting}")
    lines.append("Other sessions' SQL is never shown; slow_queries ranks statements by time.")
    return bounded_text("\n".join(lines), limits, "the structured content has every count")


def _groups(groups: Sequence[CountBy]) -> str:
    return ", ".join(f"{g.name} {g.count}" for g in groups) or "none"


def _optional_duration(seconds: float | None) -> str:
    return "none" if seconds is None else _duration(seconds)


# --- analysed plans ----------------------------------------------------------------------------------


def render_analyzed_plan(explained: Mapping[str, Any], row_cap: int, limits: Limits = Limits()) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) as one line per node: actual rows against the estimate, time, and
    shared buffers hit and read; estimates far off are pointed out."""
    plan = explained.get("Plan", {})
    planning, execution = explained.get("Planning Time"), explained.get("Execution Time")
    lines = [
        "Executed in a read-only transaction that was rolled back: planning "
        f"{_ms(float(planning)) if planning is not None else '?'}, execution "
        f"{_ms(float(execution)) if execution is not None else '?'}; "
        f"the top Limit is pg-mcp's row cap ({row_cap + 1} rows: max_rows + 1, as query runs it)."
    ]
    _node_lines(plan, 0, lines)
    lines.append(
        "Per node: actual rows (per loop x loops) vs the planner's estimate, inclusive time, shared "
        "buffers hit/read (8 kB blocks). ⚠ marks estimates 10x or more off: ANALYZE the table, or "
        "raise its statistics target."
    )
    return bounded_text("\n".join(lines), limits, "analyse a part of the statement (a subquery or CTE) alone")


def _node_lines(node: Mapping[str, Any], depth: int, lines: list[str]) -> None:
    lines.append("  " * depth + node_summary(node))
    for child in node.get("Plans", []):
        _node_lines(child, depth + 1, lines)


def node_label(node: Mapping[str, Any]) -> str:
    label = str(node.get("Node Type", "?"))
    if node.get("Join Type"):
        label = f"{node['Join Type']} {label}"
    if node.get("Relation Name"):
        schema = node.get("Schema")
        label += " on " + (
            qualified(schema, node["Relation Name"]) if schema else quote_ident(node["Relation Name"])
        )
    if node.get("Index Name"):
        label += f" using {node['Index Name']}"
    if node.get("CTE Name"):
        label += f" of CTE {node['CTE Name']}"
    return label


def node_summary(node: Mapping[str, Any]) -> str:
    """One node: label, actual vs estimated rows, time, buffers, and its conditions (cut)."""
    loops = int(node.get("Actual Loops") or 0)
    details: list[str] = []
    if loops == 0:
        details.append(f"never executed; est {node.get('Plan Rows')} rows")
    else:
        actual = float(node.get("Actual Rows") or 0)
        estimate = float(node.get("Plan Rows") or 0)
        rows = f"{actual:,.0f}" + (f" x {loops:,} loops" if loops > 1 else "")
        details.append(f"rows {rows} (est {estimate:,.0f}){_misestimate(actual, estimate)}")
        details.append(_ms(float(node.get("Actual Total Time") or 0) * loops))
    hit, read = node.get("Shared Hit Blocks", 0), node.get("Shared Read Blocks", 0)
    if hit or read:
        details.append(f"shared hit {hit:,} read {read:,}")
    temp = int(node.get("Temp Read Blocks", 0) or 0) + int(node.get("Temp Written Blocks", 0) or 0)
    if temp:
        details.append(f"temp {temp:,} blocks")
    if node.get("Rows Removed by Filter"):
        details.append(f"removed by filter {node['Rows Removed by Filter']:,}")
    if node.get("Sort Method"):
        details.append(
            f"sort {node['Sort Method']} {node.get('Sort Space Used', '?')} kB {node.get('Sort Space Type', '')}".rstrip()
        )
    for key in ("Index Cond", "Hash Cond", "Merge Cond", "Recheck Cond", "Filter", "Join Filter"):
        if node.get(key):
            details.append(f"{key.lower()}: {_clip(str(node[key]), 120)}")
    return f"{node_label(node)} ({'; '.join(details)})"


def _misestimate(actual: float, estimate: float) -> str:
    low, high = sorted((max(actual, 1.0), max(estimate, 1.0)))
    return f" ⚠ {high / low:,.0f}x off" if high / low >= ESTIMATE_OFF else ""


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
