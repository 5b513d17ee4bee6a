"""Schema introspection: fixed pg_catalog queries with `$n` parameters, nothing spliced in.

Only schemas the connected role may use are exposed (optionally narrowed by PG_MCP_SCHEMAS),
and only relations it may read. Partitions are folded into their partitioned parent to keep
listings short.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pg_mcp.database.executor import Database
from pg_mcp.database.records import (
    ColumnDescription,
    ColumnType,
    Definition,
    ForeignKey,
    ForeignKeyLink,
    Index,
    NoteHit,
    Overview,
    Partition,
    Reference,
    SchemaSummary,
    SearchHit,
    TableDescription,
    TableSummary,
    UniqueConstraint,
)
from pg_mcp.errors import NotFoundError
from pg_mcp.guard.access import AccessPolicy
from pg_mcp.names import parse_qualified_name, qualified
from pg_mcp.operator_notes import NO_NOTES, GlossaryTerm, OperatorNotes

KINDS = {
    "r": "table",
    "p": "partitioned table",
    "v": "view",
    "m": "materialized view",
    "f": "foreign table",
}

#: A schema is exposed when it is not a system schema, the role can use it, and it is in $1 (if given).
EXPOSED_SCHEMA = """
    n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
    AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'
    AND has_schema_privilege(n.oid, 'USAGE')
    AND ($1::text[] IS NULL OR n.nspname = ANY($1::text[]))
"""


def listed_relation(first: int) -> str:
    """A relation is listed when it is a readable table-like object, not a partition, and allowed.

    `$first` / `$first+1` are the operator's table allowlist as parallel schema / table arrays
    (table `*` for a whole schema), NULL for no allowlist; `$first+2` / `$first+3` the relations the
    expanded policy denies (views and matviews derived from what is out of reach). Applying them in
    SQL, not afterwards, keeps LIMIT / OFFSET pages and counts right.
    """
    schemas, tables = f"${first}::text[]", f"${first + 1}::text[]"
    denied_schemas, denied_tables = f"${first + 2}::text[]", f"${first + 3}::text[]"
    return f"""
    c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition
    AND (has_table_privilege(c.oid, 'SELECT') OR has_any_column_privilege(c.oid, 'SELECT'))
    AND ({schemas} IS NULL OR EXISTS (
        SELECT 1 FROM unnest({schemas}, {tables}) AS allowed(schema_name, table_name)
        WHERE allowed.schema_name = n.nspname AND allowed.table_name IN ('*', c.relname)))
    AND NOT EXISTS (SELECT 1 FROM unnest({denied_schemas}, {denied_tables}) AS denied(schema_name, table_name)
        WHERE denied.schema_name = n.nspname AND denied.table_name = c.relname)
"""


def _over_leaf_partitions(aggregate: str) -> str:
    """`aggregate` over the leaf partitions `p` of the partitioned table `c`: they hold its rows and pages."""
    return f"""(SELECT {aggregate} FROM pg_partition_tree(c.oid) AS tree
        JOIN pg_class p ON p.oid = tree.relid WHERE tree.isleaf)"""


#: A partitioned table's row estimate from its leaf partitions `p`: NULL when none was ever analyzed.
_LEAF_ROWS = "CASE WHEN bool_and(p.reltuples < 0) THEN NULL ELSE sum(greatest(p.reltuples, 0)) END::bigint"

#: Planner row estimate; partitioned tables sum their leaf partitions; -1 (never analyzed) becomes NULL.
_ROW_ESTIMATE = f"""
    CASE WHEN c.relkind = 'p' THEN {_over_leaf_partitions(_LEAF_ROWS)}
    WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::bigint END
"""

LIST_SCHEMAS_SQL = f"""
SELECT n.nspname AS name, obj_description(n.oid, 'pg_namespace') AS comment,
       count(c.oid) AS tables
