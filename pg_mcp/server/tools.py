"""The tools: each a short function of the database the caller chose and its own arguments.

`bind_database` turns one into the function the SDK registers: the same arguments plus `database`,
and a body that resolves the database, audits the call and turns any error into a tool error (the
`run` the server gives it). The SDK builds the input schema from that signature and the output schema
from the output model, so each argument is written once, here.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, get_type_hints

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from pg_mcp import explore
from pg_mcp.database.records import (
    ColumnStatistics,
    Edge,
    NoteHit,
    SchemaSummary,
    SearchHit,
    TableDescription,
    TableSummary,
)
from pg_mcp.operator_tools import ToolDefinition

if TYPE_CHECKING:
    from pg_mcp.explore import DatabaseContext, ToolOutput

READ_ONLY = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)


# Output models carry no docstring (it would be repeated in every tools/list); their nested records'
# definitions are written inline (`app._compact_schemas`), so a client resolves no $ref.
class QueryOutput(BaseModel):
    columns: list[dict[str, str]]  # {"name": ..., "type": PostgreSQL type}
    rows: list[list[Any]]
    row_count: int
    truncated: bool
    note: str


class _Open(BaseModel):
    # Structured output may also carry `truncated` and `cut` when it was shortened to the byte budget.
    model_config = ConfigDict(extra="allow")


class SchemasOutput(_Open):
    schemas: list[SchemaSummary]


class TablesOutput(_Open):
    tables: list[TableSummary]
    truncated: bool
    offset: int | None = None
    total: int | None = None
    schemas: list[SchemaSummary] | None = None


class DescriptionOutput(TableDescription):
    # A description cut to the byte budget may lose a long field (None) and say so.
    model_config = ConfigDict(extra="allow")
    definition: str | None = None


class SearchOutput(_Open):
    hits: list[SearchHit | NoteHit]


class RelationshipsOutput(_Open):
    scope: str
    foreign_keys: list[Edge]


class StatsOutput(_Open):
    table: str
    estimated_rows: int | None
    columns: list[ColumnStatistics]


class PlanOutput(_Open):
    plan: dict[str, Any] | None


#: Argument types with the description a client shows for them.
Sql = Annotated[str, Field(description="One read-only SQL statement, PostgreSQL dialect.")]
MaxRows = Annotated[int | None, Field(description="Most rows to return; leave out for the server's default.")]
TableName = Annotated[
    str, Field(description='A table or view: orders, sales.orders or a quoted name like sales."Gift Cards".')
]
OptionalTable = Annotated[str | None, Field(description="A table or view, as for describe_table.")]
SchemaName = Annotated[str | None, Field(description="The schema, when the table name is not qualified.")]
OnlySchema = Annotated[str | None, Field(description="Only this schema; leave out for every exposed schema.")]
Offset = Annotated[int, Field(description="Skip this many tables: the offset the previous page gave.")]
Pattern = Annotated[
    str, Field(description="Part of a table, column or comment to look for (case-insensitive).")
]
SampleSize = Annotated[int, Field(description="How many rows, 1 to 100.")]
ColumnName = Annotated[str | None, Field(description="One column; leave out for every column.")]
#: Described per server (the configured names and the default) by the server (`with_database_argument`).
DatabaseName = Annotated[str | None, Field(description="Which database.")]


Run = Callable[
    [
        str,
        "str | None",
        dict[str, Any],
        "Callable[[DatabaseContext], Awaitable[ToolOutput]]",
        "Context[None, Any] | None",
    ],
    Awaitable[CallToolResult],
]
"""What the server does around a tool: resolve the database, report progress, audit, convert errors
(`build_server`); the last argument is the SDK's Context of the request."""

#: The name under which the SDK passes a tool call its request's Context.
REQUEST_CONTEXT = "mcp_request_context"


@dataclass(frozen=True)
class Tool:
    """A tool's body (a function of the DatabaseContext and the tool's own arguments) and its output."""

    body: Callable[..., Awaitable[ToolOutput]]
    output: type[BaseModel]
    database: str | None = None
    """The one database the tool runs on (an operator's tool); None: the caller chooses (`database`)."""

    @property
    def name(self) -> str:
        return self.body.__name__


