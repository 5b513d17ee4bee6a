"""What each tool does, as functions over a `DatabaseContext`: no MCP types, no SQL text of the caller's.

Each function returns a `ToolOutput` (the text a model reads plus structured content) or raises a
`PgMcpError` whose message is safe to show.
"""

from pg_mcp.explore.catalog_tools import (
    complete,
    describe_table,
    list_schemas,
    list_tables,
    overview,
    relationships,
    search_schema,
    table_page,
)
from pg_mcp.explore.context import DatabaseContext, ToolOutput
from pg_mcp.explore.data import column_stats, sample_rows
from pg_mcp.explore.statements import explain, query

__all__ = [
    "DatabaseContext",
    "ToolOutput",
    "column_stats",
    "complete",
    "describe_table",
    "explain",
    "list_schemas",
    "list_tables",
    "overview",
    "query",
    "relationships",
    "sample_rows",
    "search_schema",
    "table_page",
]