FROM pg_namespace n
LEFT JOIN pg_class c ON c.relnamespace = n.oid AND {listed_relation(2)}
WHERE {EXPOSED_SCHEMA}
GROUP BY n.oid, n.nspname ORDER BY n.nspname
"""

#: One page of listed relations in (schema, name) byte order after the key ($3, $4), skipping $6, at most
#: $5. The work follows the schemas the page spans, not the whole catalog: schemas are read in name order,
#: each one's relations through pg_class's (relname, relnamespace) index from the key on, and the schemas
#: after a full page are not read; comments and partition sums are read for the page's rows only. The
#: plan's cost stays far below jit_above_cost (a per-row partition subquery priced a page at 200,000+, and
#: compiling the plan took longer than running it); tests/test_analyst_tools.py checks it on 5,000 tables.
LIST_TABLES_SQL = f"""
WITH page AS MATERIALIZED (
    SELECT c.oid, n.nspname, c.relname, c.relkind, c.reltuples
    FROM pg_namespace n
    CROSS JOIN LATERAL (
        SELECT c.oid, c.relname, c.relkind, c.reltuples FROM pg_class c
        WHERE c.relnamespace = n.oid
          AND c.relname > CASE WHEN n.nspname = $3::name THEN $4::name ELSE ''::name END
          AND {listed_relation(7)}
        ORDER BY c.relname LIMIT CASE WHEN $6::int8 <= 9223372036854775807 - $5::int8 THEN $5 + $6 END
    ) c
    WHERE {EXPOSED_SCHEMA} AND ($2::text IS NULL OR n.nspname = $2) AND n.nspname >= $3::name
    ORDER BY n.nspname, c.relname
    LIMIT $5 OFFSET $6
), partitioned AS (
    SELECT t.oid, {_LEAF_ROWS} AS estimated_rows
    FROM page t CROSS JOIN LATERAL pg_partition_tree(t.oid) AS tree JOIN pg_class p ON p.oid = tree.relid
    WHERE t.relkind = 'p' AND tree.isleaf
    GROUP BY t.oid
)
SELECT t.nspname AS schema, t.relname AS name, t.relkind::text AS kind,
       CASE WHEN t.relkind = 'p' THEN pt.estimated_rows WHEN t.reltuples >= 0 THEN t.reltuples::bigint END
           AS estimated_rows,
       d.description AS comment
FROM page t
LEFT JOIN partitioned pt ON pt.oid = t.oid
LEFT JOIN pg_description d ON d.objoid = t.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0
ORDER BY t.nspname, t.relname
"""

#: How many relations of the exposed schema $2 are listed (the schema's pg_class rows only).
COUNT_TABLES_SQL = f"""
SELECT count(*) FROM pg_namespace n
CROSS JOIN LATERAL (SELECT FROM pg_class c WHERE c.relnamespace = n.oid AND {listed_relation(3)}) AS listed
WHERE {EXPOSED_SCHEMA} AND n.nspname = $2
"""

FIND_RELATION_SQL = f"""
SELECT c.oid, n.nspname AS schema, c.relname AS name, pg_table_is_visible(c.oid) AS visible
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {EXPOSED_SCHEMA} AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND (has_table_privilege(c.oid, 'SELECT') OR has_any_column_privilege(c.oid, 'SELECT'))
  AND lower(c.relname) = lower($2) AND ($3::text IS NULL OR lower(n.nspname) = lower($3))
"""

ALL_RELATION_NAMES_SQL = f"""
SELECT n.nspname AS schema, c.relname AS name
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {EXPOSED_SCHEMA} AND {listed_relation(2)}
"""

EXPOSED_SCHEMA_NAMES_SQL = f"SELECT n.nspname FROM pg_namespace n WHERE {EXPOSED_SCHEMA}"

RELATION_SQL = f"""
SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind, {_ROW_ESTIMATE} AS estimated_rows,
       obj_description(c.oid, 'pg_class') AS comment,
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid, true) END AS definition,
       CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partition_key,
       CASE WHEN c.relkind = 'p' THEN {_over_leaf_partitions("sum(pg_total_relation_size(p.oid))::bigint")}
            WHEN c.relkind IN ('r', 'm') THEN pg_total_relation_size(c.oid) END AS total_bytes
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = $1
"""

PARTITIONS_SQL = """
SELECT n.nspname AS schema, c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE i.inhparent = $1 ORDER BY c.relname
"""

COLUMNS_SQL = """
SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
       pg_get_expr(d.adbin, d.adrelid) AS default, col_description(a.attrelid, a.attnum) AS comment,
       a.attidentity::text AS identity, a.attgenerated::text AS generated,
       (SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e
        WHERE e.enumtypid IN (a.atttypid, t.typelem, t.typbasetype)) AS enum_values,
       CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END AS domain_base,
       (SELECT array_agg(pg_get_constraintdef(dc.oid, true) ORDER BY dc.conname) FROM pg_constraint dc
        WHERE dc.contypid = a.atttypid) AS domain_checks,
       CASE WHEN a.attcollation <> t.typcollation THEN coll.collname END AS collation
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_collation coll ON coll.oid = a.attcollation
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

