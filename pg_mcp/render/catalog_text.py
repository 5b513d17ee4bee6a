"""Catalog answers (schemas, tables, descriptions, search hits, keys, statistics, plans) as compact text (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pg_mcp.database.records import (
    ColumnDescription,
    ColumnStatistics,
    Edge,
    NoteHit,
    Overview,
    SchemaSummary,
    SearchHit,
    TableDescription,
    TableSummary,
)
from pg_mcp.names import qualified, quote_ident
from pg_mcp.operator_notes import GlossaryTerm
from pg_mcp.render.results import bounded_text
from pg_mcp.render.values import Limits, parse_pg_array

MAX_PARTITIONS_SHOWN = 24


#: Characters of a caller's search pattern repeated back in a message.
MAX_PATTERN_SHOWN = 100


def render_tables(
    tables: Sequence[TableSummary], offset: int = 0, total: int | None = None, limits: Limits = Limits()
) -> str:
    """One line per relation: name, kind (unless table), estimated rows, comment; the page it is."""
    lines = []
    for t in tables:
        parts = [qualified(t.schema_, t.name)]
        if t.kind != "table":
            parts.append(f"[{t.kind}]")
        if t.estimated_rows is not None:
            parts.append(f"~{t.estimated_rows:,} rows")
        parts += [f"— {_clip(_one_line(note), 160)}" for note in _notes(t.comment, t.description)]
        lines.append(" ".join(parts))
    if not tables:
        lines.append("(no tables visible to this role here)")
    elif total is not None and (offset or offset + len(tables) < total):
        end = offset + len(tables)
        more = f"; next page: offset={end}" if end < total else ""
        lines.append(f"(tables {offset + 1} to {end} of {total}{more}; search_schema finds tables by name)")
    return bounded_text("\n".join(lines), limits, "list_tables(schema=...) or search_schema narrows the list")


def render_catalog_summary(schemas: Sequence[SchemaSummary], limits: Limits = Limits()) -> str:
    """For catalogs too big to list at once: the schemas and how to list each."""
    total = sum(s.tables for s in schemas)
    return bounded_text(
        f"{total:,} tables and views in {len(schemas)} schemas: too many to list at once. "
        "Call list_tables(schema=...) for one schema, or search_schema(pattern) to find tables by name.\n"
        + _schema_lines(schemas),
        limits,
        "search_schema(pattern) finds a schema's tables by name",
    )


def render_schemas(schemas: Sequence[SchemaSummary], limits: Limits = Limits()) -> str:
    return bounded_text(_schema_lines(schemas), limits, "search_schema(pattern) finds tables by name")


def _schema_lines(schemas: Sequence[SchemaSummary]) -> str:
    """One line per schema: name, table count, comment on one line."""
    lines = [
        f"{quote_ident(s.name)} ({s.tables} tables)"
        + "".join(f" — {_one_line(note)}" for note in _notes(s.comment, s.description))
        for s in schemas
    ]
    return "\n".join(lines) if lines else "(no schemas visible to this role)"


def render_description(d: TableDescription, limits: Limits = Limits()) -> str:
    """A compact, complete description: what a model needs to write correct SQL against the table."""
    rows = f", ~{d.estimated_rows:,} rows" if d.estimated_rows is not None else ""
    size = f", {_size(d.total_bytes)}" if d.total_bytes else ""
    lines = [f"{qualified(d.schema_, d.name)} ({d.kind}{rows}{size})"]
    lines += [_one_line(note) for note in _notes(d.comment, d.description)]
    fk_by_column = {
        fk.columns[0]: f"→ {fk.references}({', '.join(fk.referenced_columns)})"
        for fk in d.foreign_keys
        if len(fk.columns) == 1
    }
    lines.append("Columns:")
    for c in d.columns:
        lines.append("  " + _column_line(c, fk_by_column.get(c.name)))
    if d.primary_key:
        lines.append(f"Primary key: ({', '.join(map(quote_ident, d.primary_key))})")
    for fk in d.foreign_keys:
        if len(fk.columns) > 1:
            lines.append(
                f"Foreign key: ({', '.join(fk.columns)}) → {fk.references}({', '.join(fk.referenced_columns)})"
            )
    for ref in d.referenced_by:
        lines.append(
            f"Referenced by: {ref.table}({', '.join(ref.columns)}) → ({', '.join(ref.referenced_columns)})"
        )
    for u in d.unique_constraints:
        lines.append(f"Unique: ({', '.join(u.columns)})")
    for check in d.check_constraints:
        lines.append(f"Check: {check.definition}")
    for exclusion in d.exclusion_constraints:
        lines.append(f"Exclusion: {exclusion.definition}")
    for index in d.indexes:
        lines.append(f"Index: {_short_index(index.definition)}")
    if d.partition_key:
        lines.append(f"Partitioned by {d.partition_key} into {len(d.partitions)} partitions:")
        lines.extend(f"  {p.name} {p.bound}" for p in d.partitions[:MAX_PARTITIONS_SHOWN])
        if len(d.partitions) > MAX_PARTITIONS_SHOWN:
            lines.append(f"  … and {len(d.partitions) - MAX_PARTITIONS_SHOWN} more")
    if d.definition:
        lines.append("Definition: " + " ".join(d.definition.split()))
    return bounded_text(
        "\n".join(lines), limits, "query pg_catalog (e.g. pg_attribute, pg_indexes) for the parts not shown"
    )


def _column_line(c: ColumnDescription, fk: str | None) -> str:
    parts = [quote_ident(c.name), c.type]
    if c.domain_base is not None:
        parts.append(f"(domain over {c.domain_base}{''.join(' ' + x for x in c.domain_checks or [])})")
    if c.collation is not None:
        parts.append(f'collate "{c.collation}"')
    if not c.nullable:
        parts.append("NOT NULL")
    if c.identity is not None:
        parts.append(f"identity {c.identity}")
    if c.generated is not None:
        parts.append(f"generated as {c.generated}")
    if c.default is not None:
        parts.append(f"default {c.default}")
    if fk:
        parts.append(fk)
    if c.enum_values is not None:
        parts.append("{" + "|".join(c.enum_values) + "}")
    parts += [f"— {_one_line(note)}" for note in _notes(c.comment, c.description)]
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


def _notes(comment: str | None, description: str | None) -> list[str]:
    """PostgreSQL's comment, then the operator's description (unless it says the same)."""
    notes = [comment] if comment else []
    if description and _one_line(description) != _one_line(comment or ""):
        notes.append(description)
    return notes


def render_search(
    pattern: str, hits: Sequence[SearchHit | NoteHit], limit: int, limits: Limits = Limits()
) -> str:
    """One line per hit: the table (and column with its type), the schema or the glossary term, and the
    comment or description that matched."""
    if not hits:
        return f"(nothing matches {_clip(pattern, MAX_PATTERN_SHOWN)!r}; try a shorter word, or list_tables)"
    lines = []
    for hit in hits:
        if isinstance(hit, NoteHit):
            lines.append(_note_hit_line(hit))
            continue
        where = qualified(hit.schema_, hit.table_name)
        if hit.column_name is None:
            line = f"{where} [{hit.kind}]"
        else:
            line = f"{where}.{quote_ident(hit.column_name)} {hit.type}"
        line += "".join(f" — {_clip(_one_line(note), 120)}" for note in _notes(hit.comment, hit.description))
        lines.append(line)
    if len(hits) >= limit:
        lines.append(f"(first {limit} matches; use a more specific pattern for the rest)")
    return bounded_text("\n".join(lines), limits, "use a more specific pattern")


def _note_hit_line(hit: NoteHit) -> str:
    if hit.kind == "schema":
        return f"{quote_ident(hit.name)} [schema] — {_clip(hit.text, 120)}"
    line = f"{hit.name!r} [glossary] — {_clip(hit.text, 200)}"
    if hit.sql:
        line += f"; sql: {_clip(_one_line(hit.sql), 200)}"
    if hit.related:
        line += f"; about {', '.join(hit.related)}"
    return line


def render_glossary(terms: Sequence[GlossaryTerm], limits: Limits = Limits()) -> str:
    """The operator's glossary, a term per paragraph: its meaning, the SQL for it, what it is about."""
    if not terms:
        return "(no glossary terms here)"
    entries = []
    for term in terms:
        lines = [f"{term.term}: {term.meaning}"]
        if term.sql:
            lines.append(f"  sql: {_one_line(term.sql)}")
        if term.related:
            lines.append(f"  about: {', '.join(term.related)}")
        entries.append("\n".join(lines))
    return bounded_text("\n".join(entries), limits, "search_schema(pattern) finds one term")


