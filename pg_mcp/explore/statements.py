"""query and explain: a caller's statement through the guard, the plan check and the one executor."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

from pg_mcp.database.session import Judge, NeedsGeneralTurn, PreparedStatement, QueryResult, Session
from pg_mcp.errors import InvalidArgumentError, QueryError
from pg_mcp.explore.context import DatabaseContext, ToolOutput
from pg_mcp.guard import CheckedQuery, GuardPolicy, StaleReach, check_query_async, judge_analysis
from pg_mcp.guard.access import check_plan, statistics_allowed
from pg_mcp.guard.analysed import CatalogReach
from pg_mcp.guard.plan import check_budget, check_plan_calls
from pg_mcp.operator_tools import TYPES, ToolDefinition
from pg_mcp.render.catalog_text import render_plan
from pg_mcp.render.results import bounded_structured, render_result

T = TypeVar("T")


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
    result = await _run(ctx, checked, policy)
    name, most = row_argument or ("max_rows", ctx.settings.max_rows_limit)
    rendered = render_result(result, rows_cap, ctx.limits, most, name)
    return ToolOutput(rendered.text, rendered.structured)


async def run_tool(ctx: DatabaseContext, tool: ToolDefinition, arguments: dict[str, Any]) -> ToolOutput:
    """An operator's tool: its statement (checked by the guard with its parameters as parameters) run
    as `query` runs a caller's, with the arguments bound to `$1`, `$2` …, never spliced into the text."""
    try:
        values = tool.values(arguments)
    except ValueError as exc:
        raise InvalidArgumentError(f"{tool.name}: {exc}.", "Check the tool's input schema.") from None
    rows_cap = tool.max_rows or ctx.settings.max_rows
    policy = replace(await ctx.guard_policy(), parameters=len(tool.parameters))
    await ctx.access_policy()
    checked = await check_query_async(tool.sql, rows_cap, policy)
    result = await _run(ctx, checked, policy, values, tool)
    rendered = render_result(result, rows_cap, ctx.limits, rows_cap, "max_rows")
    return ToolOutput(rendered.text, rendered.structured)


async def _run(
    ctx: DatabaseContext,
    checked: CheckedQuery,
    policy: GuardPolicy,
    values: tuple[Any, ...] = (),
    tool: ToolDefinition | None = None,
) -> QueryResult:
    """Judge, plan, check the plan, then run: one read-only call."""

    async def plan_check_run(session: Session, judge: Judge) -> QueryResult:
        statement = await judged_statement(session, checked, judge)
        if tool is not None:
            _check_parameter_types(tool, statement)
        plan = await session.explain(checked.sql, checked, args=values)  # the plan whose cost is the call's
        check_plan_of(ctx, plan, policy, checked)
        session.keep_turn_for(plan)
        return await session.run(statement, checked, values)

    return await in_judged_call(ctx, checked, plan_check_run, short=True)


def _check_parameter_types(tool: ToolDefinition, statement: PreparedStatement) -> None:
    """PostgreSQL reads each `$n` with a type of its own: it must be the one the tool declares (a text
    value also suits a type of the database's own, an enum or a domain, whose input is text)."""
    for parameter, read in zip(tool.parameters, statement.get_parameters(), strict=False):
        own_type = read.schema != "pg_catalog" and parameter.type == "text"
        if read.name not in TYPES[parameter.type].postgres and not own_type:
            raise QueryError(
                f"The tool {tool.name} declares its parameter {parameter.name} as {parameter.type}, but "
                f"PostgreSQL reads it as {read.name}.",
                f"In the tool's sql, write the parameter with a cast: ${tool.parameters.index(parameter) + 1}"
                f"::{parameter.type}.",
            )


async def explain(ctx: DatabaseContext, sql: str) -> ToolOutput:
    """The planner's plan for a guard-approved statement; EXPLAIN without ANALYZE never executes it."""
    policy = await ctx.guard_policy()
    await ctx.access_policy()
    checked = await check_query_async(sql, 1, policy)

    async def plan(session: Session, judge: Judge) -> dict[str, Any]:
        await judged_statement(session, checked, judge)  # the bounded statement, as query would run it
        return await session.explain(checked.statement, checked)

    found = await in_judged_call(ctx, checked, plan, short=False)
    check_plan_of(ctx, found, policy, checked, budget=False)
    budget = (
        f"Budget: query refuses a statement whose plan (capped at max_rows) costs more than "
        f"{ctx.budget.max_cost:,.0f} (PG_MCP_MAX_COST) or feeds more than {ctx.budget.max_rows:,.0f} rows "
        "into one aggregate or sort (PG_MCP_MAX_PLAN_ROWS); 0 means no limit."
    )
    text = render_plan(found, ctx.limits) + "\n" + budget
    return ToolOutput(text, bounded_structured({"plan": found}, ctx.limits))


def _statistics(ctx: DatabaseContext, checked: CheckedQuery) -> bool:
    """Whether the statement's planner statistics are all of tables and columns the limits allow."""
    return ctx.access.active and statistics_allowed(ctx.access, checked.statistics_of)


def check_plan_of(
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


async def judged_statement(session: Session, checked: CheckedQuery, judge: Judge) -> PreparedStatement:
    """`checked.sql` prepared, once `judge` accepted PostgreSQL's analysis of it (judged even when
    preparing failed: a refusal says more than the failure)."""
    analysis = await session.analyse(checked.sql, checked)
    if analysis.failure is not None and analysis.tree is not None:
        await judge(analysis.tree)
    statement = analysis.prepared()
    await judge(analysis.tree_or_refusal())
    return statement


async def in_judged_call(
    ctx: DatabaseContext,
    checked: CheckedQuery,
    steps: Callable[[Session, Judge], Awaitable[T]],
    *,
    short: bool,
) -> T:
    """`steps` in one analysed call, with a judge of PostgreSQL's analysis (pg_mcp.guard.analysed).

    Run again, once each: with the catalog model read afresh when the analysis names an object the
    model has not seen (StaleReach), and on a general turn when a call begun on a short one finds its
    statement expensive (NeedsGeneralTurn)."""
    statistics = _statistics(ctx, checked)
    for fresh in (False, True):
        reach = await ctx.reach(fresh=fresh)

        async def judge(tree: str, reach: CatalogReach = reach, fresh: bool = fresh) -> None:
            await judge_analysis(
                tree, reach, limits_active=ctx.access.active, fresh=fresh, statistics=statistics
            )

        try:
            try:
                async with ctx.db.call(short=short, analysed=True) as session:
                    return await steps(session, judge)
            except NeedsGeneralTurn:
                async with ctx.db.call(short=False, analysed=True) as session:
                    return await steps(session, judge)
        except StaleReach:
            continue
    raise AssertionError("unreachable: a fresh model is never stale")
