"""Where limited data is stored or copied: the catalog rows `access.expand` needs (fixed SQL).

Plans name leaf partitions, inheritance children and materialized views, not the table an operator
limited, so the configured policy is expanded over `pg_inherits` and the columns each view rule
reads (`pg_depend` on `pg_rewrite`). `LineagePolicy` re-expands whenever those catalogs change, so
a partition created a second ago is already covered.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Protocol

import asyncpg

from pg_mcp.database.aging import Aging
from pg_mcp.guard.access import AccessPolicy, StoredRelation, expand

#: Every relation with a parent, with a child, with a view rule, or read by one; nothing else.
LINEAGE_SQL = """
WITH parents AS (
    SELECT i.inhrelid AS oid, array_agg(i.inhparent::int8 ORDER BY i.inhseqno) AS parents
    FROM pg_inherits i GROUP BY i.inhrelid
), reads AS (
    SELECT r.ev_class AS oid, array_agg(d.refobjid::int8) AS read_oids,
           array_agg(a.attname::text) AS read_columns,
           bool_or(r.ev_action::text ~ ':varattno 0[ })]') AS whole_row
    FROM pg_rewrite r
    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
         AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class
    LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid AND d.refobjsubid > 0
    WHERE r.ev_type = '1'
    GROUP BY r.ev_class
), involved AS (
    SELECT oid FROM parents UNION SELECT unnest(parents) FROM parents
    UNION SELECT oid FROM reads UNION SELECT unnest(read_oids) FROM reads
)
SELECT c.oid::int8 AS oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS kind,
       p.parents, r.read_oids, r.read_columns, coalesce(r.whole_row, false) AS whole_row
FROM involved i
JOIN pg_class c ON c.oid = i.oid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN parents p ON p.oid = c.oid
LEFT JOIN reads r ON r.oid = c.oid
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
"""

#: Stored generated columns computed from hidden columns ($1-$3: schema or "*", table, column): copies of
#: them, hidden the same way (and so left out of describe_table, with their expressions).
GENERATED_FROM_HIDDEN_SQL = """
SELECT n.nspname AS schema, c.relname AS name, g.attname::text AS column
FROM unnest($1::text[], $2::text[], $3::text[]) AS h(schema, name, col)
JOIN pg_class c ON c.relname = h.name
JOIN pg_namespace n ON n.oid = c.relnamespace AND h.schema IN ('*', n.nspname)
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = h.col AND a.attnum > 0
JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.refclassid = 'pg_class'::regclass
                AND d.refobjid = c.oid AND d.refobjsubid = a.attnum
JOIN pg_attrdef ad ON ad.oid = d.objid AND ad.adrelid = c.oid
JOIN pg_attribute g ON g.attrelid = c.oid AND g.attnum = ad.adnum AND g.attgenerated <> ''
"""

#: Changes whenever a partition or child is attached or detached, a view rule is created or
#: replaced, or a schema is renamed: about a millisecond on a 30,000-relation catalog, so it is read
#: before every call. (Renaming a table does not change it; the `max_age` of `LineagePolicy` covers that.)
LINEAGE_VERSION_SQL = """
SELECT concat_ws('/',
    (SELECT count(*) || ':' || coalesce(sum(inhrelid::int8 * 3 + inhparent::int8), 0) FROM pg_inherits),
    (SELECT count(*) || ':' || coalesce(sum(xmin::text::int8), 0) FROM pg_rewrite),
    (SELECT count(*) || ':' || coalesce(sum(xmin::text::int8), 0) FROM pg_namespace))
"""


class CatalogReader(Protocol):
    """What lineage needs of `pg_mcp.database.executor.Database`: fixed catalog SQL in a read-only transaction."""

    async def fetch_fixed(self, sql: str, *args: object) -> list[asyncpg.Record]: ...


async def expand_policy(db: CatalogReader, policy: AccessPolicy) -> AccessPolicy:
    """`policy` carried onto stored generated columns computed from hidden ones, and onto partitions,
    children and derived views; unchanged when no limit is set."""
    base = policy.configured
    if not base.active:
        return base
    if base.hidden_columns:
        hidden = sorted(base.hidden_columns)
        generated = await db.fetch_fixed(
            GENERATED_FROM_HIDDEN_SQL, [h[0] for h in hidden], [h[1] for h in hidden], [h[2] for h in hidden]
        )
        base = replace(
            base,
            hidden_columns=base.hidden_columns
            | {(str(row["schema"]), str(row["name"]), str(row["column"])) for row in generated},
        )
    rows = await db.fetch_fixed(LINEAGE_SQL)
    return expand(base, (_relation(row) for row in rows))


def _relation(row: asyncpg.Record) -> StoredRelation:
    read_oids: list[int] = row["read_oids"] or []
    read_columns: list[str | None] = row["read_columns"] or []
    return StoredRelation(
        oid=int(row["oid"]),
        schema=str(row["schema"]),
        name=str(row["name"]),
        kind=str(row["kind"]),
        parents=tuple(int(p) for p in row["parents"] or ()),
        reads=tuple(zip((int(o) for o in read_oids), read_columns, strict=True)),
        whole_row=bool(row["whole_row"]),
    )


class LineagePolicy:
    """The expanded policy, read again when the catalog's trees or view rules change, or is `max_age` old.

    A change is expanded before the call goes on. An expansion that is only old (a renamed table keeps
    the version) is made again beside the calls, once (`aging`), while they go on with the current one."""

    def __init__(self, configured: AccessPolicy, max_age: float = 60.0) -> None:
        self.configured = configured.configured
        self.current = self.configured
        self.aging = Aging(max_age, "the expanded limits")
        self._version: str | None = None

    async def get(self, db: CatalogReader) -> AccessPolicy:
        """The expanded policy for this call: one small catalog query, plus the expansion on change."""
        if not self.configured.active:
            return self.configured
        version = str((await db.fetch_fixed(LINEAGE_VERSION_SQL))[0][0])  # read first: a change during
        if version != self._version:  # the expansion makes the next call expand again
            await self._expand(db, version)
        elif self.aging.old():
            self.aging.remake_beside(lambda: self._expand(db, version))
        return self.current

    async def _expand(self, db: CatalogReader, version: str) -> None:
        started = time.monotonic()
        expanded = await expand_policy(db, self.configured)
        if self.aging.newest(started):
            self.current, self._version = expanded, version
