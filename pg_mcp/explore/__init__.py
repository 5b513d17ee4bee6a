"""What each tool does, as functions over a `DatabaseContext`: no MCP types, no SQL text of the caller's.

Each function returns a `ToolOutput` (the text a model reads plus structured content) or raises a
`PgMcpError` whose message is safe to show.

The names are imported at their first use (PEP 562): a server answers `initialize` before it needs
any of them, and the stdio start-up is what a client waits for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pg_mcp.explore.catalog_tools import (
        complete,
        describe_table,
        glossary,
        list_schemas,
        list_tables,
        overview,
        relationships,
        search_schema,
        table_page,
    )
    from pg_mcp.explore.context import DatabaseContext, ToolOutput
    from pg_mcp.explore.data import column_stats, sample_rows
    from pg_mcp.explore.statements import explain, query, run_tool

#: Where each public name lives (a module of this package).
_HOMES = {
    "DatabaseContext": "context",
    "ToolOutput": "context",
    "column_stats": "data",
    "sample_rows": "data",
    "complete": "catalog_tools",
    "describe_table": "catalog_tools",
    "glossary": "catalog_tools",
    "list_schemas": "catalog_tools",
    "list_tables": "catalog_tools",
    "overview": "catalog_tools",
    "relationships": "catalog_tools",
    "search_schema": "catalog_tools",
    "table_page": "catalog_tools",
    "explain": "statements",
    "query": "statements",
    "run_tool": "statements",
}

__all__ = [
    "DatabaseContext",
    "ToolOutput",
    "column_stats",
    "complete",
    "describe_table",
    "explain",
    "glossary",
    "list_schemas",
    "list_tables",
    "overview",
    "query",
    "relationships",
    "run_tool",
    "sample_rows",
    "search_schema",
    "table_page",
]


def load() -> None:
    """Import every tool's module now: a server does it beside serving, before the first call."""
    for home in sorted(set(_HOMES.values())):
        importlib.import_module(f"{__name__}.{home}")


if not TYPE_CHECKING:  # mypy reads the imports above, so a misspelt name stays an error

    def __getattr__(name: str) -> Any:
        home = _HOMES.get(name)
        if home is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
        globals()[name] = value  # later lookups skip this function
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
