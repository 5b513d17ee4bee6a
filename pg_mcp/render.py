"""PostgreSQL values to JSON-safe values and compact text a model reads cheaply (pure, no I/O).

Text results are tab-separated: a header of `name:type` cells, one line per row, and a final
line that gives the row count and says exactly how the result was cut, if it was. A string
cell is written bare unless that would be ambiguous (empty, `NULL`, tabs, newlines, edge
whitespace, a leading quote), in which case it is a JSON string literal.

Every text and structured output is bounded by the result-byte budget (`Limits`): query
results by whole rows in `render_result`, every other tool through `bounded_text` and
`bounded_structured`, which say what was cut and how to get the rest.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from asyncpg import Range, Record

from pg_mcp.catalog import TableDescription
from pg_mcp.db import Column, CutValue, QueryResult, bytea_bytes_shown
from pg_mcp.json_text import nests_deeper_than
from pg_mcp.names import qualified, quote_ident

MAX_SAFE_INTEGER = 2**53 - 1
MAX_PARTITIONS_SHOWN = 24
#: Characters of a caller's search pattern repeated back in a message.
MAX_PATTERN_SHOWN = 100
#: Bytes kept free under the budget for the note that says what was cut.
NOTE_ROOM = 400
_SQL_TYPE_NAMES = {
    "int2": "smallint",
    "int4": "integer",
    "int8": "bigint",
    "float4": "real",
    "float8": "double precision",
    "bool": "boolean",
    "bpchar": "char",
    "varchar": "varchar",
    "timestamptz": "timestamptz",
    "timetz": "timetz",
}
_NEEDS_QUOTES = re.compile(r'^\s|\s$|[\t\n\r]|^"')


def _element_type(type_name: str) -> str | None:
    """The element type of an array type (`_text` for text[]), else None."""
    return type_name[1:] if type_name.startswith("_") else None


def type_label(column: Column) -> str:
    """`integer`, `text[]`, `sales.order_status`: the name a model would write in SQL."""
    element = _element_type(column.type_name)
    name, suffix = (column.type_name, "") if element is None else (element, "[]")
    name = _SQL_TYPE_NAMES.get(name, name)
    if column.type_schema not in ("pg_catalog", ""):
        name = qualified(column.type_schema, name)
    return name + suffix


@dataclass(frozen=True)
class Limits:
    """How much of a result is shown: characters per cell, bytes per result."""

    max_cell_chars: int = 1000
    max_result_bytes: int = 1_000_000


def json_value(value: Any, type_name: str = "", limits: Limits = Limits()) -> Any:
    """A JSON-safe value that loses nothing, or says how it was shortened."""
    if isinstance(value, CutValue):
        return f"{value.prefix}…[cut: {value.total:,} {value.unit} in all]"
    if value is None or (isinstance(value, bool | str) and type_name not in ("json", "jsonb")):
        return _shorten(value, limits) if isinstance(value, str) else value
    if isinstance(value, int):
        return value if abs(value) <= MAX_SAFE_INTEGER else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else ("NaN" if math.isnan(value) else _infinity(value))
    if isinstance(value, str):  # json / jsonb arrive as PostgreSQL's text
        return _parse_json(value, limits)
    if isinstance(value, Decimal):
        return _decimal_text(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return _bytea(bytes(value), limits)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Range):
        return _range_text(value)
    if isinstance(value, Mapping | Record):  # composite types arrive as Records
        return _whole({str(key): json_value(item, "", limits) for key, item in value.items()}, limits)
    if isinstance(value, Sequence):
        element = _element_type(type_name) or ""
        return _whole([json_value(item, element, limits) for item in value], limits)
    return _shorten(str(value), limits)


def _whole(value: list[Any] | dict[str, Any], limits: Limits) -> Any:
    """An array or composite within the cell limit as it is; a longer one as its shortened JSON text."""
    text = _compact_json(value)
    return value if len(text) <= limits.max_cell_chars else _shorten(text, limits)


def _compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _range_text(value: Range) -> str:
    """PostgreSQL's own range syntax: `[1,10)`, `empty`, `["2025-01-01 00:00:00+00",)`."""
    if value.isempty:
        return "empty"
    lower = "" if value.lower_inf or value.lower is None else _range_bound(value.lower)
    upper = "" if value.upper_inf or value.upper is None else _range_bound(value.upper)
    return f"{'[' if value.lower_inc else '('}{lower},{upper}{']' if value.upper_inc else ')'}"


