"""The DBA insight tools, offered when an operator turns them on for a database (`insight = true`).

Their output models are the insight records, which load the driver: this module is imported only by
a server that offers them, after its settings said so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import ConfigDict, Field

from pg_mcp.database.insight import (
    AnalyzedPlan,
    DatabaseHealth,
    IndexHealth,
    StatementOrder,
    StatementsReport,
    TableHealthReport,
    TableOrder,
)
from pg_mcp.errors import InvalidArgumentError
from pg_mcp.explore import insight_tools as insight
from pg_mcp.server.tools import MaxRows, OnlySchema, Sql, Tool

if TYPE_CHECKING:
    from pg_mcp.explore import DatabaseContext, ToolOutput


# A byte cut may add `truncated` and `cut` to any of these answers.
class SlowQueriesOutput(StatementsReport):
    model_config = ConfigDict(extra="allow")


class IndexHealthOutput(IndexHealth):
    model_config = ConfigDict(extra="allow")


class TableHealthOutput(TableHealthReport):
    model_config = ConfigDict(extra="allow")


class DatabaseHealthOutput(DatabaseHealth):
    model_config = ConfigDict(extra="allow")


class AnalyzedPlanOutput(AnalyzedPlan):
    model_config = ConfigDict(extra="allow")


StatementRanking = Annotated[
    StatementOrder,
    Field(
        description="total_time: where the time goes (default); mean_time: slowest per call; calls: most run."
    ),
]
TableRanking = Annotated[
    TableOrder,
    Field(
        description="dead_rows (default), dead_ratio (tables of 1,000 rows or more), bloat (estimated), "
        "seq_reads (rows read by sequential scans) or size."
    ),
]
Limit = Annotated[int, Field(description="How many, 1 to 50.")]
IndexLimit = Annotated[int, Field(description="How many of each kind of finding, 1 to 50.")]


def _insight_on(ctx: DatabaseContext) -> None:
    """The insight tools answer only for a database whose operator turned them on."""
    if not ctx.settings.insight:
        raise InvalidArgumentError(
            f"The DBA insight tools are off for the database {ctx.name}.",
            "An operator turns them on with insight = true in its [databases.NAME] table, or with "
            "PG_MCP_INSIGHT=true.",
        )


async def slow_queries(
    ctx: DatabaseContext, order_by: StatementRanking = "total_time", limit: Limit = 10
) -> ToolOutput:
    """The statements that take the most time in this database, from pg_stat_statements: calls, total,
    mean and max time, rows, cache hits and role for each, with its text (normalised: constants as $n;
    cut at 500 characters). Says how to install pg_stat_statements when it is missing.

    Texts are shown for the connected role's own statements only (pg-mcp's own reads among them);
    other roles' are withheld unless the operator allows the other_sessions secret. Then check a
    statement's plan with explain_analyze.
    """
    _insight_on(ctx)
    return await insight.slow_queries(ctx, order_by, limit)


async def index_health(ctx: DatabaseContext, schema: OnlySchema = None, limit: IndexLimit = 20) -> ToolOutput:
    """Index problems of the exposed tables: unused indexes (no scans since statistics were reset; not
    unique, backing no constraint) with their size, duplicate indexes, invalid indexes, and foreign keys
    no index leads with. Each with the statement that fixes it, for a person to review and run: this
    tool changes nothing.
    """
    _insight_on(ctx)
    return await insight.index_health(ctx, schema, limit)


async def table_health(
    ctx: DatabaseContext, order_by: TableRanking = "dead_rows", limit: Limit = 10, schema: OnlySchema = None
) -> ToolOutput:
    """Vacuum and scan health of the exposed tables (partitions and materialized views included): dead
    rows and their share, last vacuum, autovacuum, analyze and autoanalyze, estimated bloat (from the
    planner's statistics: an estimate), sequential against index scans. Findings come with what to do.
    """
    _insight_on(ctx)
    return await insight.table_health(ctx, order_by, limit, schema)


async def database_health(ctx: DatabaseContext) -> ToolOutput:
    """The database's health at a glance: cache hit ratios, commits, rollbacks, deadlocks and temp files;
    client sessions by state, role, application and wait event; the oldest transactions and snapshots;
    locks held and waited for, and blocked sessions. No session's SQL is shown.
    """
    _insight_on(ctx)
    return await insight.database_health(ctx)


async def explain_analyze(ctx: DatabaseContext, sql: Sql, max_rows: MaxRows = None) -> ToolOutput:
    """Run a read-only statement under EXPLAIN (ANALYZE, BUFFERS) and show, per plan node, actual rows
    against the estimate, time, and buffers hit and read; estimates 10x off are pointed out.

    It executes the statement: checked exactly as query checks it (writes and side effects refused,
    the cost budget applied), then run in a read-only transaction that is rolled back, within the
    statement timeout and capped at max_rows rows as query runs it. Use explain to see a plan
    without running it.
    """
    _insight_on(ctx)
    return await insight.explain_analyze(ctx, sql, max_rows)


#: The DBA insight tools, in the order tools/list gives them after the others.
INSIGHT_TOOLS = (
    Tool(slow_queries, SlowQueriesOutput),
    Tool(index_health, IndexHealthOutput),
    Tool(table_health, TableHealthOutput),
    Tool(database_health, DatabaseHealthOutput),
    Tool(explain_analyze, AnalyzedPlanOutput),
)