CONSTRAINTS_SQL = """
SELECT con.conname AS name, con.contype::text AS type, pg_get_constraintdef(con.oid, true) AS definition,
       sn.nspname AS source_schema, s.relname AS source_table,
       (SELECT array_agg(a.attname ORDER BY k.ord) FROM unnest(con.conkey) WITH ORDINALITY k(num, ord)
        JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num) AS columns,
       tn.nspname AS target_schema, t.relname AS target_table,
       (SELECT array_agg(a.attname ORDER BY k.ord) FROM unnest(con.confkey) WITH ORDINALITY k(num, ord)
        JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num) AS target_columns
FROM pg_constraint con
JOIN pg_class s ON s.oid = con.conrelid JOIN pg_namespace sn ON sn.oid = s.relnamespace
LEFT JOIN pg_class t ON t.oid = con.confrelid LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace
WHERE (con.conrelid = $1 OR (con.confrelid = $1 AND con.contype = 'f'))
  AND con.contype IN ('p', 'u', 'f', 'c', 'x')
  AND (con.conparentid = 0 OR con.conrelid = $1)
ORDER BY con.contype, con.conname
"""

INDEXES_SQL = """
SELECT ic.relname AS name, pg_get_indexdef(i.indexrelid) AS definition, i.indisunique AS is_unique
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
WHERE i.indrelid = $1
  AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid AND con.conrelid = $1)
ORDER BY ic.relname
"""


#: Tables, views and columns whose name or comment contains $2 (LIKE-escaped), best matches first.
SEARCH_SQL = f"""
WITH rels AS (
    SELECT c.oid, n.nspname, c.relname, c.relkind, obj_description(c.oid, 'pg_class') AS comment
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE {EXPOSED_SCHEMA} AND {listed_relation(4)}
), hits AS (
    SELECT r.nspname AS schema, r.relname AS table_name, r.relkind::text AS kind, NULL::text AS column_name,
           NULL::text AS type, r.comment,
           CASE WHEN lower(r.relname) = lower($2) THEN 0 WHEN r.relname ILIKE $2 || '%' THEN 1
                WHEN r.relname ILIKE '%' || $2 || '%' THEN 2 ELSE 4 END AS rank
    FROM rels r
    WHERE r.relname ILIKE '%' || $2 || '%' OR r.comment ILIKE '%' || $2 || '%'
    UNION ALL
    SELECT r.nspname, r.relname, r.relkind::text, a.attname, format_type(a.atttypid, a.atttypmod),
           col_description(r.oid, a.attnum),
           CASE WHEN lower(a.attname) = lower($2) THEN 1 WHEN a.attname ILIKE $2 || '%' THEN 2
                WHEN a.attname ILIKE '%' || $2 || '%' THEN 3 ELSE 5 END
    FROM rels r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE a.attname ILIKE '%' || $2 || '%' OR col_description(r.oid, a.attnum) ILIKE '%' || $2 || '%'
)
SELECT * FROM hits ORDER BY rank, schema, table_name, column_name NULLS FIRST LIMIT $3
"""

#: The listed relations ($2 schemas, $3 names) and columns ($4, NULL for the relation itself) of those the
#: operator described, as search hits: what is not exposed, not listed or not there is not returned.
DESCRIBED_SQL = f"""
SELECT n.nspname AS schema, c.relname AS table_name, c.relkind::text AS kind, a.attname AS column_name,
       CASE WHEN a.attnum IS NOT NULL THEN format_type(a.atttypid, a.atttypmod) END AS type,
       CASE WHEN a.attnum IS NULL THEN obj_description(c.oid, 'pg_class')
            ELSE col_description(c.oid, a.attnum) END AS comment
FROM unnest($2::text[], $3::text[], $4::text[]) AS wanted(schema_name, table_name, column_name)
JOIN pg_namespace n ON n.nspname = wanted.schema_name
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = wanted.table_name
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = wanted.column_name AND a.attnum > 0
     AND NOT a.attisdropped
WHERE {EXPOSED_SCHEMA} AND {listed_relation(5)} AND (wanted.column_name IS NULL OR a.attnum IS NOT NULL)
"""

