"""The catalog's reach model: which objects of one database can run code the operator did not allow.

One fixed query (REACH_SQL) lists, by OID, the operator-written functions and aggregates that are not
allowed (outside pg_catalog and information_schema, not members of an extension, not in
PG_MCP_ALLOW_FUNCTIONS), and everything through which a read can reach one without naming it: the
operators and casts they implement (casts appear as calls of their function in PostgreSQL's tree),
domains whose constraints call them, types whose input, output, comparison or hashing they
implement (and domains, arrays and ranges over those), and relations whose indexes, partition keys or
foreign-data wrapper use them. Views and row-level-security policies need no entry: PostgreSQL's
rewritten tree shows their expressions. The same query resolves the hidden columns (of the expanded
policy, which names generated copies too) and the catalog columns that hold text about objects to OIDs and column
numbers. `pg_mcp.guard.analysed` judges each statement's tree against the model.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Protocol

import asyncpg

from pg_mcp.database.aging import Aging
from pg_mcp.guard.access import AccessPolicy
from pg_mcp.guard.analysed import CatalogReach
from pg_mcp.guard.secrets import SECRET_COLUMNS, SECRET_FUNCTION_COLUMNS

#: Functions of pg_catalog that return text the catalog stores about an object, not its name.
CATALOG_TEXT_FUNCTIONS = (
    "obj_description",
    "col_description",
    "shobj_description",
    "pg_get_functiondef",
    "pg_get_function_arguments",
    "pg_get_function_identity_arguments",
    "pg_get_function_result",
    "pg_get_function_arg_default",
    "pg_get_viewdef",
    "pg_get_ruledef",
    "pg_get_expr",
    "pg_get_constraintdef",
    "pg_get_triggerdef",
    "pg_get_indexdef",
    "pg_get_partkeydef",
    "pg_get_partition_constraintdef",
    "pg_get_statisticsobjdef",
    "pg_get_statisticsobjdef_columns",
    "pg_get_statisticsobjdef_expressions",
    "currtid2",
)

#: Text-typed catalog columns that describe the server, not an object's definition or data.
HARMLESS_CATALOG_TEXT = (
    "pg_database.datcollate",
    "pg_database.datctype",
    "pg_database.daticulocale",
    "pg_database.daticurules",
    "pg_database.datcollversion",
    "pg_collation.collcollate",
    "pg_collation.collctype",
    "pg_collation.colliculocale",
    "pg_collation.collicurules",
    "pg_collation.collversion",
    "pg_extension.extversion",
    "pg_language.lanname",
)

REACH_SQL = """
WITH RECURSIVE
allowed(name) AS (SELECT lower(unnest($1::text[]))),
written AS (  -- operator-written: outside the system schemas and not part of an extension
    SELECT p.oid, p.proname, n.nspname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                      AND d.deptype = 'e')
),
functions AS (
    SELECT w.oid, format('%I.%I(%s)', w.nspname, w.proname, pg_get_function_identity_arguments(w.oid)) AS what
    FROM written w
    WHERE NOT EXISTS (SELECT FROM allowed a WHERE a.name IN (lower(w.proname), lower(w.nspname || '.' || w.proname)))
),
operators AS (
    SELECT o.oid, format('%s.%s(%s, %s), implemented by %s', o.oprnamespace::regnamespace, o.oprname,
                         coalesce(format_type(o.oprleft, NULL), 'none'), coalesce(format_type(o.oprright, NULL), 'none'),
                         f.what) AS what
    FROM pg_operator o JOIN functions f ON f.oid IN (o.oprcode, o.oprrest, o.oprjoin)
),
families AS (  -- operator families with a member the model refuses (sorting, grouping, hashing, indexes)
    SELECT ap.amprocfamily AS oid, f.what FROM pg_amproc ap JOIN functions f ON f.oid = ap.amproc
    UNION ALL
    SELECT ao.amopfamily, op.what FROM pg_amop ao JOIN operators op ON op.oid = ao.amopopr
),
base_types AS (
    SELECT t.oid, format('%s, whose %s is %s', format_type(t.oid, NULL), io.part, f.what) AS what
    FROM pg_type t
    CROSS JOIN LATERAL (VALUES ('input function', t.typinput::oid), ('output function', t.typoutput::oid),
                               ('binary input', t.typreceive::oid), ('binary output', t.typsend::oid),
                               ('modifier input', t.typmodin::oid), ('modifier output', t.typmodout::oid),
                               ('statistics function', t.typanalyze::oid)) AS io(part, fn)
    JOIN functions f ON f.oid = io.fn
    UNION ALL
    SELECT c.contypid, format('the domain %s, whose constraint %I uses %s', format_type(c.contypid, NULL),
                              c.conname, coalesce(f.what, op.what))
    FROM pg_constraint c JOIN pg_depend d ON d.classid = 'pg_constraint'::regclass AND d.objid = c.oid
    LEFT JOIN functions f ON d.refclassid = 'pg_proc'::regclass AND f.oid = d.refobjid
    LEFT JOIN operators op ON d.refclassid = 'pg_operator'::regclass AND op.oid = d.refobjid
    WHERE c.contypid <> 0 AND coalesce(f.what, op.what) IS NOT NULL
    UNION ALL
    SELECT oc.opcintype, format('%s, whose default %s comparison uses %s', format_type(oc.opcintype, NULL),
                                am.amname, fam.what)
    FROM pg_opclass oc JOIN pg_am am ON am.oid = oc.opcmethod JOIN families fam ON fam.oid = oc.opcfamily
    WHERE oc.opcdefault
),
built_on(oid, base) AS (  -- domains, arrays, ranges and row types, each with a type it is built on
    SELECT oid, typbasetype FROM pg_type WHERE typbasetype <> 0
    UNION ALL SELECT oid, typelem FROM pg_type WHERE typelem <> 0 AND typlen = -1
    UNION ALL SELECT rngtypid, rngsubtype FROM pg_range
    UNION ALL SELECT t.oid, a.atttypid FROM pg_type t
              JOIN pg_attribute a ON a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
              WHERE t.typrelid <> 0
),
types(oid, what) AS (  -- and every type built on one
    SELECT oid, what FROM base_types
    UNION
    SELECT b.oid, format('%s, built on %s', format_type(b.oid, NULL), ty.what)
    FROM types ty JOIN built_on b ON b.base = ty.oid
),
relations AS (
    SELECT i.indrelid AS oid, format('%s, whose index %s uses %s', i.indrelid::regclass, i.indexrelid::regclass,
                                     coalesce(f.what, op.what, fam.what)) AS what
    FROM pg_index i JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
    LEFT JOIN functions f ON d.refclassid = 'pg_proc'::regclass AND f.oid = d.refobjid
    LEFT JOIN operators op ON d.refclassid = 'pg_operator'::regclass AND op.oid = d.refobjid
    LEFT JOIN pg_opclass oc ON d.refclassid = 'pg_opclass'::regclass AND oc.oid = d.refobjid
    LEFT JOIN families fam ON fam.oid = oc.opcfamily
    WHERE coalesce(f.what, op.what, fam.what) IS NOT NULL
    UNION ALL
    SELECT pt.partrelid, format('%s, whose partition key uses %s', pt.partrelid::regclass,
                                coalesce(f.what, fam.what))
    FROM pg_partitioned_table pt JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = pt.partrelid
    LEFT JOIN functions f ON d.refclassid = 'pg_proc'::regclass AND f.oid = d.refobjid
    LEFT JOIN pg_opclass oc ON d.refclassid = 'pg_opclass'::regclass AND oc.oid = d.refobjid
    LEFT JOIN families fam ON fam.oid = oc.opcfamily
    WHERE coalesce(f.what, fam.what) IS NOT NULL
    UNION ALL
    SELECT ft.ftrelid, format('%s, a foreign table whose wrapper %I is handled by %s', ft.ftrelid::regclass,
                              w.fdwname, f.what)
    FROM pg_foreign_table ft JOIN pg_foreign_server s ON s.oid = ft.ftserver
    JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw JOIN functions f ON f.oid = w.fdwhandler
),
hidden AS (  -- hidden columns ($2, $3, $4: schemas, "*" for any, tables, columns; the expanded policy
    SELECT a.attrelid, a.attnum  -- already names the stored generated columns computed from them)
    FROM unnest($2::text[], $3::text[], $4::text[]) AS h(schema, name, col)
    JOIN pg_class c ON c.relname = h.name JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = h.col AND a.attnum > 0 AND NOT a.attisdropped
    WHERE h.schema IN ('*', n.nspname)
)
SELECT
    (SELECT ARRAY[array_agg(oid::text ORDER BY oid), array_agg(what ORDER BY oid)]
     FROM (SELECT DISTINCT ON (oid) oid, what FROM functions ORDER BY oid, what) f) AS functions,
    (SELECT ARRAY[array_agg(oid::text ORDER BY oid), array_agg(what ORDER BY oid)]
     FROM (SELECT DISTINCT ON (oid) oid, what FROM operators ORDER BY oid, what) o) AS operators,
    (SELECT ARRAY[array_agg(oid::text ORDER BY oid), array_agg(what ORDER BY oid)]
     FROM (SELECT DISTINCT ON (oid) oid, what FROM types ORDER BY oid, what) t) AS types,
    (SELECT ARRAY[array_agg(oid::text ORDER BY oid), array_agg(what ORDER BY oid)]
     FROM (SELECT DISTINCT ON (oid) oid, what FROM relations ORDER BY oid, what) r) AS relations,
    ARRAY(SELECT p.oid FROM pg_proc p WHERE p.oid >= 16384
          UNION ALL SELECT o.oid FROM pg_operator o WHERE o.oid >= 16384
          UNION ALL SELECT t.oid FROM pg_type t WHERE t.oid >= 16384
          UNION ALL SELECT c.oid FROM pg_class c WHERE c.oid >= 16384) AS known,
    (SELECT ARRAY[array_agg(h.attrelid::text), array_agg(h.attnum::text),
                  array_agg(format('%s.%I', h.attrelid::regclass, a.attname))]
     FROM hidden h JOIN pg_attribute a ON a.attrelid = h.attrelid AND a.attnum = h.attnum) AS hidden,
    (SELECT ARRAY[array_agg(a.attrelid::text), array_agg(a.attnum::text), array_agg(c.relname || '.' || a.attname)]
     FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
     WHERE $5 AND c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind = 'r' AND a.attnum > 0
       AND a.atttypid IN ('text'::regtype, 'text[]'::regtype, 'pg_node_tree'::regtype, 'bytea'::regtype,
                          'anyarray'::regtype, 'pg_ndistinct'::regtype, 'pg_dependencies'::regtype,
                          'pg_mcv_list'::regtype)
       AND NOT c.relname || '.' || a.attname = ANY($6::text[])) AS catalog_text,
    (SELECT ARRAY[array_agg(p.oid::text), array_agg(p.proname::text)] FROM pg_proc p
     WHERE $5 AND p.pronamespace = 'pg_catalog'::regnamespace AND p.proname = ANY($7::text[]))
        AS catalog_text_functions,
    (SELECT ARRAY[array_agg(p.oid::text), array_agg(p.proname::text)] FROM pg_proc p
     WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proname = ANY($8::text[])) AS secret_functions,
    (SELECT ARRAY[array_agg(a.attrelid::text), array_agg(a.attnum::text), array_agg(c.relname || '.' || a.attname)]
     FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
     WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relname || '.' || a.attname = ANY($9::text[]))
        AS secret_catalog_columns
