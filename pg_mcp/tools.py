"""What each tool does, independent of MCP wiring: guard, execute or introspect, render.

Each method returns a `ToolOutput` (the text a model reads plus structured content) or raises
a `PgMcpError` whose message is safe to show. Every statement run for a caller is written to
the audit log (`pg_mcp.audit`).
"""

from __future__ import annotations

import base64
import binascii
import difflib
import functools
import inspect
import json
import logging
import re
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any, Concatenate, ParamSpec, TypeVar
from urllib.parse import quote

from pg_mcp.access import AccessPolicy, check_plan
from pg_mcp.catalog import SEARCH_LIMIT, Catalog, RelationRef
from pg_mcp.config import Settings
from pg_mcp.db import Database
from pg_mcp.errors import GuardError, NotFoundError, PgMcpError, QueryError
from pg_mcp.guard import CheckedQuery, GuardPolicy, check_query_async
from pg_mcp.guard.plan import Budget, check_budget, check_plan_calls
from pg_mcp.lineage import LineagePolicy
from pg_mcp.names import qualified, quote_ident
from pg_mcp.render.catalog_text import (
    render_catalog_summary,
    render_description,
    render_overview,
    render_plan,
    render_relationships,
    render_schemas,
    render_search,
    render_stats,
    render_tables,
)
from pg_mcp.render.results import bounded_structured, render_result
from pg_mcp.render.values import Limits

audit = logging.getLogger("pg_mcp.audit")
P = ParamSpec("P")
T = TypeVar("T")

LIST_TABLES_PAGE = 200
MAX_EDGES_SHOWN = 100
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
RESOURCE_PAGE_SIZE = 200
#: Seconds before the database's function names (used by the guard) are read again.
FUNCTION_NAMES_TTL = 300.0
URI_SCHEME = "postgres"
#: Characters of a statement an audit line holds (with the full length when cut), for every outcome.
AUDIT_SQL_CHARS = 20_000


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