def render_relationships(scope: str, edges: Sequence[Edge], limit: int, limits: Limits = Limits()) -> str:
    """Join paths: `a(x) → b(y)` per foreign key, which is exactly the ON clause to write."""
    if not edges:
        return f"No foreign keys involve {scope}."
    lines = [f"Foreign keys ({len(edges)}) involving {scope}; join ON from.col = to.col:"]
    for e in edges[:limit]:
        lines.append(f"  {e.from_}({', '.join(e.from_columns)}) → {e.to}({', '.join(e.to_columns)})")
    if len(edges) > limit:
        lines.append(
            f"  … and {len(edges) - limit} more (all are in the structured content); pass table= to narrow"
        )
    return bounded_text("\n".join(lines), limits, "pass table= to narrow")


def render_stats(
    table: str, estimated_rows: int | None, columns: Sequence[ColumnStatistics], limits: Limits = Limits()
) -> str:
    rows = f"~{estimated_rows:,} rows" if estimated_rows is not None else "row count unknown"
    lines = [f"{table} ({rows})"]
    for c in columns:
        lines.append(f"{quote_ident(c.column)} {c.type}: {_stats_line(c, estimated_rows)}")
    return bounded_text("\n".join(lines), limits, "pass column= for one column's statistics")


def _stats_line(c: ColumnStatistics, estimated_rows: int | None) -> str:
    parts: list[str] = []
    if c.null_frac is not None:
        parts.append(f"nulls {c.null_frac * 100:.1f}%")
    n_distinct = c.n_distinct
    if n_distinct is not None:
        if n_distinct < 0 and estimated_rows:
            parts.append(f"~{round(-n_distinct * estimated_rows):,} distinct")
        elif n_distinct > 0:
            parts.append(f"~{round(n_distinct):,} distinct")
    if c.most_common_vals:
        values = parse_pg_array(c.most_common_vals)
        freqs = c.most_common_freqs or []
        shown = [f"{_clip(v or 'NULL', 40)} {f * 100:.1f}%" for v, f in zip(values, freqs, strict=False)][:10]
        parts.append("most common: " + ", ".join(shown))
    if c.histogram_bounds:
        bounds = parse_pg_array(c.histogram_bounds)
        if bounds:
            picks = [bounds[round(i * (len(bounds) - 1) / 4)] for i in range(5)]
            parts.append("min/quartiles/max ≈ " + " | ".join(_clip(b or "NULL", 40) for b in picks))
    if c.source is not None:
        parts.append(f"(no planner statistics; from the {c.source})")
        if c.min is not None:
            parts.append(f"range {_clip(c.min, 40)} … {_clip(c.max or 'NULL', 40)}")
        if c.distinct_in_sample is not None:
            parts.append(f"{c.distinct_in_sample:,} distinct in sample")
    return "; ".join(parts) if parts else "no statistics (run ANALYZE)"


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


def render_overview(info: Overview, limits: Limits = Limits()) -> str:
    lines = [
        f"Database {info.database} ({_size(info.size_bytes)}), connected as {info.role}",
        *([_one_line(info.description)] if info.description else []),
        info.version,
        f"Extensions: {', '.join(info.extensions) or 'none'}",
        "Schemas:",
        *("  " + line for line in _schema_lines(info.schemas).splitlines()),
    ]
    return bounded_text("\n".join(lines), limits, "list_schemas and list_tables(schema=...) list the rest")
