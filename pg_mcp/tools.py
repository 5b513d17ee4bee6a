"""What each tool does, independent of MCP wiring: guard, execute or introspect, render.

Each method returns a `ToolOutput` (the text a model reads plus structured content) or raises
a `PgMcpError` whose message is safe to show. Every statement run for a caller is written to
the audit log (`pg_mcp.audit`).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

from pg_mcp.catalog import Catalog, RelationRef
from pg_mcp.config import Settings
from pg_mcp.db import Database
from pg_mcp.errors import GuardError, NotFoundError, PgMcpError, QueryError
from pg_mcp.guard import GuardPolicy, check_query
from pg_mcp.render import Limits, render_description, render_result, render_schemas, render_tables

audit = logging.getLogger("pg_mcp.audit")

LIST_TABLES_LIMIT = 500
RESOURCE_PAGE_SIZE = 200
URI_SCHEME = "postgres"


@dataclass(frozen=True)
class ToolOutput:
    text: str
    structured: dict[str, Any]


@dataclass(frozen=True)
class ResourceEntry:
    uri: str
    name: str
    description: str | None


def table_uri(schema: str, name: str) -> str:
    return f"{URI_SCHEME}://{quote(schema, safe='')}/{quote(name, safe='')}"


class Explorer:
    """The operations behind the MCP tools and resources."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.catalog = Catalog(db, settings.schemas)
        self.policy = GuardPolicy(allowed_functions=frozenset(settings.allow_functions))
        self.limits = Limits(settings.max_cell_chars, settings.max_result_bytes)

    async def query(self, sql: str, max_rows: int | None = None) -> ToolOutput:
        """Guard, execute and render one read-only statement."""
        rows_cap = self._rows_cap(max_rows)
        started = time.perf_counter()
        try:
            checked = check_query(sql, rows_cap, self.policy)
            result = await self.db.run_query(checked)
        except PgMcpError as exc:
            _audit("query", sql, started, outcome=_outcome(exc), reason=exc.message)
            raise
        rendered = render_result(result, rows_cap, self.limits, self.settings.max_rows_limit)
        _audit("query", sql, started, outcome="ok", rows=rendered.structured["row_count"])
        return ToolOutput(rendered.text, rendered.structured)

    def _rows_cap(self, max_rows: int | None) -> int:
        if max_rows is None:
            return self.settings.max_rows
        if not 1 <= max_rows <= self.settings.max_rows_limit:
            raise QueryError(
                f"max_rows must be between 1 and {self.settings.max_rows_limit}, not {max_rows}.",
                "Leave it out for the default, or aggregate in SQL instead of fetching many rows.",
            )
        return max_rows

    async def list_schemas(self) -> ToolOutput:
        schemas = await self.catalog.list_schemas()
        return ToolOutput(render_schemas(schemas), {"schemas": schemas})

    async def list_tables(self, schema: str | None = None) -> ToolOutput:
        tables = await self.catalog.list_tables(schema, limit=LIST_TABLES_LIMIT + 1)
        more = len(tables) > LIST_TABLES_LIMIT
        tables = tables[:LIST_TABLES_LIMIT]
        return ToolOutput(render_tables(tables, more), {"tables": tables, "truncated": more})

    async def describe_table(self, table: str, schema: str | None = None) -> ToolOutput:
        ref = await self.catalog.resolve_table(table, schema)
        description = await self.catalog.describe(ref)
        return ToolOutput(render_description(description), asdict(description))

    async def describe_resource(self, schema: str, table: str) -> str:
        """The text of a table resource: exactly what describe_table returns."""
        ref = await self.catalog.resolve_table(_quoted(table), schema=_quoted(schema))
        return render_description(await self.catalog.describe(ref))

    async def resource_page(self, cursor: str | None) -> tuple[list[ResourceEntry], str | None]:
        """One page of table resources in (schema, name) order; the cursor is the last key seen."""
        after = _decode_cursor(cursor) if cursor else ("", "")
        tables = await self.catalog.list_tables(after=after, limit=RESOURCE_PAGE_SIZE + 1)
        page = tables[:RESOURCE_PAGE_SIZE]
        entries = [
            ResourceEntry(
                uri=table_uri(t["schema"], t["name"]),
                name=f"{t['schema']}.{t['name']}",
                description=_resource_description(t),
            )
            for t in page
        ]
        next_cursor = (
            _encode_cursor(page[-1]["schema"], page[-1]["name"]) if len(tables) > len(page) else None
        )
        return entries, next_cursor

    async def relation(self, table: str, schema: str | None = None) -> RelationRef:
        return await self.catalog.resolve_table(table, schema)


def _quoted(name: str) -> str:
    """A name from a URI is exact: quote it so it is not case-folded or split on dots."""
    return '"' + name.replace('"', '""') + '"'


def _resource_description(table: dict[str, Any]) -> str:
    parts = [table["kind"]]
    if table["estimated_rows"] is not None:
        parts.append(f"~{table['estimated_rows']:,} rows")
    text = ", ".join(parts)
    return f"{text}. {table['comment']}" if table["comment"] else text


def _encode_cursor(schema: str, name: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([schema, name]).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        schema, name = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if isinstance(schema, str) and isinstance(name, str):
            return schema, name
    except (ValueError, TypeError, binascii.Error):
        pass
    raise NotFoundError("Invalid resource list cursor.", "Start again without a cursor.")


def _outcome(exc: PgMcpError) -> str:
    return f"refused:{exc.rule}" if isinstance(exc, GuardError) else f"error:{type(exc).__name__}"


def _audit(
    tool: str, sql: str, started: float, *, outcome: str, rows: int | None = None, reason: str = ""
) -> None:
    """One line per statement: what ran, for how long, and how it ended."""
    audit.info(
        "%s",
        json.dumps(
            {
                "tool": tool,
                "sql": sql[:2000],
                "ms": round((time.perf_counter() - started) * 1000, 2),
                "outcome": outcome,
                "rows": rows,
                "reason": reason or None,
            },
            ensure_ascii=False,
        ),
    )