#: Foreign keys among exposed relations (partition copies of a parent's key left out).
FOREIGN_KEYS_SQL = f"""
SELECT con.conname AS name, con.conrelid AS source_oid, sn.nspname AS source_schema, s.relname AS source_table,
       (SELECT array_agg(a.attname ORDER BY k.ord) FROM unnest(con.conkey) WITH ORDINALITY k(num, ord)
        JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num) AS columns,
       con.confrelid AS target_oid, tn.nspname AS target_schema, t.relname AS target_table,
       (SELECT array_agg(a.attname ORDER BY k.ord) FROM unnest(con.confkey) WITH ORDINALITY k(num, ord)
        JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num) AS target_columns
FROM pg_constraint con
JOIN pg_class s ON s.oid = con.conrelid JOIN pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_class t ON t.oid = con.confrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace
WHERE con.contype = 'f' AND con.conparentid = 0 AND NOT s.relispartition
  AND EXISTS (SELECT 1 FROM pg_namespace n WHERE n.oid = s.relnamespace AND {EXPOSED_SCHEMA})
  AND EXISTS (SELECT 1 FROM pg_namespace n WHERE n.oid = t.relnamespace AND {EXPOSED_SCHEMA})
ORDER BY sn.nspname, s.relname, con.conname
"""

#: Planner statistics per column ($2 = schema, $3 = table, $4 = column or NULL); inherited rows for partitioned parents.
STATS_SQL = """
SELECT attname AS column, null_frac, n_distinct, most_common_vals::text AS most_common_vals,
       most_common_freqs, histogram_bounds::text AS histogram_bounds, correlation, avg_width
FROM pg_stats
WHERE schemaname = $1 AND tablename = $2 AND ($3::text IS NULL OR attname = $3)
ORDER BY inherited DESC
"""

ROW_ESTIMATE_SQL = f"""
SELECT {_ROW_ESTIMATE} AS estimated_rows, c.relkind::text AS kind,
       CASE WHEN c.relkind = 'p' THEN {_over_leaf_partitions("sum(p.relpages)::bigint")}
            ELSE c.relpages::bigint END AS pages
FROM pg_class c WHERE c.oid = $1
"""

COLUMN_NAMES_SQL = """
SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type
FROM pg_attribute a WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
"""

SEARCH_LIMIT = 50

COMPLETE_SCHEMAS_SQL = f"""
SELECT n.nspname FROM pg_namespace n
WHERE {EXPOSED_SCHEMA} AND starts_with(lower(n.nspname), lower($2))
ORDER BY n.nspname LIMIT 100
"""

COMPLETE_TABLES_SQL = f"""
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {EXPOSED_SCHEMA} AND {listed_relation(4)}
  AND ($2::text IS NULL OR n.nspname = $2) AND starts_with(lower(c.relname), lower($3))
ORDER BY c.relname LIMIT 100
"""

#: Functions PostgreSQL could call through field-selection syntax: `(expr).f` needs f callable with
#: one argument; `alias.f` needs f callable with one row (composite, record or polymorphic) argument.
FIELD_CALLABLE_FUNCTIONS_SQL = """
SELECT p.proname AS name,
       bool_or(t.typtype = 'c' OR t.typname IN ('record', 'any', 'anyelement', 'anynonarray',
                                                'anycompatible', 'anycompatiblenonarray')) AS takes_row
FROM pg_proc p JOIN pg_type t ON t.oid = p.proargtypes[0]
WHERE p.pronargs >= 1 AND p.pronargs - p.pronargdefaults <= 1
GROUP BY p.proname
"""

#: Names of functions, operators and cast targets defined outside pg_catalog, not by an extension
#: (extensions are installed by a superuser): the guard refuses unqualified uses that they could shadow.
#: And the names of views that call such a function (not allowed by the operator): planning one could
#: already run it (immutable calls with constant arguments are folded), so they are refused by name.
OVERVIEW_SQL = """
SELECT version() AS version, current_database() AS database, current_user AS role,
       pg_database_size(current_database()) AS size_bytes,
       ARRAY(SELECT extname || ' ' || extversion FROM pg_extension ORDER BY extname) AS extensions
"""


@dataclass(frozen=True)
class RelationRef:
    """A resolved, exposed relation."""

    oid: int
    schema: str
    name: str

    @property
    def display(self) -> str:
        return qualified(self.schema, self.name)


