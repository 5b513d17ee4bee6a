"""The DBA insight tools: slow statements, index, table and database health, and timed plans.

Everything is read-only. The first four read statistics views and the catalog through the fixed
queries of pg_mcp.database.insight. `explain_analyze` executes a caller's statement: exactly the path
`query` takes (the guard, PostgreSQL's analysis judged, the plan checked against the operator's
limits and the cost budget), then EXPLAIN ANALYZE of the same bounded statement in the same
read-only transaction, which is rolled back.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, get_args

from pg_mcp.database import insight
from pg_mcp.database.insight import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    OTHER_SESSIONS,
    AnalyzedPlan,
    PlanNodeTiming,
    StatementOrder,
    TableOrder,
)
from pg_mcp.database.session import Judge, Session
from pg_mcp.errors import InvalidArgumentError
from pg_mcp.explore.context import DatabaseContext, ToolOutput
from pg_mcp.explore.statements import check_plan_of, in_judged_call, judged_statement
from pg_mcp.guard import check_query_async
from pg_mcp.render.insight_text import (
    node_label,
    render_analyzed_plan,
    render_database_health,
    render_index_health,
    render_statements,
    render_table_health,
)
from pg_mcp.render.results import bounded_structured

#: Index findings listed per kind by default.
DEFAULT_INDEX_LIMIT = 20
#: Plan nodes listed in the structured content (the text lists every node, within the byte budget).
MAX_PLAN_NODES = 200


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgumentError(
            f"limit must be between 1 and {MAX_LIMIT}, not {limit}.", "Leave it out for the default."
        )
    return limit


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InvalidArgumentError(f"{name} must be one of {', '.join(allowed)}, not {value!r}.")


def _now() -> datetime:
    return datetime.now(UTC)


async def _schema(ctx: DatabaseContext, schema: str | None) -> str | None:
    return None if schema is None else await ctx.catalog.resolve_schema(schema)


async def slow_queries(
    ctx: DatabaseContext, order_by: StatementOrder = "total_time", limit: int = DEFAULT_LIMIT
) -> ToolOutput:
    """The statements that took the most time (or ran most often) by pg_stat_statements; other roles'
    texts only when the operator allows `other_sessions`."""
    _choice("order_by", order_by, get_args(StatementOrder))
    access = await ctx.access_policy()
    report = await insight.top_statements(
        ctx.db,
        access,
        order_by=order_by,
        limit=_limit(limit),
        other_roles=OTHER_SESSIONS in ctx.settings.allow_secrets,
    )
    text = render_statements(report, _now(), ctx.limits)
    return ToolOutput(text, bounded_structured(report.as_json(), ctx.limits))


async def index_health(
    ctx: DatabaseContext, schema: str | None = None, limit: int = DEFAULT_INDEX_LIMIT
) -> ToolOutput:
    """Unused, duplicate and invalid indexes and foreign keys without an index, of the exposed tables."""
    access = await ctx.access_policy()
    report = await insight.index_health(
        ctx.db, access, schema=await _schema(ctx, schema), limit=_limit(limit)
    )
    text = render_index_health(report, _now(), ctx.limits)
    return ToolOutput(text, bounded_structured(report.as_json(), ctx.limits))


async def table_health(
    ctx: DatabaseContext,
    order_by: TableOrder = "dead_rows",
    limit: int = DEFAULT_LIMIT,
    schema: str | None = None,
) -> ToolOutput:
    """Dead rows, vacuum and analyze times, estimated bloat and sequential scans of the exposed tables."""
    _choice("order_by", order_by, get_args(TableOrder))
    access = await ctx.access_policy()
    report = await insight.table_health(
        ctx.db, access, order_by=order_by, schema=await _schema(ctx, schema), limit=_limit(limit)
    )
    text = render_table_health(report, _now(), ctx.limits)
    return ToolOutput(text, bounded_structured(report.as_json(), ctx.limits))


async def database_health(ctx: DatabaseContext) -> ToolOutput:
    """Cache hit ratios, transaction counters, connections and locks; no session's SQL."""
    await ctx.access_policy()
    health = await insight.database_health(ctx.db)
    text = render_database_health(health, _now(), ctx.limits)
    return ToolOutput(text, bounded_structured(health.as_json(), ctx.limits))