def _decimal_text(value: Decimal) -> str:
    """Positional notation like PostgreSQL prints numeric (`1E+3` would be `1000`), scale kept."""
    return format(value, "f")


def _range_bound(bound: Any) -> str:
    text = _decimal_text(bound) if isinstance(bound, Decimal) else str(bound)
    if text == "" or re.search(r'[\s,()\[\]"\\]', text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def _infinity(value: float) -> str:
    return "Infinity" if value > 0 else "-Infinity"


def _shorten(text: str, limits: Limits) -> str:
    if len(text) <= limits.max_cell_chars:
        return text
    return f"{text[: limits.max_cell_chars]}…[cut: {len(text):,} chars in all]"


def _bytea(data: bytes, limits: Limits) -> str:
    shown = bytea_bytes_shown(limits.max_cell_chars)
    hex_text = "\\x" + data[:shown].hex()
    return hex_text if len(data) <= shown else f"{hex_text}…[cut: {len(data):,} bytes in all]"


def _parse_json(text: str, limits: Limits) -> Any:
    """Parse json/jsonb text, keeping numbers that a float would change as their exact text."""
    if len(text) > limits.max_cell_chars:
        return _shorten(text, limits)
    if nests_deeper_than(text, MAX_JSON_DEPTH):  # clients cannot serialise such a value back: keep its text
        return f"{text}…[nested more than {MAX_JSON_DEPTH} levels deep: kept as JSON text]"
    try:
        return json.loads(text, parse_float=_exact_float, parse_int=_exact_int)
    except ValueError:
        return text


#: json/jsonb nested deeper than this is returned as its text: JSON serialisers stop near 250 levels.
MAX_JSON_DEPTH = 64


def _exact_float(text: str) -> float | str:
    as_float = float(text)
    try:
        same = math.isfinite(as_float) and Decimal(repr(as_float)) == Decimal(text)
    except InvalidOperation:
        same = False
    return as_float if same else text


def _exact_int(text: str) -> int | str:
    number = int(text)
    return number if abs(number) <= MAX_SAFE_INTEGER else text


def text_cell(value: Any) -> str:
    """One cell of the text table; `value` is already JSON-safe."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if value == "" or value == "NULL" or _NEEDS_QUOTES.search(value):
            return json.dumps(value, ensure_ascii=False)
        return value
    if isinstance(value, int | float):
        return str(value)
    return _compact_json(value)


@dataclass(frozen=True)
class RenderedResult:
    """A query result as the model reads it (text) and as structured content."""

    text: str
    structured: dict[str, Any]


def render_result(
    result: QueryResult, max_rows: int, limits: Limits, max_rows_limit: int, row_argument: str = "max_rows"
) -> RenderedResult:
    """Text and structured forms of the same rows, cut at the byte budget with the cut stated;
    `row_argument` is the tool argument that sets the row cap (named in the note)."""
    columns = [{"name": c.name, "type": type_label(c)} for c in result.columns]
    header = "\t".join(f"{c['name']}:{c['type']}" for c in columns)
    lines = [header]
    size = len(header.encode())
    rows: list[list[Any]] = []
    byte_cut = False
    for raw in result.rows:
        row = [json_value(v, c.type_name, limits) for v, c in zip(raw, result.columns, strict=True)]
        line = "\t".join(text_cell(v) for v in row)
        size += len(line.encode()) + 1
        if size > limits.max_result_bytes and rows:
            byte_cut = True
            break
        rows.append(row)
        lines.append(line)
    byte_cut = byte_cut or result.byte_cut
    truncated = result.truncated or byte_cut
    note = _truncation_note(
        len(rows), max_rows, byte_cut, result.truncated, limits, max_rows_limit, row_argument
    )
    lines.append(note)
    structured = {
        "columns": columns,
        "rows": rows,
        "row_count": len(rows),
        "truncated": truncated,
        "note": note,
    }
    return RenderedResult("\n".join(lines), structured)


def _truncation_note(
    shown: int,
    max_rows: int,
    byte_cut: bool,
    more_rows: bool,
    limits: Limits,
    max_rows_limit: int,
    row_argument: str = "max_rows",
) -> str:
    noun = "row" if shown == 1 else "rows"
    if byte_cut:
        return (
            f"({shown} {noun} shown: output cut at {limits.max_result_bytes:,} bytes "
            f"(PG_MCP_MAX_RESULT_BYTES), before {row_argument}; more rows exist. "
            "Select fewer or narrower columns, or page with ORDER BY ... LIMIT/OFFSET.)"
        )
    if more_rows:
        more = f", or pass {row_argument} up to {max_rows_limit}" if max_rows < max_rows_limit else ""
        return (
            f"({shown} {noun} shown: cut at {row_argument}={max_rows}; more rows exist. Aggregate or filter "
            f"with WHERE{more}, or page with ORDER BY ... LIMIT/OFFSET.)"
        )
    return f"({shown} {noun})"


def bounded_text(text: str, limits: Limits, rest: str) -> str:
    """`text` within the byte budget: whole lines up to it, then a note on what was cut and, in
    `rest`, how to get the rest. One helper, so every tool cuts and says so the same way."""
    budget = limits.max_result_bytes
    if len(text) <= budget // 4 or len(text.encode()) <= budget:  # UTF-8: at most 4 bytes a character
        return text
    lines = text.split("\n")
    room = max(0, budget - NOTE_ROOM - len(rest.encode()))
    kept: list[str] = []
    used = 0
    for line in lines:
        used += len(line.encode()) + 1
        if used > room:
            break
        kept.append(line)
    if not kept:  # the first line alone is over the budget: its start, cut at a character boundary
        kept = [lines[0].encode()[:room].decode(errors="ignore") + "…"]
    note = f"(output cut at {budget:,} bytes: {len(kept):,} of {len(lines):,} lines shown; {rest})"
    return "\n".join([*kept, note])


def bounded_structured(data: dict[str, Any], limits: Limits) -> dict[str, Any]:
    """`data` within the byte budget as compact JSON, with `truncated` and a `cut` note when it is not.

    The largest lists are shortened from the end first (their first items are the ones the
    text shows too); a value still too big (a JSON plan tree, a long definition) is replaced by
    None. `cut` names each field cut and how.
    """
    budget = limits.max_result_bytes - NOTE_ROOM
    sizes = {key: _json_bytes(value) for key, value in data.items()}
    total = sum(sizes.values()) + len(sizes) * 4
    if total <= limits.max_result_bytes:
        return data
    bounded = dict(data)
    cuts: list[str] = []
    for key in sorted(sizes, key=sizes.__getitem__, reverse=True):
        if total <= budget:
            break
        value = bounded[key]
        if isinstance(value, list) and value:
            items = [_json_bytes(item) + 1 for item in value]
            keep = len(items)
            while keep and total > budget:
                keep -= 1
                total -= items[keep]
            bounded[key] = value[:keep]
            cuts.append(f"{key}: first {keep:,} of {len(value):,}")
        else:
            total -= sizes[key]
            bounded[key] = None
            cuts.append(f"{key}: omitted ({sizes[key]:,} bytes)")
    bounded["truncated"] = True
    bounded["cut"] = f"structured content cut at {limits.max_result_bytes:,} bytes: " + "; ".join(cuts)
    return bounded


def _json_bytes(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode())


def render_tables(
    tables: Sequence[Mapping[str, Any]], offset: int = 0, total: int | None = None, limits: Limits = Limits()
) -> str:
    """One line per relation: name, kind (unless table), estimated rows, comment; the page it is."""
    lines = []
    for t in tables:
        parts = [qualified(t["schema"], t["name"])]
        if t["kind"] != "table":
            parts.append(f"[{t['kind']}]")
        if t["estimated_rows"] is not None:
            parts.append(f"~{t['estimated_rows']:,} rows")
        if t["comment"]:
            parts.append(f"— {_clip(_one_line(t['comment']), 160)}")
        lines.append(" ".join(parts))
    if not tables:
        lines.append("(no tables visible to this role here)")
    elif total is not None and (offset or offset + len(tables) < total):
        end = offset + len(tables)
        more = f"; next page: offset={end}" if end < total else ""
        lines.append(f"(tables {offset + 1} to {end} of {total}{more}; search_schema finds tables by name)")
    return bounded_text("\n".join(lines), limits, "list_tables(schema=...) or search_schema narrows the list")


def render_catalog_summary(schemas: Sequence[Mapping[str, Any]], limits: Limits = Limits()) -> str:
    """For catalogs too big to list at once: the schemas and how to list each."""
    total = sum(s["tables"] for s in schemas)
    return bounded_text(
        f"{total:,} tables and views in {len(schemas)} schemas: too many to list at once. "
        "Call list_tables(schema=...) for one schema, or search_schema(pattern) to find tables by name.\n"
        + _schema_lines(schemas),
        limits,
        "search_schema(pattern) finds a schema's tables by name",
    )


def render_schemas(schemas: Sequence[Mapping[str, Any]], limits: Limits = Limits()) -> str:
    return bounded_text(_schema_lines(schemas), limits, "search_schema(pattern) finds tables by name")


def _schema_lines(schemas: Sequence[Mapping[str, Any]]) -> str:
    """One line per schema: name, table count, comment on one line."""
    lines = [
        f"{quote_ident(s['name'])} ({s['tables']} tables)"
        + (f" — {_one_line(s['comment'])}" if s["comment"] else "")
        for s in schemas
    ]
    return "\n".join(lines) if lines else "(no schemas visible to this role)"


def render_description(d: TableDescription, limits: Limits = Limits()) -> str:
    """A compact, complete description: what a model needs to write correct SQL against the table."""
    rows = f", ~{d.estimated_rows:,} rows" if d.estimated_rows is not None else ""
    size = f", {_size(d.total_bytes)}" if d.total_bytes else ""
    lines = [f"{qualified(d.schema, d.name)} ({d.kind}{rows}{size})"]
    if d.comment:
        lines.append(_one_line(d.comment))
    fk_by_column = {
        fk["columns"][0]: f"→ {fk['references']}({', '.join(fk['referenced_columns'])})"
        for fk in d.foreign_keys
        if len(fk["columns"]) == 1
    }
    lines.append("Columns:")
    for c in d.columns:
        lines.append("  " + _column_line(c, fk_by_column.get(c["name"])))
    if d.primary_key:
        lines.append(f"Primary key: ({', '.join(map(quote_ident, d.primary_key))})")
    for fk in d.foreign_keys:
        if len(fk["columns"]) > 1:
            lines.append(
                f"Foreign key: ({', '.join(fk['columns'])}) → {fk['references']}({', '.join(fk['referenced_columns'])})"
            )
    for ref in d.referenced_by:
        lines.append(
            f"Referenced by: {ref['table']}({', '.join(ref['columns'])}) → ({', '.join(ref['referenced_columns'])})"
        )
    for u in d.unique_constraints:
        lines.append(f"Unique: ({', '.join(u['columns'])})")
    for check in d.check_constraints:
        lines.append(f"Check: {check['definition']}")
    for exclusion in d.exclusion_constraints:
        lines.append(f"Exclusion: {exclusion['definition']}")
    for index in d.indexes:
        lines.append(f"Index: {_short_index(index['definition'])}")
    if d.partition_key:
        lines.append(f"Partitioned by {d.partition_key} into {len(d.partitions)} partitions:")
        lines.extend(f"  {p['name']} {p['bound']}" for p in d.partitions[:MAX_PARTITIONS_SHOWN])
        if len(d.partitions) > MAX_PARTITIONS_SHOWN:
            lines.append(f"  … and {len(d.partitions) - MAX_PARTITIONS_SHOWN} more")
    if d.definition:
        lines.append("Definition: " + " ".join(d.definition.split()))
    return bounded_text(
        "\n".join(lines), limits, "query pg_catalog (e.g. pg_attribute, pg_indexes) for the parts not shown"
    )


def _column_line(c: Mapping[str, Any], fk: str | None) -> str:
    parts = [quote_ident(c["name"]), c["type"]]
    if "domain_base" in c:
        parts.append(
            f"(domain over {c['domain_base']}{''.join(' ' + x for x in c.get('domain_checks', []))})"
        )
    if "collation" in c:
        parts.append(f'collate "{c["collation"]}"')
    if not c["nullable"]:
        parts.append("NOT NULL")
    if "identity" in c:
        parts.append(f"identity {c['identity']}")
    if "generated" in c:
        parts.append(f"generated as {c['generated']}")
    if "default" in c:
        parts.append(f"default {c['default']}")
    if fk:
        parts.append(fk)
    if "enum_values" in c:
        parts.append("{" + "|".join(c["enum_values"]) + "}")
    if "comment" in c:
        parts.append(f"— {_one_line(c['comment'])}")
    return " ".join(parts)


def _short_index(definition: str) -> str:
    """`CREATE UNIQUE INDEX x ON s.t USING btree (a)` → `x unique btree (a)`."""
    match = re.match(r'CREATE (UNIQUE )?INDEX ("(?:[^"]|"")+"|\S+) ON .+? USING (.*)', definition)
    if not match:
        return definition
    unique, name, rest = match.groups()
    return f"{name} {'unique ' if unique else ''}{rest}"


def _size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def render_search(
    pattern: str, hits: Sequence[Mapping[str, Any]], limit: int, limits: Limits = Limits()
) -> str:
    """One line per hit: the table (and column with its type) and the comment that matched."""
    if not hits:
        return f"(nothing matches {_clip(pattern, MAX_PATTERN_SHOWN)!r}; try a shorter word, or list_tables)"
    lines = []
    for hit in hits:
        where = qualified(hit["schema"], hit["table_name"])
        if hit["column_name"] is None:
            line = f"{where} [{hit['kind']}]"
        else:
            line = f"{where}.{quote_ident(hit['column_name'])} {hit['type']}"
        if hit["comment"]:
            line += f" — {_clip(_one_line(hit['comment']), 120)}"
        lines.append(line)
    if len(hits) >= limit:
        lines.append(f"(first {limit} matches; use a more specific pattern for the rest)")
    return bounded_text("\n".join(lines), limits, "use a more specific pattern")


def render_relationships(
    scope: str, edges: Sequence[Mapping[str, Any]], limit: int, limits: Limits = Limits()
) -> str:
    """Join paths: `a(x) → b(y)` per foreign key, which is exactly the ON clause to write."""
    if not edges:
        return f"No foreign keys involve {scope}."
    lines = [f"Foreign keys ({len(edges)}) involving {scope}; join ON from.col = to.col:"]
    for e in edges[:limit]:
        lines.append(
            f"  {e['from']}({', '.join(e['from_columns'])}) → {e['to']}({', '.join(e['to_columns'])})"
        )
    if len(edges) > limit:
        lines.append(
            f"  … and {len(edges) - limit} more (all are in the structured content); pass table= to narrow"
        )
    return bounded_text("\n".join(lines), limits, "pass table= to narrow")


def render_stats(
    table: str, estimated_rows: int | None, columns: Sequence[Mapping[str, Any]], limits: Limits = Limits()
) -> str:
    rows = f"~{estimated_rows:,} rows" if estimated_rows is not None else "row count unknown"
    lines = [f"{table} ({rows})"]
    for c in columns:
        lines.append(f"{quote_ident(c['column'])} {c['type']}: {_stats_line(c, estimated_rows)}")
    return bounded_text("\n".join(lines), limits, "pass column= for one column's statistics")


def _stats_line(c: Mapping[str, Any], estimated_rows: int | None) -> str:
    parts: list[str] = []
    if c.get("null_frac") is not None:
        parts.append(f"nulls {c['null_frac'] * 100:.1f}%")
    n_distinct = c.get("n_distinct")
    if n_distinct is not None:
        if n_distinct < 0 and estimated_rows:
            parts.append(f"~{round(-n_distinct * estimated_rows):,} distinct")
        elif n_distinct > 0:
            parts.append(f"~{round(n_distinct):,} distinct")
    if c.get("most_common_vals"):
        values = parse_pg_array(c["most_common_vals"])
        freqs = c.get("most_common_freqs") or []
        shown = [f"{_clip(v or 'NULL', 40)} {f * 100:.1f}%" for v, f in zip(values, freqs, strict=False)][:10]
        parts.append("most common: " + ", ".join(shown))
    if c.get("histogram_bounds"):
        bounds = parse_pg_array(c["histogram_bounds"])
        if bounds:
            picks = [bounds[round(i * (len(bounds) - 1) / 4)] for i in range(5)]
            parts.append("min/quartiles/max ≈ " + " | ".join(_clip(b or "NULL", 40) for b in picks))
    if "source" in c:
        parts.append(f"(no planner statistics; from the {c['source']})")
        if c.get("min") is not None:
            parts.append(f"range {_clip(c['min'], 40)} … {_clip(c['max'], 40)}")
        if c.get("distinct_in_sample") is not None:
            parts.append(f"{c['distinct_in_sample']:,} distinct in sample")
    return "; ".join(parts) if parts else "no statistics (run ANALYZE)"


def parse_pg_array(text: str) -> list[str | None]:
    """Elements of a one-dimensional PostgreSQL array literal such as `{a,"b c",NULL}`."""
    body = text.strip()
    if not (body.startswith("{") and body.endswith("}")):
        return [text]
    items: list[str | None] = []
    current: list[str] = []
    quoted = in_quotes = False
    i = 1
    while i < len(body) - 1:
        ch = body[i]
        if in_quotes:
            if ch == "\\" and i + 1 < len(body) - 1:
                i += 1
                current.append(body[i])
            elif ch == '"':
                in_quotes = False
            else:
                current.append(ch)
        elif ch == '"':
            in_quotes = quoted = True
        elif ch == ",":
            items.append(_array_item(current, quoted))
            current, quoted = [], False
        else:
            current.append(ch)
        i += 1
    if current or quoted or items:
        items.append(_array_item(current, quoted))
    return items


def _array_item(chars: list[str], quoted: bool) -> str | None:
    value = "".join(chars)
    return None if not quoted and value == "NULL" else value


def render_plan(plan: Mapping[str, Any], limits: Limits = Limits()) -> str:
    """The plan tree, one node per line: what it does, on what, estimated rows and cost."""
    lines = [f"Estimated total cost {plan.get('Total Cost')}, rows {plan.get('Plan Rows')} (not executed)"]
    _plan_lines(plan, 0, lines)
    return bounded_text("\n".join(lines), limits, "explain a part of the statement (a subquery or CTE) alone")


def _plan_lines(node: Mapping[str, Any], depth: int, lines: list[str]) -> None:
    label = node.get("Node Type", "?")
    if node.get("Join Type"):
        label = f"{node['Join Type']} {label}"
    if node.get("Relation Name"):
        schema = node.get("Schema")
        target = qualified(schema, node["Relation Name"]) if schema else quote_ident(node["Relation Name"])
        label += f" on {target}"
    if node.get("Index Name"):
        label += f" using {node['Index Name']}"
    details = [f"rows≈{node.get('Plan Rows')}", f"cost {node.get('Startup Cost')}..{node.get('Total Cost')}"]
    for key in ("Index Cond", "Hash Cond", "Merge Cond", "Filter", "Sort Key", "Group Key"):
        if node.get(key):
            value = node[key] if isinstance(node[key], str) else ", ".join(map(str, node[key]))
            details.append(f"{key.lower()}: {_clip(value, 120)}")
    lines.append(f"{'  ' * depth}{label} ({'; '.join(details)})")
    for child in node.get("Plans", []):
        _plan_lines(child, depth + 1, lines)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_overview(info: Mapping[str, Any], limits: Limits = Limits()) -> str:
    lines = [
        f"Database {info['database']} ({_size(info['size_bytes'])}), connected as {info['role']}",
        str(info["version"]),
        f"Extensions: {', '.join(info['extensions']) or 'none'}",
        "Schemas:",
        *("  " + line for line in _schema_lines(info["schemas"]).splitlines()),
    ]
    return bounded_text("\n".join(lines), limits, "list_schemas and list_tables(schema=...) list the rest")