"""


class CatalogReader(Protocol):
    async def fetch_fixed(self, sql: str, *args: object) -> list[asyncpg.Record]: ...


async def read_reach(
    db: CatalogReader,
    allowed_functions: Iterable[str],
    access: AccessPolicy,
    allowed_secrets: Iterable[str] = (),
) -> CatalogReach:
    """The reach model of the connected database under the operator's allowances and limits."""
    allowed = set(allowed_secrets)
    secret_columns = {
        name: (name, column, group)
        for name, (column, group) in SECRET_FUNCTION_COLUMNS.items()
        if group not in allowed
    }
    catalog_secrets = {
        f"{relation}.{column}": group
        for relation, (column, group) in SECRET_COLUMNS.items()
        if group not in allowed
    }
    hidden = sorted(access.hidden_columns)
    row = (
        await db.fetch_fixed(
            REACH_SQL,
            list(allowed_functions),
            [schema for schema, _, _ in hidden],
            [table for _, table, _ in hidden],
            [column for _, _, column in hidden],
            access.active,
            list(HARMLESS_CATALOG_TEXT),
            list(CATALOG_TEXT_FUNCTIONS),
            list(secret_columns),
            list(catalog_secrets),
        )
    )[0]
    return CatalogReach(
        functions=_described(row["functions"]),
        operators=_described(row["operators"]),
        types=_described(row["types"]),
        relations=_described(row["relations"]),
        known=frozenset(row["known"]),
        hidden=_columns(row["hidden"]),
        catalog_text=_columns(row["catalog_text"]),
        catalog_text_functions=_described(row["catalog_text_functions"]),
        secret_columns={
            oid: secret_columns[name] for oid, name in _described(row["secret_functions"]).items()
        },
        secret_catalog_columns={
            relid: (attnum, name, catalog_secrets[name])
            for relid, columns in _columns(row["secret_catalog_columns"]).items()
            for attnum, name in columns.items()
        },
    )


