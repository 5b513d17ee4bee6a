"""MCP wiring: tools, resources and their descriptions. No logic beyond error conversion."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from mcp_types import (
    CallToolResult,
    ListResourcesResult,
    PaginatedRequestParams,
    Resource,
    TextContent,
    ToolAnnotations,
)
from pydantic import BaseModel

from pg_mcp import __version__
from pg_mcp.config import Settings
from pg_mcp.db import Database
from pg_mcp.errors import PgMcpError
from pg_mcp.tools import Explorer, ToolOutput

log = logging.getLogger(__name__)

INSTRUCTIONS = """\
Read-only access to a PostgreSQL database. Orient with list_schemas and list_tables, read a
table's columns, keys and relationships with describe_table, then answer with one SELECT through
query. Results are capped (the last line always says whether rows were cut). Nothing you run can
change the database."""

READ_ONLY = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)


class ColumnOut(BaseModel):
    name: str
    type: str


class QueryOutput(BaseModel):
    columns: list[ColumnOut]
    rows: list[list[Any]]
    row_count: int
    truncated: bool
    note: str


class PgMcpServer(MCPServer[None]):
    """MCPServer whose resource list is read from the database page by page (cursor pagination)."""

    def __init__(self, explorer: Explorer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.explorer = explorer

    async def _handle_list_resources(
        self, ctx: ServerRequestContext[None], params: PaginatedRequestParams | None
    ) -> ListResourcesResult:
        try:
            entries, next_cursor = await self.explorer.resource_page(params.cursor if params else None)
        except PgMcpError as exc:
            raise ResourceError(str(exc)) from None
        resources = [
            Resource(uri=e.uri, name=e.name, description=e.description, mime_type="text/plain")
            for e in entries
        ]
        return ListResourcesResult(resources=resources, next_cursor=next_cursor)


async def _tool_call(call: Callable[[], Awaitable[ToolOutput]]) -> CallToolResult:
    """Run a tool; our errors become tool errors with their message, anything else a message without internals."""
    try:
        output = await call()
    except PgMcpError as exc:
        return _error(str(exc))
    except Exception as exc:  # never show a traceback or internals to the client
        log.error("internal error in a tool: %s", type(exc).__name__)
        return _error(
            f"Internal error ({type(exc).__name__}); the server is still running. Try again or simplify."
        )
    return CallToolResult(
        content=[TextContent(type="text", text=output.text)], structured_content=output.structured
    )


def _error(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


def build_server(settings: Settings, db: Database | None = None) -> PgMcpServer:
    """The MCP server over one database; the pool is created at start-up (or at the first call)."""
    database = db or Database(settings)
    explorer = Explorer(settings, database)

    @asynccontextmanager
    async def lifespan(_: MCPServer[None]) -> AsyncIterator[None]:
        try:
            await database.connect()
            log.info("connected to %s", settings.safe_dsn)
        except PgMcpError as exc:
            log.error("database not reachable yet: %s", exc)
        try:
            yield None
        finally:
            await database.close()

    app = PgMcpServer(
        explorer,
        name="pg-mcp",
        title="PostgreSQL (read-only)",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        log_level=settings.log_level,
    )

    @app.tool(annotations=READ_ONLY)
    async def query(sql: str, max_rows: int | None = None) -> Annotated[CallToolResult, QueryOutput]:
        """Run one read-only SQL statement (SELECT, WITH ... SELECT, VALUES, TABLE) and return its rows.

        PostgreSQL dialect. One statement only; writes, DDL, locks and side-effecting functions are
        refused. Rows are capped at max_rows (default set by the server); the last line of the
        result states the row count and whether rows were cut. Prefer aggregates and WHERE filters
        over fetching many rows; quote mixed-case names ("Gift Cards").
        """
        return await _tool_call(lambda: explorer.query(sql, max_rows))

    @app.tool(annotations=READ_ONLY)
    async def list_schemas() -> CallToolResult:
        """List the database schemas you can read, with their table counts and comments. Start here."""
        return await _tool_call(explorer.list_schemas)

    @app.tool(annotations=READ_ONLY)
    async def list_tables(schema: str | None = None) -> CallToolResult:
        """List tables, views, materialized views and foreign tables with estimated row counts and comments.

        Pass schema to list one schema only. Partitions are folded into their partitioned table.
        """
        return await _tool_call(lambda: explorer.list_tables(schema))

    @app.tool(annotations=READ_ONLY)
    async def describe_table(table: str, schema: str | None = None) -> CallToolResult:
        """Describe one table or view: columns (type, nullability, default, comment, enum values), primary key,
        foreign keys in both directions, unique and check constraints, indexes and estimated rows.

        table may be `orders`, `sales.orders` or a quoted name like `sales."Gift Cards"`. Call this before
        writing a query against a table you have not seen.
        """
        return await _tool_call(lambda: explorer.describe_table(table, schema))

    @app.resource(
        "postgres://{schema}/{table}",
        name="table",
        title="Table description",
        description="Columns, keys, relationships and size of one table or view (same as describe_table).",
        mime_type="text/plain",
    )
    async def table_resource(schema: str, table: str) -> str:
        try:
            return await explorer.describe_resource(schema, table)
        except PgMcpError as exc:
            raise ResourceError(str(exc)) from None

    return app