async def explain_analyze(ctx: DatabaseContext, sql: str, max_rows: int | None = None) -> ToolOutput:
    """EXPLAIN (ANALYZE, BUFFERS) of a statement the guard accepts, run as `query` would run it.

    The statement is checked exactly as `query` checks it (the guard, PostgreSQL's analysis, the plan
    against the operator's limits and the cost budget), then executed under EXPLAIN ANALYZE in the
    same read-only transaction, within the statement timeout, and rolled back. What runs is the
    bounded statement (at most max_rows + 1 rows), so its plan may differ from the unbounded one.
    The executed plan is checked again before it is shown.
    """
    rows_cap = ctx.rows_cap(max_rows)
    policy = await ctx.guard_policy()
    await ctx.access_policy()
    checked = await check_query_async(sql, rows_cap, policy)

    async def checked_then_analysed(session: Session, judge: Judge) -> dict[str, Any]:
        await judged_statement(session, checked, judge)
        plan = await session.explain(checked.sql, checked)  # the plan whose cost is the call's
        check_plan_of(ctx, plan, policy, checked)
        session.keep_turn_for(plan)
        return await session.explain_analyze(checked.sql, checked)

    explained = await in_judged_call(ctx, checked, checked_then_analysed, short=True)
    check_plan_of(ctx, explained["Plan"], policy, checked, budget=False)  # what ran, before it is shown
    text = render_analyzed_plan(explained, rows_cap, ctx.limits)
    record = analyzed_plan(explained, rows_cap)
    return ToolOutput(text, bounded_structured(record.as_json(), ctx.limits))


def analyzed_plan(explained: Mapping[str, Any], row_cap: int) -> AnalyzedPlan:
    """The record of an analysed plan: its nodes flattened in plan order, and the plan without its
    VERBOSE output lists (the checks read them; a reader needs them rarely, and they are long)."""
    nodes: list[PlanNodeTiming] = []
    total = _flatten(explained.get("Plan", {}), 0, nodes)
    planning, execution = explained.get("Planning Time"), explained.get("Execution Time")
    return AnalyzedPlan(
        planning_ms=float(planning) if planning is not None else None,
        execution_ms=float(execution) if execution is not None else None,
        row_cap=row_cap,
        nodes=nodes,
        nodes_total=total,
        plan=_without_output(explained.get("Plan", {})),
    )


def _flatten(node: Mapping[str, Any], depth: int, into: list[PlanNodeTiming]) -> int:
    """Append `node` and its descendants (while fewer than MAX_PLAN_NODES); return how many there are."""
    if len(into) < MAX_PLAN_NODES:
        loops = int(node.get("Actual Loops") or 0)
        actual = node.get("Actual Rows")
        time = node.get("Actual Total Time")
        into.append(
            PlanNodeTiming(
                depth=depth,
                node=node_label(node),
                actual_rows=float(actual) if actual is not None and loops else None,
                loops=loops,
                estimated_rows=float(node["Plan Rows"]) if node.get("Plan Rows") is not None else None,
                total_ms=float(time) * loops if time is not None and loops else None,
                shared_hit_blocks=int(node.get("Shared Hit Blocks", 0) or 0),
                shared_read_blocks=int(node.get("Shared Read Blocks", 0) or 0),
            )
        )
    return 1 + sum(_flatten(child, depth + 1, into) for child in node.get("Plans", []))


def _without_output(node: Mapping[str, Any]) -> dict[str, Any]:
    kept = {key: value for key, value in node.items() if key not in ("Output", "Plans")}
    if node.get("Plans"):
        kept["Plans"] = [_without_output(child) for child in node["Plans"]]
    return kept
