"""query and explain: a caller's statement through the guard, the plan check and the one executor."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from pg_mcp.database.executor import QueryResult
from pg_mcp.explore.context import DatabaseContext, ToolOutput
from pg_mcp.guard import CheckedQuery, GuardPolicy, StaleReach, check_query_async, judge_analysis
from pg_mcp.guard.access import check_plan, statistics_allowed
from pg_mcp.guard.analysed import CatalogReach
from pg_mcp.guard.plan import check_budget, check_plan_calls
from pg_mcp.render.catalog_text import render_plan
from pg_mcp.render.results import bounded_structured, render_result


async def query(
    ctx: DatabaseContext,
    sql: str,
    max_rows: int | None = None,
    *,
    row_argument: tuple[str, int] | None = None,
) -> ToolOutput:
    """Guard, execute and render one read-only statement; `row_argument` names the calling tool's
    row-count argument and its largest value, for the truncation note."""
    rows_cap = ctx.rows_cap(max_rows)
    policy = await ctx.guard_policy()
    await ctx.access_policy()
    checked = await check_query_async(sql, rows_cap, policy)
    result = await _run_judged(
        ctx, checked, inspect_plan=lambda plan: _check_plan(ctx, plan, policy, checked)
    )
    name, most = row_argument or ("max_rows", ctx.settings.max_rows_limit)
    rendered = render_result(result, rows_cap, ctx.limits, most, name)
    return ToolOutput(rendered.text, rendered.structured)


async def explain(ctx: DatabaseContext, sql: str) -> ToolOutput:
    """The planner's plan for a guard-approved statement; EXPLAIN without ANALYZE never executes it."""
    policy = await ctx.guard_policy()
    await ctx.access_policy()
    checked = await check_query_async(sql, 1, policy)
    plan = await _plan(ctx, checked, verbose=True)
    _check_plan(ctx, plan, policy, checked, budget=False)
    budget = (
        f"Budget: query refuses a statement whose plan (capped at max_rows) costs more than "
        f"{ctx.budget.max_cost:,.0f} (PG_MCP_MAX_COST) or feeds more than {ctx.budget.max_rows:,.0f} rows "
        "into one aggregate or sort (PG_MCP_MAX_PLAN_ROWS); 0 means no limit."
    )
    text = render_plan(plan, ctx.limits) + "\n" + budget
    return ToolOutput(text, bounded_structured({"plan": plan}, ctx.limits))


def _statistics(ctx: DatabaseContext, checked: CheckedQuery) -> bool:
    """Whether the statement's planner statistics are all of tables and columns the limits allow."""
    return ctx.access.active and statistics_allowed(ctx.access, checked.statistics_of)


def _check_plan(
    ctx: DatabaseContext,
    plan: dict[str, Any],
    policy: GuardPolicy,
    checked: CheckedQuery,
    *,
    budget: bool = True,
) -> None:
    """What only the plan shows: functions views call, secrets, operator limits, the cost budget."""
    check_plan_calls(plan, policy, harmless_settings=checked.harmless_settings)
    check_plan(plan, ctx.access, statistics=_statistics(ctx, checked))  # TOAST is refused even without limits
    if budget:
        check_budget(plan, ctx.budget, checked.recursion)


async def _plan(ctx: DatabaseContext, checked: CheckedQuery, *, verbose: bool) -> dict[str, Any]:
    """The planner's plan for guard-approved text."""
    explain = replace(
        checked,
        sql=f"EXPLAIN (FORMAT JSON, VERBOSE {str(verbose).lower()})\n{checked.statement}",
        cap_cells=False,
    )
    result = await _run_judged(ctx, explain, judge_first=checked.sql)
    plan: dict[str, Any] = json.loads(result.rows[0][0])[0]["Plan"]
    return plan


async def _run_judged(
    ctx: DatabaseContext,
    checked: CheckedQuery,
    *,
    judge_first: str | None = None,
    inspect_plan: Callable[[dict[str, Any]], None] | None = None,
) -> QueryResult:
    """Run a statement whose PostgreSQL analysis is judged before it is planned (pg_mcp.guard.analysed);
    when the analysis names an object the catalog model has not seen, the model is read again and the
    statement judged afresh, once."""
    statistics = _statistics(ctx, checked)
    for fresh in (False, True):
        reach = await ctx.reach(fresh=fresh)

        async def judge(tree: str, reach: CatalogReach = reach, fresh: bool = fresh) -> None:
            await judge_analysis(
                tree, reach, limits_active=ctx.access.active, fresh=fresh, statistics=statistics
            )

        try:
            return await ctx.db.run_query(
                checked, judge=judge, judge_first=judge_first, inspect_plan=inspect_plan
            )
        except StaleReach:
            continue
    raise AssertionError("unreachable: a fresh model is never stale")