def _described(arrays: list[list[str | None]]) -> dict[int, str]:
    """[[oid, ...], [description, ...]] -> {oid: description} (NULLs when there are none)."""
    if not arrays:
        return {}
    oids, descriptions = arrays
    return {int(oid): str(what) for oid, what in zip(oids, descriptions, strict=True) if oid is not None}


def _columns(arrays: list[list[str | None]]) -> dict[int, dict[int, str]]:
    """[[relation oid, ...], [column number, ...], [name, ...]] -> {relation: {column: name}}."""
    columns: dict[int, dict[int, str]] = defaultdict(dict)
    for relid, attnum, name in zip(*arrays, strict=True):
        if relid is not None and attnum is not None:
            columns[int(relid)][int(attnum)] = str(name)
    return dict(columns)


#: How old the model may be: a statement naming an object the model has never seen reads it again at
#: once; a change to a known object (a constraint added to a domain, an index on a table) shows after
#: at most this long, plus the time one reading takes.
MAX_AGE_SECONDS = 10.0


class ReachModel:
    """The model for one database, read again when a statement names an object it does not know, or
    when it is `max_age` seconds old (a new index or domain constraint on a known object).

    An aged model is read again beside the calls, once (`aging`): they go on with it until the new one
    is read. A model that is missing, made under other limits, or asked for `fresh` is read before the
    call goes on."""

    def __init__(
        self,
        allowed_functions: Iterable[str],
        allowed_secrets: Iterable[str] = (),
        max_age: float = MAX_AGE_SECONDS,
    ) -> None:
        self.allowed_functions = tuple(allowed_functions)
        self.allowed_secrets = tuple(allowed_secrets)
        self.aging = Aging(max_age, "the catalog model")
        self._current: CatalogReach | None = None
        self._key: AccessPolicy | None = None

    async def get(self, db: CatalogReader, access: AccessPolicy, *, fresh: bool = False) -> CatalogReach:
        current = self._current
        if fresh or current is None or self._key != access:
            return await self._read(db, access)
        if self.aging.old():
            self.aging.remake_beside(lambda: self._read(db, access))
        return current

    async def _read(self, db: CatalogReader, access: AccessPolicy) -> CatalogReach:
        started = time.monotonic()
        reach = await read_reach(db, self.allowed_functions, access, self.allowed_secrets)
        if self.aging.newest(started):
            self._current, self._key = reach, access
        return reach