def _audited(
    method: Callable[Concatenate[Explorer, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[Explorer, P], Coroutine[Any, Any, T]]:
    """Audit a catalog tool: it runs this package's fixed SQL with the caller's names as parameters."""
    signature = inspect.signature(method)

    @functools.wraps(method)
    async def audited(explorer: Explorer, /, *args: P.args, **kwargs: P.kwargs) -> T:
        bound = signature.bind(explorer, *args, **kwargs).arguments
        arguments = {name: value for name, value in bound.items() if name != "self" and value is not None}
        started = time.perf_counter()
        try:
            await explorer.access_policy()
            result = await method(explorer, *args, **kwargs)
        except PgMcpError as exc:
            _audit(
                method.__name__, None, started, outcome=_outcome(exc), reason=exc.message, arguments=arguments
            )
            raise
        _audit(method.__name__, None, started, outcome="ok", arguments=arguments)
        return result

    return audited


class Explorer:
    """The operations behind the MCP tools and resources."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.access = settings.access
        self.lineage = LineagePolicy(settings.access)
        self.catalog = Catalog(db, self.access)
        self.policy = GuardPolicy(
            allowed_functions=frozenset(settings.allow_functions),
            allowed_secrets=frozenset(settings.allow_secrets),
        )
        self.budget = Budget(max_cost=settings.max_cost, max_rows=settings.max_plan_rows)
        self._policy_loaded_at: float | None = None
        self.limits = Limits(settings.max_cell_chars, settings.max_result_bytes)

    async def guard_policy(self) -> GuardPolicy:
        """The guard policy with the database's own function names, refreshed every few minutes."""
        now = time.monotonic()
        if self._policy_loaded_at is None or now - self._policy_loaded_at > FUNCTION_NAMES_TTL:
            one_arg, row = await self.catalog.field_callable_functions()
            names = await self.catalog.user_defined_names(list(self.settings.allow_functions))
            self.policy = replace(
                self.policy,
                one_arg_functions=one_arg,
                row_functions=row,
                user_functions=names.functions,
                user_operators=names.operators,
                user_cast_types=names.cast_types,
                user_calling_views=names.calling_views,
            )
            self._policy_loaded_at = now
        return self.policy

    async def access_policy(self) -> AccessPolicy:
        """The operator's limits carried onto partitions, children and derived views (pg_mcp.lineage)."""
        self.access = await self.lineage.get(self.db)
        self.catalog.access = self.access
        return self.access

    async def query(
        self,
        sql: str,
        max_rows: int | None = None,
        *,
        tool: str = "query",
        row_argument: tuple[str, int] | None = None,
    ) -> ToolOutput:
        """Guard, execute and render one read-only statement; `row_argument` names the calling tool's
        row-count argument and its largest value, for the truncation note."""
        rows_cap = self._rows_cap(max_rows)
        started = time.perf_counter()
        try:
            policy = await self.guard_policy()
            await self.access_policy()
            checked = await check_query_async(sql, rows_cap, policy)
            result = await self.db.run_query(
                checked, inspect_plan=lambda plan: self._check_plan(plan, policy)
            )
        except PgMcpError as exc:
            _audit(tool, sql, started, outcome=_outcome(exc), reason=exc.message)
            raise
        name, most = row_argument or ("max_rows", self.settings.max_rows_limit)
        rendered = render_result(result, rows_cap, self.limits, most, name)
        _audit(tool, sql, started, outcome="ok", rows=rendered.structured["row_count"])
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

    @_audited
    async def list_schemas(self) -> ToolOutput:
        schemas = await self.catalog.list_schemas()
        return ToolOutput(
            render_schemas(schemas, self.limits), bounded_structured({"schemas": schemas}, self.limits)
        )

    @_audited
    async def list_tables(self, schema: str | None = None, offset: int = 0) -> ToolOutput:
        """Relations, LIST_TABLES_PAGE at a time; a catalog too big for one page is summarised per schema."""
        if offset < 0:
            raise QueryError("offset must be 0 or more.", "Leave it out for the first page.")
        schemas = await self.catalog.list_schemas()
        if schema is None and sum(s["tables"] for s in schemas) > LIST_TABLES_PAGE:
            return ToolOutput(
                render_catalog_summary(schemas, self.limits),
                bounded_structured({"schemas": schemas, "tables": [], "truncated": True}, self.limits),
            )
        name = await self.catalog.resolve_schema(schema) if schema is not None else None
        total = sum(s["tables"] for s in schemas if name is None or s["name"] == name)
        tables = await self.catalog.list_tables(name, limit=LIST_TABLES_PAGE, offset=offset)
        more = offset + len(tables) < total
        text = render_tables(tables, offset, total, self.limits)
        structured = {"tables": tables, "offset": offset, "total": total, "truncated": more}
        return ToolOutput(text, bounded_structured(structured, self.limits))

    @_audited
    async def describe_table(self, table: str, schema: str | None = None) -> ToolOutput:
        ref = await self.catalog.resolve_table(table, schema)
        description = await self.catalog.describe(ref)
        return ToolOutput(
            render_description(description, self.limits), bounded_structured(asdict(description), self.limits)
        )

    @_audited
    async def describe_resource(self, schema: str, table: str) -> str:
        """The text of a table resource: exactly what describe_table returns."""
        ref = await self.catalog.resolve_table(_quoted(table), schema=_quoted(schema))
        return render_description(await self.catalog.describe(ref), self.limits)

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

    async def overview(self) -> str:
        return render_overview(await self.catalog.overview(), self.limits)

    async def complete(self, argument: str, value: str, context: dict[str, str]) -> list[str]:
        """Completions for the table resource template: schema names, then table names in that schema."""
        if argument == "schema":
            return await self.catalog.complete_schema(value)
        if argument == "table":
            return await self.catalog.complete_table(context.get("schema"), value)
        return []

    @_audited
    async def search_schema(self, pattern: str) -> ToolOutput:
        if not pattern.strip():
            raise NotFoundError(
                "The search pattern is empty.", "Give part of a table or column name, or a word."
            )
        hits = await self.catalog.search(pattern)
        return ToolOutput(
            render_search(pattern, hits, SEARCH_LIMIT, self.limits),
            bounded_structured({"hits": hits}, self.limits),
        )

    @_audited
    async def relationships(self, table: str | None = None, schema: str | None = None) -> ToolOutput:
        """Foreign keys touching one table (both directions), or all of those within a schema."""
        keys = await self.catalog.foreign_keys()
        if table:
            ref = await self.catalog.resolve_table(table, schema)
            keys = [k for k in keys if ref.oid in (k["source_oid"], k["target_oid"])]
            scope = ref.display
        elif schema:
            name = await self.catalog.resolve_schema(schema)
            keys = [k for k in keys if name in (k["source_schema"], k["target_schema"])]
            scope = f"schema {quote_ident(name)}"
        else:
            scope = "all exposed schemas"
        edges = [_edge(k) for k in keys]
        text = render_relationships(scope, edges, MAX_EDGES_SHOWN, self.limits)
        return ToolOutput(text, bounded_structured({"scope": scope, "foreign_keys": edges}, self.limits))

    async def sample_rows(self, table: str, n: int = 10, schema: str | None = None) -> ToolOutput:
        """A few rows from random blocks (TABLESAMPLE SYSTEM) on big tables, so nothing is scanned in full."""
        if not 1 <= n <= MAX_SAMPLE_ROWS:
            raise QueryError(
                f"n must be between 1 and {MAX_SAMPLE_ROWS}, not {n}.", "Ask for a handful of rows."
            )
        await self.access_policy()
        ref = await self.catalog.resolve_table(table, schema)
        size = await self.catalog.size(ref)
        columns = "*"
        if self.access.hidden(ref.schema, ref.name):
            columns = ", ".join(quote_ident(c["name"]) for c in await self.catalog.columns(ref))
        sql = f"SELECT {columns} FROM {ref.display}"
        if size.kind in ("r", "m", "p") and size.rows and size.rows > n * SAMPLE_OVERSHOOT:
            share = max(n * SAMPLE_OVERSHOOT / size.rows, SAMPLE_MIN_BLOCKS / max(size.pages, 1))
            percent = max(0.001, min(100.0, 100.0 * share))
            sampled = f"SELECT * FROM ({sql} TABLESAMPLE SYSTEM ({percent:.4f})) AS sample ORDER BY random()"
            output = await self.query(sampled, n, tool="sample_rows", row_argument=("n", MAX_SAMPLE_ROWS))
            if output.structured["row_count"] >= n:
                return output
        return await self.query(sql, n, tool="sample_rows", row_argument=("n", MAX_SAMPLE_ROWS))

    @_audited
    async def column_stats(
        self, table: str, column: str | None = None, schema: str | None = None
    ) -> ToolOutput:
        """Planner statistics where ANALYZE has run; otherwise bounded min/max/distinct over the first rows."""
        ref = await self.catalog.resolve_table(table, schema)
        columns = await self.catalog.columns(ref)
        if column is not None:
            column = _pick_column(column, [c["name"] for c in columns], ref.display)
            columns = [c for c in columns if c["name"] == column]
        estimate = (await self.catalog.size(ref)).rows
        stats = {row["column"]: row for row in await self.catalog.stats(ref, column)}
        missing = [c for c in columns if c["name"] not in stats][:MAX_PROBED_COLUMNS]
        probed = await self._probe(ref, missing) if missing else {}
        report = [
            {"column": c["name"], "type": c["type"], **(stats.get(c["name"]) or probed.get(c["name"]) or {})}
            for c in columns
        ]
        text = render_stats(ref.display, estimate, report, self.limits)
        structured = {"table": ref.display, "estimated_rows": estimate, "columns": report}
        return ToolOutput(text, bounded_structured(structured, self.limits))

    async def _probe(self, ref: RelationRef, columns: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """min/max/null count/distinct count over the first PROBE_ROWS rows, in one bounded query."""
        selects = ["count(*) AS n"]
        for i, c in enumerate(columns):
            col = quote_ident(c["name"])
            selects.append(f"count({col}) AS c{i}")
            if ORDERABLE.match(c["type"]):
                selects += [
                    f"min({col})::text AS lo{i}",
                    f"max({col})::text AS hi{i}",
                    f"count(DISTINCT {col}) AS d{i}",
                ]
            elif COUNTABLE.match(c["type"]):
                selects.append(f"count(DISTINCT {col}) AS d{i}")
        inner = ", ".join(quote_ident(c["name"]) for c in columns)
        sql = f"SELECT {', '.join(selects)} FROM (SELECT {inner} FROM {ref.display} LIMIT {PROBE_ROWS}) AS probe"
        result = await self.query(sql, 1, tool="column_stats")
        row = dict(
            zip([c["name"] for c in result.structured["columns"]], result.structured["rows"][0], strict=True)
        )
        sampled = int(row["n"])
        return {
            c["name"]: {
                "source": f"first {sampled:,} rows",
                "null_frac": (1 - int(row[f"c{i}"]) / sampled) if sampled else None,
                "min": row.get(f"lo{i}"),
                "max": row.get(f"hi{i}"),
                "distinct_in_sample": row.get(f"d{i}"),
            }
            for i, c in enumerate(columns)
        }

    async def explain(self, sql: str) -> ToolOutput:
        """The planner's plan for a guard-approved statement; EXPLAIN without ANALYZE never executes it."""
        started = time.perf_counter()
        try:
            policy = await self.guard_policy()
            await self.access_policy()
            checked = await check_query_async(sql, 1, policy)
            plan = await self._plan(checked, checked.statement, verbose=True)
            self._check_plan(plan, policy, budget=False)
        except PgMcpError as exc:
            _audit("explain", sql, started, outcome=_outcome(exc), reason=exc.message)
            raise
        _audit("explain", sql, started, outcome="ok", rows=1)
        budget = (
            f"Budget: query refuses a statement whose plan (capped at max_rows) costs more than "
            f"{self.budget.max_cost:,.0f} (PG_MCP_MAX_COST) or feeds more than {self.budget.max_rows:,.0f} rows "
            "into one aggregate or sort (PG_MCP_MAX_PLAN_ROWS); 0 means no limit."
        )
        text = render_plan(plan, self.limits) + "\n" + budget
        return ToolOutput(text, bounded_structured({"plan": plan}, self.limits))

    def _check_plan(self, plan: dict[str, Any], policy: GuardPolicy, *, budget: bool = True) -> None:
        """What only the plan shows: functions views call, secrets, operator limits, the cost budget."""
        check_plan_calls(plan, policy)
        check_plan(plan, self.access)  # TOAST is refused even without limits
        if budget:
            check_budget(plan, self.budget)

    async def _plan(self, checked: CheckedQuery, sql: str, *, verbose: bool) -> dict[str, Any]:
        """The planner's plan for guard-approved text (`sql` is the statement or its bounded wrapper)."""
        explain = replace(
            checked, sql=f"EXPLAIN (FORMAT JSON, VERBOSE {str(verbose).lower()})\n{sql}", cap_cells=False
        )
        result = await self.db.run_query(explain)
        plan: dict[str, Any] = json.loads(result.rows[0][0])[0]["Plan"]
        return plan


def _edge(key: dict[str, Any]) -> dict[str, Any]:
    return {
        "from": qualified(key["source_schema"], key["source_table"]),
        "from_columns": list(key["columns"] or []),
        "to": qualified(key["target_schema"], key["target_table"]),
        "to_columns": list(key["target_columns"] or []),
        "name": key["name"],
    }


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
    raise NotFoundError(f"Column {column!r} does not exist in {table}.", hint)


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
    tool: str,
    sql: str | None,
    started: float,
    *,
    outcome: str,
    rows: int | None = None,
    reason: str = "",
    arguments: dict[str, Any] | None = None,
) -> None:
    """One line per call: the caller's SQL (or the catalog tool's arguments), duration, how it ended."""
    entry: dict[str, Any] = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "tool": tool,
        "sql": sql if sql is None or len(sql) <= AUDIT_SQL_CHARS else sql[:AUDIT_SQL_CHARS] + "…",
        "ms": round((time.perf_counter() - started) * 1000, 2),
        "outcome": outcome,
        "rows": rows,
        "reason": reason or None,
    }
    if sql is not None and len(sql) > AUDIT_SQL_CHARS:
        entry["sql_length"] = len(sql)
    if arguments is not None:
        entry["arguments"] = arguments
    audit.info("%s", json.dumps(entry, ensure_ascii=False, default=str))