def bind_database(tool: Tool, run: Run) -> Callable[..., Awaitable[CallToolResult]]:
    """The function the SDK registers for `tool`: its arguments plus `database`, run through `run`."""
    # The context and the result are only named for type checkers (importing them would load the driver
    # before `initialize` is answered); the arguments' types are what the schema needs.
    hints = get_type_hints(
        tool.body, localns={"DatabaseContext": Any, "ToolOutput": Any}, include_extras=True
    )
    own = list(inspect.signature(tool.body).parameters.values())[1:]  # after the DatabaseContext
    parameters = [p.replace(annotation=hints[p.name], kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
    if tool.database is None:
        parameters.append(
            inspect.Parameter(
                "database", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=DatabaseName
            )
        )

    defaults = {p.name: p.default for p in own}

    async def call(**arguments: Any) -> CallToolResult:
        request = arguments.pop(REQUEST_CONTEXT, None)
        database = arguments.pop("database", None) if tool.database is None else tool.database
        audited = {name: value for name, value in arguments.items() if value != defaults.get(name)}
        return await run(tool.name, database, audited, lambda ctx: tool.body(ctx, **arguments), request)

    call.__name__ = tool.name
    # The SDK hands the request's Context (progress, cancellation) to the parameter annotated with it.
    call.__annotations__ = {REQUEST_CONTEXT: Context, "return": CallToolResult}
    call.__doc__ = described(tool.body.__doc__ or "")
    call.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        parameters, return_annotation=Annotated[CallToolResult, tool.output]
    )
    return call


def operator_tool(definition: ToolDefinition) -> Tool:
    """An operator's tool (`[tools.NAME]`): its parameters are its arguments, its rows its output, as
    for query; it runs on its own database."""

    async def body(ctx: DatabaseContext, **arguments: Any) -> ToolOutput:
        return await explore.run_tool(ctx, definition, arguments)

    body.__name__ = definition.name
    body.__doc__ = definition.description
    body.__annotations__ = {p.name: p.annotation() for p in definition.parameters}
    context = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    body.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [context]
        + [
            inspect.Parameter(
                p.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=inspect.Parameter.empty if p.required else p.default,
                annotation=p.annotation(),
            )
            for p in definition.parameters
        ]
    )
    return Tool(body, QueryOutput, definition.database)


def described(docstring: str) -> str:
    """A docstring as a tool description: paragraphs kept, each on one line (a client wraps it)."""
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in inspect.cleandoc(docstring).split("\n\n"))


async def query(ctx: DatabaseContext, sql: Sql, max_rows: MaxRows = None) -> ToolOutput:
    """Run one read-only PostgreSQL statement (SELECT, WITH ... SELECT, VALUES, TABLE); returns its rows.

    Writes, DDL, locks and side-effecting functions are refused. Rows are capped at max_rows; the
    last line says how many rows and whether any were cut. Prefer aggregates and WHERE filters;
    quote mixed-case names ("Gift Cards").
    """
    return await explore.query(ctx, sql, max_rows)


async def list_schemas(ctx: DatabaseContext) -> ToolOutput:
    """List the database schemas you can read, with their table counts and comments. Start here."""
    return await explore.list_schemas(ctx)


async def list_tables(ctx: DatabaseContext, schema: OnlySchema = None, offset: Offset = 0) -> ToolOutput:
    """List tables, views, materialized views and foreign tables with estimated rows and comments.

    200 at a time (the last line gives the next offset); a catalog too big for that is summarised per
    schema. Partitions are folded into their parent.
    """
    return await explore.list_tables(ctx, schema, offset)


async def describe_table(ctx: DatabaseContext, table: TableName, schema: SchemaName = None) -> ToolOutput:
    """Describe one table or view: columns (type, nullability, default, comment, enum values), keys in
    both directions, unique and check constraints, indexes, estimated rows. Call it before querying a
    table you have not seen.
    """
    return await explore.describe_table(ctx, table, schema)


async def search_schema(ctx: DatabaseContext, pattern: Pattern) -> ToolOutput:
    """Find tables, views and columns whose name or comment contains pattern (case-insensitive), best
    first: for a concept ("churn", "invoice") you cannot place yet. Searches the operator's
    descriptions and glossary terms too.
    """
    return await explore.search_schema(ctx, pattern)


async def relationships(
    ctx: DatabaseContext, table: OptionalTable = None, schema: OnlySchema = None
) -> ToolOutput:
    """Foreign keys around a table (both directions) or within a schema, as `a(col) → b(col)`: the
    join conditions to use. With neither argument, every foreign key in the exposed schemas.
    """
    return await explore.relationships(ctx, table, schema)


async def sample_rows(
    ctx: DatabaseContext, table: TableName, n: SampleSize = 10, schema: SchemaName = None
) -> ToolOutput:
    """A few rows of a table (n, default 10, at most 100) to see what the values look like. Cheap on
    huge tables: it samples blocks instead of scanning.
    """
    return await explore.sample_rows(ctx, table, n, schema)


async def column_stats(
    ctx: DatabaseContext, table: TableName, column: ColumnName = None, schema: SchemaName = None
) -> ToolOutput:
    """What values a column holds, from the planner's statistics: null fraction, distinct count, most
    common values, min/quartiles/max. Use it for exact filter values (a status's spelling) without a scan.
    """
    return await explore.column_stats(ctx, table, column, schema)


async def explain(ctx: DatabaseContext, sql: Sql) -> ToolOutput:
    """The execution plan PostgreSQL would use for a read-only statement, without running it:
    node types, estimated rows and cost, indexes used. Check a query that may be heavy before
    running it with query.
    """
    return await explore.explain(ctx, sql)


#: Every tool, in the order tools/list gives them.
TOOLS = (
    Tool(query, QueryOutput),
    Tool(list_schemas, SchemasOutput),
    Tool(list_tables, TablesOutput),
    Tool(describe_table, DescriptionOutput),
    Tool(search_schema, SearchOutput),
    Tool(relationships, RelationshipsOutput),
    Tool(sample_rows, QueryOutput),
    Tool(column_stats, StatsOutput),
    Tool(explain, PlanOutput),
)
