"""The catalog tools: schemas, tables, one table's description, search, and foreign keys."""

from __future__ import annotations

from pg_mcp.database.catalog import SEARCH_LIMIT
from pg_mcp.database.records import Edge, ForeignKeyLink, TableSummary, as_json
from pg_mcp.errors import InvalidArgumentError
from pg_mcp.explore.context import DatabaseContext, ToolOutput
from pg_mcp.names import qualified, quote_ident
from pg_mcp.render.catalog_text import (
    render_catalog_summary,
    render_description,
    render_glossary,
    render_overview,
    render_relationships,
    render_schemas,
    render_search,
    render_tables,
)
from pg_mcp.render.results import bounded_structured

LIST_TABLES_PAGE = 200
MAX_EDGES_SHOWN = 100


async def list_schemas(ctx: DatabaseContext) -> ToolOutput:
    await ctx.access_policy()
    schemas = await ctx.catalog.list_schemas()
    return ToolOutput(
        render_schemas(schemas, ctx.limits), bounded_structured({"schemas": as_json(schemas)}, ctx.limits)
    )


async def list_tables(ctx: DatabaseContext, schema: str | None = None, offset: int = 0) -> ToolOutput:
    """Relations, LIST_TABLES_PAGE at a time; a catalog too big for one page is summarised per schema."""
    if offset < 0:
        raise InvalidArgumentError("offset must be 0 or more.", "Leave it out for the first page.")
    await ctx.access_policy()
    name: str | None = None
    if schema is None:
        schemas = await ctx.catalog.list_schemas()
        total = sum(s.tables for s in schemas)
        if total > LIST_TABLES_PAGE:
            return ToolOutput(
                render_catalog_summary(schemas, ctx.limits),
                bounded_structured(
                    {"schemas": as_json(schemas), "tables": [], "truncated": True}, ctx.limits
                ),
            )
    else:  # count this schema only: every schema's count reads the whole catalog
        name = await ctx.catalog.resolve_schema(schema)
        total = await ctx.catalog.count_tables(name)
    tables = (
        await ctx.catalog.list_tables(name, limit=LIST_TABLES_PAGE, offset=offset) if offset < total else []
    )
    more = offset + len(tables) < total
    text = render_tables(tables, offset, total, ctx.limits)
    structured = {"tables": as_json(tables), "offset": offset, "total": total, "truncated": more}
    return ToolOutput(text, bounded_structured(structured, ctx.limits))


async def describe_table(ctx: DatabaseContext, table: str, schema: str | None = None) -> ToolOutput:
    await ctx.access_policy()
    ref = await ctx.catalog.resolve_table(table, schema)
    description = await ctx.catalog.describe(ref)
    return ToolOutput(
        render_description(description, ctx.limits), bounded_structured(description.as_json(), ctx.limits)
    )


async def search_schema(ctx: DatabaseContext, pattern: str) -> ToolOutput:
    if not pattern.strip():
        raise InvalidArgumentError(
            "The search pattern is empty.", "Give part of a table or column name, or a word."
        )
    await ctx.access_policy()
    hits = await ctx.catalog.search(pattern)
    return ToolOutput(
        render_search(pattern, hits, SEARCH_LIMIT, ctx.limits),
        bounded_structured({"hits": as_json(hits)}, ctx.limits),
    )


async def relationships(
    ctx: DatabaseContext, table: str | None = None, schema: str | None = None
) -> ToolOutput:
    """Foreign keys touching one table (both directions), or all of those within a schema."""
    await ctx.access_policy()
    keys = await ctx.catalog.foreign_keys()
    if table:
        ref = await ctx.catalog.resolve_table(table, schema)
        keys = [k for k in keys if ref.oid in (k.source_oid, k.target_oid)]
        scope = ref.display
    elif schema:
        name = await ctx.catalog.resolve_schema(schema)
        keys = [k for k in keys if name in (k.source_schema, k.target_schema)]
        scope = f"schema {quote_ident(name)}"
    else:
        scope = "all exposed schemas"
    edges = [_edge(k) for k in keys]
    text = render_relationships(scope, edges, MAX_EDGES_SHOWN, ctx.limits)
    return ToolOutput(text, bounded_structured({"scope": scope, "foreign_keys": as_json(edges)}, ctx.limits))


def _edge(key: ForeignKeyLink) -> Edge:
    return Edge.model_validate(
        {
            "from": qualified(key.source_schema, key.source_table),
            "from_columns": key.columns,
            "to": qualified(key.target_schema, key.target_table),
            "to_columns": key.target_columns,
            "name": key.name,
        }
    )


async def overview(ctx: DatabaseContext, *, described: bool = True) -> str:
    """Server version, size, extensions and schemas: what a model reads first about a database; with
    the operator's description of it unless `described` is False (said once beside the others')."""
    await ctx.access_policy()
    info = await ctx.catalog.overview()
    if described and ctx.settings.description:
        info = info.model_copy(update={"description": ctx.settings.description})
    return render_overview(info, ctx.limits)


async def glossary(ctx: DatabaseContext) -> str:
    """The operator's glossary of the database, without the terms that name what is out of reach."""
    await ctx.access_policy()
    return render_glossary(ctx.catalog.glossary(), ctx.limits)


async def table_page(ctx: DatabaseContext, after: tuple[str, str], limit: int) -> list[TableSummary]:
    """Up to `limit` exposed relations after the (schema, name) key, in that order: resource pages."""
    await ctx.access_policy()
    return await ctx.catalog.list_tables(after=after, limit=limit)


async def complete(ctx: DatabaseContext, argument: str, value: str, schema: str | None) -> list[str]:
    """Schema names, or table names in `schema`, starting with `value`."""
    await ctx.access_policy()
    if argument == "schema":
        return await ctx.catalog.complete_schema(value)
    if argument == "table":
        return await ctx.catalog.complete_table(schema, value)
    return []
