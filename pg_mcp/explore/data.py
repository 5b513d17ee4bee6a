"""The data tools: a few sample rows, and what values a column holds."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from pg_mcp.database.catalog import RelationRef, shown
from pg_mcp.database.records import ColumnStatistics, ColumnType, as_json
from pg_mcp.errors import InvalidArgumentError, NotFoundError
from pg_mcp.explore.context import DatabaseContext, ToolOutput
from pg_mcp.explore.statements import query
from pg_mcp.names import quote_ident
from pg_mcp.render.catalog_text import render_stats
from pg_mcp.render.results import bounded_structured

MAX_SAMPLE_ROWS = 100
SAMPLE_OVERSHOOT = 20
#: Blocks a sample reads at least, so rows come from several places in the table.
SAMPLE_MIN_BLOCKS = 8
PROBE_ROWS = 10_000
MAX_PROBED_COLUMNS = 40
#: Types with a total order, so min()/max()/count(DISTINCT) are defined and meaningful.
ORDERABLE = re.compile(
    r"^(smallint|integer|bigint|numeric|real|double precision|money|date|time|timestamp|interval|text|"
    r"character|inet|cidr)"
)
#: Types without min()/max() whose distinct values can still be counted.
COUNTABLE = re.compile(r"^(boolean|uuid)$")


async def sample_rows(ctx: DatabaseContext, table: str, n: int = 10, schema: str | None = None) -> ToolOutput:
    """A few rows from random blocks (TABLESAMPLE SYSTEM) on big tables, so nothing is scanned in full."""
    if not 1 <= n <= MAX_SAMPLE_ROWS:
        raise InvalidArgumentError(
            f"n must be between 1 and {MAX_SAMPLE_ROWS}, not {n}.", "Ask for a handful of rows."
        )
    await ctx.access_policy()
    ref = await ctx.catalog.resolve_table(table, schema)
    size = await ctx.catalog.size(ref)
    columns = "*"
    if ctx.access.hidden(ref.schema, ref.name):
        columns = ", ".join(quote_ident(c.name) for c in await ctx.catalog.columns(ref))
    sql = f"SELECT {columns} FROM {ref.display}"
    row_argument = ("n", MAX_SAMPLE_ROWS)
    if size.kind in ("r", "m", "p") and size.rows and size.rows > n * SAMPLE_OVERSHOOT:
        share = max(n * SAMPLE_OVERSHOOT / size.rows, SAMPLE_MIN_BLOCKS / max(size.pages, 1))
        percent = max(0.001, min(100.0, 100.0 * share))
        sampled = f"SELECT * FROM ({sql} TABLESAMPLE SYSTEM ({percent:.4f})) AS sample ORDER BY random()"
        output = await query(ctx, sampled, n, row_argument=row_argument)
        if output.structured["row_count"] >= n:
            return output
    return await query(ctx, sql, n, row_argument=row_argument)


async def column_stats(
    ctx: DatabaseContext, table: str, column: str | None = None, schema: str | None = None
) -> ToolOutput:
    """Planner statistics where ANALYZE has run; otherwise bounded min/max/distinct over the first rows."""
    await ctx.access_policy()
    ref = await ctx.catalog.resolve_table(table, schema)
    columns = await ctx.catalog.columns(ref)
    if column is not None:
        column = _pick_column(column, [c.name for c in columns], ref.display)
        columns = [c for c in columns if c.name == column]
    estimate = (await ctx.catalog.size(ref)).rows
    stats = await ctx.catalog.stats(ref, column)
    missing = [c for c in columns if c.name not in stats][:MAX_PROBED_COLUMNS]
    probed = await _probe(ctx, ref, missing) if missing else {}
    report = [_statistics(c, stats.get(c.name) or probed.get(c.name) or {}) for c in columns]
    text = render_stats(ref.display, estimate, report, ctx.limits)
    structured = {"table": ref.display, "estimated_rows": estimate, "columns": as_json(report)}
    return ToolOutput(text, bounded_structured(structured, ctx.limits))


async def _probe(
    ctx: DatabaseContext, ref: RelationRef, columns: list[ColumnType]
) -> dict[str, dict[str, Any]]:
    """min/max/null count/distinct count over the first PROBE_ROWS rows, in one bounded query."""
    selects = ["count(*) AS n"]
    for i, c in enumerate(columns):
        col = quote_ident(c.name)
        selects.append(f"count({col}) AS c{i}")
        if ORDERABLE.match(c.type):
            selects += [
                f"min({col})::text AS lo{i}",
                f"max({col})::text AS hi{i}",
                f"count(DISTINCT {col}) AS d{i}",
            ]
        elif COUNTABLE.match(c.type):
            selects.append(f"count(DISTINCT {col}) AS d{i}")
    inner = ", ".join(quote_ident(c.name) for c in columns)
    sql = f"SELECT {', '.join(selects)} FROM (SELECT {inner} FROM {ref.display} LIMIT {PROBE_ROWS}) AS probe"
    result = await query(ctx, sql, 1)
    row = dict(
        zip([c["name"] for c in result.structured["columns"]], result.structured["rows"][0], strict=True)
    )
    sampled = int(row["n"])
    return {
        c.name: {
            "source": f"first {sampled:,} rows",
            "null_frac": (1 - int(row[f"c{i}"]) / sampled) if sampled else None,
            "min": row.get(f"lo{i}"),
            "max": row.get(f"hi{i}"),
            "distinct_in_sample": row.get(f"d{i}"),
        }
        for i, c in enumerate(columns)
    }


def _statistics(column: ColumnType, known: Mapping[str, Any]) -> ColumnStatistics:
    """The column's record from a pg_stats row or a probe's findings (either names the column itself)."""
    facts = {key: value for key, value in known.items() if key != "column"}
    return ColumnStatistics(column=column.name, type=column.type, **facts)


def _pick_column(column: str, names: list[str], table: str) -> str:
    """The column the caller meant: exact, else case-insensitive; NotFoundError with close names."""
    wanted = column.strip().strip('"')
    if wanted in names:
        return wanted
    folded = [name for name in names if name.lower() == wanted.lower()]
    if len(folded) == 1:
        return folded[0]
    close = difflib.get_close_matches(wanted, names, n=5, cutoff=0.5)
    hint = f"Closest: {', '.join(close)}." if close else f"Columns: {', '.join(names[:30])}."
    raise NotFoundError(f"Column {shown(column)} does not exist in {table}.", hint)