@dataclass(frozen=True)
class RelationSize:
    """What the planner knows about a relation's size; rows is None before the first ANALYZE."""

    rows: int | None
    pages: int
    kind: str


class Catalog:
    """Read-only views of the schema, limited to what the operator exposed."""

    def __init__(
        self, db: Database, access: AccessPolicy | None = None, notes: OperatorNotes = NO_NOTES
    ) -> None:
        self.db = db
        self.access = access or AccessPolicy()
        #: What the operator wrote about the database's objects: attached to what is exposed only.
        self.notes = notes
        self._schemas: list[str] | None = sorted(self.access.schemas) or None

    @property
    def _allowlist(self) -> tuple[list[str] | None, list[str] | None, list[str], list[str]]:
        """The parameters of `listed_relation`, from the current (expanded) policy."""
        pairs = sorted(self.access.tables)
        denied = sorted(self.access.denied)
        return (
            [schema for schema, _ in pairs] if pairs else None,
            [table for _, table in pairs] if pairs else None,
            [schema for schema, _ in denied],
            [table for _, table in denied],
        )

    def _allowed(self, schema: str, table: str) -> bool:
        return self.access.table_allowed(schema, table)

    async def list_schemas(self) -> list[SchemaSummary]:
        rows = await self.db.fetch_fixed(LIST_SCHEMAS_SQL, self._schemas, *self._allowlist)
        return [
            SchemaSummary(
                name=row["name"],
                comment=row["comment"],
                tables=row["tables"],
                description=self.notes.schema(row["name"]),
            )
            for row in rows
        ]

    async def list_tables(
        self,
        schema: str | None = None,
        *,
        after: tuple[str, str] = ("", ""),
        limit: int = 1000,
        offset: int = 0,
    ) -> list[TableSummary]:
        """Relations of an exposed schema (or all) ordered by (schema, name), after `after`, skipping `offset`."""
        rows = await self.db.fetch_fixed(
            LIST_TABLES_SQL, self._schemas, schema, after[0], after[1], limit, offset, *self._allowlist
        )
        return [_table_summary(row, self.notes.table(row["schema"], row["name"])) for row in rows]

    async def count_tables(self, schema: str) -> int:
        """How many relations `list_tables(schema)` lists in all: one schema's rows, not every schema's."""
        rows = await self.db.fetch_fixed(COUNT_TABLES_SQL, self._schemas, schema, *self._allowlist)
        return int(rows[0][0])

    async def resolve_schema(self, schema: str) -> str:
        """The exposed schema matching `schema` (exactly, else case-insensitively), or NotFoundError."""
        names: list[str] = [
            str(row[0]) for row in await self.db.fetch_fixed(EXPOSED_SCHEMA_NAMES_SQL, self._schemas)
        ]
        wanted = schema.strip()
        if len(wanted) > 1 and wanted[0] == wanted[-1] == '"':
            wanted = wanted[1:-1].replace('""', '"')
            if wanted in names:
                return wanted
        else:
            matches = [name for name in names if name.lower() == wanted.lower()]
            for candidate in (wanted, wanted.lower()):
                if candidate in names:
                    return candidate
            if len(matches) == 1:
                return matches[0]
        close = difflib.get_close_matches(wanted, names, n=5, cutoff=0.4)
        raise NotFoundError(
            f"Schema {shown(schema)} does not exist or is not exposed.",
            f"Did you mean: {', '.join(close)}?" if close else f"Exposed schemas: {', '.join(names[:20])}.",
        )

    async def resolve_table(self, table: str, schema: str | None = None) -> RelationRef:
        """Find an exposed relation by `table`, `schema.table` or quoted names; NotFoundError lists close names."""
        parts = parse_qualified_name(table)
        if len(parts) == 2:
            if schema is not None and schema != parts[0].text:
                raise NotFoundError(
                    f"The table {shown(table)} names schema {shown(parts[0].text)} but schema={shown(schema)} was also given.",
                    "Give the schema once.",
                )
            schema_part: str | None = parts[0].text
        else:
            schema_part = parse_qualified_name(schema)[-1].text if schema else None
        name = parts[-1]
        found = await self.db.fetch_fixed(FIND_RELATION_SQL, self._schemas, name.text, schema_part)
        rows = [r for r in found if self._allowed(r["schema"], r["name"])]
        exact = [
            r for r in rows if r["name"] == name.text and (schema_part is None or r["schema"] == schema_part)
        ]
        candidates = exact or ([] if name.quoted else rows)
        if len(candidates) > 1:
            visible = [r for r in candidates if r["visible"]]
            if len(visible) == 1:
                candidates = visible
        if len(candidates) == 1:
            row = candidates[0]
            return RelationRef(row["oid"], row["schema"], row["name"])
        if len(candidates) > 1:
            options = ", ".join(qualified(r["schema"], r["name"]) for r in candidates)
            raise NotFoundError(
                f"{shown(table)} is ambiguous: {options}.", "Qualify it with the schema: schema.table."
            )
        raise NotFoundError(
            f"Table {shown(table)}{f' in schema {shown(schema)}' if schema else ''} does not exist or is not exposed.",
            await self._suggest(name.text),
        )

    async def _suggest(self, name: str) -> str:
        rows = await self.db.fetch_fixed(ALL_RELATION_NAMES_SQL, self._schemas, *self._allowlist)
        by_name: dict[str, list[str]] = {}
        for row in rows:
            by_name.setdefault(row["name"].lower(), []).append(qualified(row["schema"], row["name"]))
        close = difflib.get_close_matches(name.lower(), list(by_name), n=5, cutoff=0.5)
        if not close:
            return "Use list_tables to see the available tables."
        return "Closest existing names: " + ", ".join(q for key in close for q in by_name[key][:2]) + "."

    def _visible_constraint(self, con: Mapping[str, Any]) -> bool:
        """Foreign keys from or to a hidden table or column are left out of descriptions."""
        return con["type"] != "f" or self._visible_ends(con)

    async def describe(self, ref: RelationRef) -> TableDescription:
        """The relation, its columns, partitions, constraints and indexes, read in one snapshot."""
        async with self.db.call(short=True, jit=False, repeatable=True) as session:
            return await self._describe(ref, session.fetch)

    async def _describe(
        self, ref: RelationRef, fetch: Callable[..., Awaitable[list[Any]]]
    ) -> TableDescription:
        rel = await fetch(RELATION_SQL, ref.oid)
        if not rel:
            raise NotFoundError(
                f"Table {ref.display} no longer exists.", "Use list_tables to see current tables."
            )
        info = rel[0]
        hidden = self.access.hidden(ref.schema, ref.name)
        columns = [
            _column(r, self.notes.column(info["schema"], info["name"], r["name"]))
            for r in await fetch(COLUMNS_SQL, ref.oid)
            if r["name"] not in hidden
        ]
        partitions = await fetch(PARTITIONS_SQL, ref.oid) if info["partition_key"] else []
        constraints = [
            con
            for con in await fetch(CONSTRAINTS_SQL, ref.oid)
            if not mentions(con["definition"], hidden) and self._visible_constraint(con)
        ]
        indexes = [
            Index(name=row["name"], definition=row["definition"], unique=row["is_unique"])
            for row in await fetch(INDEXES_SQL, ref.oid)
            if not mentions(row["definition"], hidden)
        ]
        return TableDescription(
            schema=info["schema"],
            name=info["name"],
            kind=KINDS.get(info["kind"], info["kind"]),
            estimated_rows=info["estimated_rows"],
            comment=info["comment"],
            description=self.notes.table(info["schema"], info["name"]),
            columns=columns,
            definition=info["definition"],
            partition_key=info["partition_key"],
            total_bytes=info["total_bytes"],
            partitions=[
                Partition(name=qualified(row["schema"], row["name"]), bound=row["bound"])
                for row in partitions
            ],
            indexes=indexes,
            **_constraints(constraints, ref),
        )

    async def search(self, pattern: str, limit: int = SEARCH_LIMIT) -> list[SearchHit | NoteHit]:
        """Tables, views and columns matching `pattern` in name, comment or the operator's description,
        exposed schemas by their description and glossary terms by name or meaning: best first."""
        escaped = pattern.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = await self.db.fetch_fixed(SEARCH_SQL, self._schemas, escaped, limit, *self._allowlist)
        hits: list[SearchHit | NoteHit] = [
            self._hit(row, row["rank"]) for row in rows if self._visible_hit(row)
        ]
        found = {(hit.schema_, hit.table_name, hit.column_name) for hit in hits if isinstance(hit, SearchHit)}
        described = [key for key in self.notes.described(pattern) if key not in found]
        if described:
            rows = await self.db.fetch_fixed(
                DESCRIBED_SQL, self._schemas, *(list(part) for part in zip(*described, strict=True)),
                *self._allowlist,
            )  # fmt: skip
            hits += [
                self._hit(row, 4 if row["column_name"] is None else 5)
                for row in rows
                if self._visible_hit(row)
            ]
        hits += await self._note_hits(pattern)
        return sorted(hits, key=lambda hit: hit.rank)[:limit]  # stable: each source's order within a rank

    def _visible_hit(self, row: Mapping[str, Any]) -> bool:
        return row["column_name"] not in self.access.hidden(row["schema"], row["table_name"])

    def _hit(self, row: Mapping[str, Any], rank: int) -> SearchHit:
        schema, table, column = row["schema"], row["table_name"], row["column_name"]
        return SearchHit(
            schema=schema,
            table_name=table,
            kind=KINDS.get(row["kind"], row["kind"]),
            column_name=column,
            type=row["type"],
            comment=row["comment"],
            rank=rank,
            description=self.notes.table(schema, table)
            if column is None
            else self.notes.column(schema, table, column),
        )

    async def _note_hits(self, pattern: str) -> list[NoteHit]:
        """Exposed schemas whose description matches, and glossary terms (within the limits) that do."""
        hits = []
        schemas = self.notes.described_schemas(pattern)
        if schemas:
            exposed = {
                str(row[0]) for row in await self.db.fetch_fixed(EXPOSED_SCHEMA_NAMES_SQL, self._schemas)
            }
            hits += [
                NoteHit(kind="schema", name=name, text=self.notes.schemas[name], rank=4)
                for name in sorted(schemas)
                if name in exposed
            ]
        for term in self.glossary():
            rank = term.rank(pattern)
            if rank is not None:
                hits.append(
                    NoteHit(
                        kind="glossary",
                        name=term.term,
                        text=term.meaning,
                        rank=rank,
                        sql=term.sql,
                        related=term.related,
                    )
                )
        return hits

    def glossary(self) -> tuple[GlossaryTerm, ...]:
        """The operator's glossary, without the terms that name a table or column out of reach."""
        return self.notes.terms(self.access)

    async def foreign_keys(self) -> list[ForeignKeyLink]:
        """Every foreign key between exposed relations, with the join columns on both sides."""
        rows = await self.db.fetch_fixed(FOREIGN_KEYS_SQL, self._schemas)
        return [
            ForeignKeyLink(
                **{
                    **dict(row),
                    "columns": row["columns"] or [],
                    "target_columns": row["target_columns"] or [],
                }
            )
            for row in rows
            if self._visible_ends(row)
        ]

    def _visible_ends(self, key: Mapping[str, Any]) -> bool:
        """Both ends of a foreign key (a catalog row) are exposed, and none of its columns is hidden."""
        ends = ((key["source_schema"], key["source_table"], key["columns"]),
                (key["target_schema"], key["target_table"], key["target_columns"]))  # fmt: skip
        return all(
            self._allowed(schema, table) and not set(columns or ()) & self.access.hidden(schema, table)
            for schema, table, columns in ends
        )

    async def stats(self, ref: RelationRef, column: str | None) -> dict[str, Mapping[str, Any]]:
        """The planner's statistics row per visible column (the whole partition tree's where there is one)."""
        rows = await self.db.fetch_fixed(STATS_SQL, ref.schema, ref.name, column)
        seen: dict[str, Mapping[str, Any]] = {}
        hidden = self.access.hidden(ref.schema, ref.name)
        for row in rows:  # inherited (whole partition tree) rows come first and win
            if row["column"] not in hidden:
                seen.setdefault(row["column"], row)
        return seen

    async def complete_schema(self, prefix: str) -> list[str]:
        return [str(r[0]) for r in await self.db.fetch_fixed(COMPLETE_SCHEMAS_SQL, self._schemas, prefix)]

    async def complete_table(self, schema: str | None, prefix: str) -> list[str]:
        rows = await self.db.fetch_fixed(COMPLETE_TABLES_SQL, self._schemas, schema, prefix, *self._allowlist)
        return [str(r[0]) for r in rows]

    async def field_callable_functions(self) -> tuple[frozenset[str], frozenset[str]]:
        """Names callable as `(expr).name`, and the subset callable as `alias.name` on a whole row."""
        rows = await self.db.fetch_fixed(FIELD_CALLABLE_FUNCTIONS_SQL)
        one_arg = frozenset(str(row["name"]) for row in rows)
        return one_arg, frozenset(str(row["name"]) for row in rows if row["takes_row"])

    async def overview(self) -> Overview:
        """Server version, size, extensions and schemas: what a model reads first about a database."""
        info = dict((await self.db.fetch_fixed(OVERVIEW_SQL))[0])
        return Overview(**info, schemas=await self.list_schemas())

    async def size(self, ref: RelationRef) -> RelationSize:
        """The planner's row and page estimates and the relation kind code (r, p, v, m, f)."""
        row = (await self.db.fetch_fixed(ROW_ESTIMATE_SQL, ref.oid))[0]
        return RelationSize(row["estimated_rows"], row["pages"] or 0, row["kind"])

    async def columns(self, ref: RelationRef) -> list[ColumnType]:
        hidden = self.access.hidden(ref.schema, ref.name)
        rows = await self.db.fetch_fixed(COLUMN_NAMES_SQL, ref.oid)
        return [ColumnType(name=row["name"], type=row["type"]) for row in rows if row["name"] not in hidden]


def shown(name: str) -> str:
    """A name as a message shows it, as PostgreSQL's do: in double quotes, once (a name the caller
    quoted is shown as written, not quoted again)."""
    name = name.strip()
    return name if name.startswith('"') else f'"{name}"'


def mentions(definition: str | None, names: frozenset[str]) -> bool:
    """Whether a constraint or index definition uses one of `names` (plain or quoted)."""
    return bool(definition) and any(
        re.search(rf'(^|[^\w$]){re.escape(name)}"?($|[^\w$])', definition or "") for name in names
    )


def _table_summary(row: Mapping[str, Any], description: str | None) -> TableSummary:
    return TableSummary(
        schema=row["schema"],
        name=row["name"],
        kind=KINDS[row["kind"]],
        estimated_rows=row["estimated_rows"],
        comment=row["comment"],
        description=description,
    )


def _column(row: Mapping[str, Any], description: str | None) -> ColumnDescription:
    """Only the facts that apply: an identity column's default is its sequence, a generated one's its
    expression."""
    identity, generated, default = row["identity"], row["generated"], row["default"]
    domain = row["domain_base"]
    return ColumnDescription(
        name=row["name"],
        type=row["type"],
        nullable=not row["not_null"],
        identity=("always" if identity == "a" else "by default") if identity else None,
        generated=default if generated and not identity else None,
        default=default if not identity and not generated else None,
        domain_base=domain,
        domain_checks=list(row["domain_checks"]) if domain and row["domain_checks"] else None,
        collation=row["collation"] or None,
        enum_values=list(row["enum_values"]) if row["enum_values"] else None,
        comment=row["comment"] or None,
        description=description,
    )


def _constraints(rows: list[Mapping[str, Any]], ref: RelationRef) -> dict[str, Any]:
    """The description's key and constraint fields, from CONSTRAINTS_SQL's rows."""
    found: dict[str, Any] = {
        "primary_key": [], "foreign_keys": [], "referenced_by": [], "unique_constraints": [],
        "check_constraints": [], "exclusion_constraints": [],
    }  # fmt: skip
    for con in rows:
        columns = list(con["columns"] or [])
        kind, name, definition = con["type"], con["name"], con["definition"]
        if kind == "p":
            found["primary_key"] = columns
        elif kind == "u":
            found["unique_constraints"].append(UniqueConstraint(name=name, columns=columns))
        elif kind in ("c", "x"):
            found["check_constraints" if kind == "c" else "exclusion_constraints"].append(
                Definition(name=name, definition=definition)
            )
        elif kind == "f":
            referenced = list(con["target_columns"] or [])
            if (con["source_schema"], con["source_table"]) == (ref.schema, ref.name):
                target = qualified(con["target_schema"], con["target_table"])
                found["foreign_keys"].append(
                    ForeignKey(name=name, columns=columns, references=target, referenced_columns=referenced)
                )
            if (con["target_schema"], con["target_table"]) == (
                ref.schema,
                ref.name,
            ):  # both: a self-reference
                source = qualified(con["source_schema"], con["source_table"])
                found["referenced_by"].append(
                    Reference(name=name, table=source, columns=columns, referenced_columns=referenced)
                )
    return found
