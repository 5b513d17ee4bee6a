"""DBA insight: statement statistics, index and table health, and the database's own counters.

Fixed queries with `$n` parameters, nothing spliced in, each answer read in one read-only call. Like
the catalog (pg_mcp.database.catalog) they cover exposed schemas and the tables the operator allows
only, and they never name a hidden table or column: an index or foreign key that uses a hidden
column is left out, and a statement whose text names something out of reach is shown without it.

What other sessions run is a secret (`other_sessions`, pg_mcp.guard.secrets): statement texts are
shown for the connected role's own statements only unless the operator allows that group, and the
connection summaries count sessions by state, role, application and wait event, never by their SQL.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field

from pg_mcp.database.catalog import EXPOSED_SCHEMA, listed_relation, mentions
from pg_mcp.database.executor import Database
from pg_mcp.database.records import Record
from pg_mcp.errors import QueryError
from pg_mcp.guard.access import AccessPolicy
from pg_mcp.names import qualified, quote_ident

#: The most rows a caller may ask of each list.
MAX_LIMIT = 50
DEFAULT_LIMIT = 10
#: Characters of a statement's text shown (whitespace folded first); a longer text is cut, and says so.
MAX_STATEMENT_CHARS = 500
#: Dead-row ratios are ranked only for tables with at least this many rows, live and dead: on a tiny
#: table any ratio is noise.
MIN_ROWS_FOR_RATIO = 1_000
#: Groups kept per connection or lock summary, most sessions first.
MAX_GROUPS = 12

StatementOrder = Literal["total_time", "mean_time", "calls"]
TableOrder = Literal["dead_rows", "dead_ratio", "bloat", "seq_reads", "size"]

#: The secret group that lets other roles' statement texts be shown (pg_mcp.guard.secrets).
OTHER_SESSIONS = "other_sessions"

INSTALL_HINT = (
    "To turn it on (a superuser, once): add pg_stat_statements to shared_preload_libraries in "
    "postgresql.conf and restart PostgreSQL, then run CREATE EXTENSION pg_stat_statements; in this "
    "database. On a managed service (RDS, Cloud SQL, Azure) shared_preload_libraries is set in the "
    "parameter group or server flags."
)


# --- records -------------------------------------------------------------------------------------


class StatementStats(Record):
    """One normalised statement (constants shown as $n) and its totals; `query` is None when the text
    is withheld, and `withheld` says why."""

    query_id: str | None
    role: str | None
    query: str | None
    withheld: str | None = None
    query_cut: bool = False
    calls: int
    total_ms: float
    mean_ms: float
    max_ms: float | None
    rows: int
    shared_hit_blocks: int
    shared_read_blocks: int
    temp_written_blocks: int
    #: Its share of all tracked statements' execution time in this database, 0 to 1.
    time_share: float | None


class StatementsReport(Record):
    """The top statements; or, with `available` false, why pg_stat_statements cannot be read (`reason`,
    with how to fix it)."""

    available: bool
    reason: str | None = None
    order_by: str
    limit: int
    statements: list[StatementStats] = Field(default_factory=list)
    #: Statements tracked in this database, and their execution time in all.
    tracked: int = 0
    total_ms: float = 0.0
    #: When pg_stat_statements' counters were last reset (PostgreSQL 14 and later).
    since: datetime | None = None
    texts_withheld: int = 0


class UnusedIndex(Record):
    """No scan has used it since statistics were reset; it is not unique and backs no constraint."""

    schema_: str = Field(alias="schema")
    table: str
    index: str
    definition: str
    size_bytes: int
    scans: int


class DuplicateIndexes(Record):
    """Indexes of one table with the same columns, expressions, predicate, operator classes and method:
    `keep` is the one to keep (a constraint's, else a unique one, else the most scanned, else the
    oldest), `drop` the others that back no constraint."""

    schema_: str = Field(alias="schema")
    table: str
    keep: str
    drop: list[str]
    definition: str
    #: The size of the indexes in `drop`, together.
    drop_bytes: int


class InvalidIndex(Record):
    """An index PostgreSQL does not use: a failed (or running) CREATE INDEX CONCURRENTLY or REINDEX."""

    schema_: str = Field(alias="schema")
    table: str
    index: str
    definition: str
    size_bytes: int


class UnindexedForeignKey(Record):
    """A foreign key no valid, whole-table index leads with: deleting or updating a referenced row scans
    the referencing table, and joins along the key cannot use an index."""

    schema_: str = Field(alias="schema")
    table: str
    name: str
    columns: list[str]
    references: str
    referenced_columns: list[str]
    estimated_rows: int | None
    #: The statement that adds the index (for a person to run: these tools change nothing).
    suggestion: str


class IndexHealth(Record):
    """What the index health check found, each list with how many there are in all."""

    stats_since: datetime | None
    unused: list[UnusedIndex]
    unused_total: int
    duplicates: list[DuplicateIndexes]
    duplicates_total: int
    invalid: list[InvalidIndex]
    invalid_total: int
    unindexed_foreign_keys: list[UnindexedForeignKey]
    unindexed_foreign_keys_total: int


class TableHealth(Record):
    """One table's (or partition's, or materialized view's) vacuum, analyze, bloat and scan counters.
    `estimated_bloat_bytes` is an estimate from the planner's statistics, None before ANALYZE."""

    schema_: str = Field(alias="schema")
    name: str
    kind: str
    live_rows: int
    dead_rows: int
    dead_ratio: float | None
    modified_since_analyze: int
    table_bytes: int
    total_bytes: int
    estimated_bloat_bytes: int | None
    bloat_ratio: float | None
    last_vacuum: datetime | None
    last_autovacuum: datetime | None
    last_analyze: datetime | None
    last_autoanalyze: datetime | None
    seq_scans: int
    seq_rows_read: int
    index_scans: int | None
    #: Short findings, each with what to do about it.
    notes: list[str]


class TableHealthReport(Record):
    order_by: str
    limit: int
    tables: list[TableHealth]
    #: Tables that were ranked (exposed tables with statistics).
    total: int
    stats_since: datetime | None


class CountBy(Record):
    """Sessions or locks of one kind: `name` is the state, role, application or wait event."""

    name: str
    count: int


class LockCount(Record):
    locktype: str
    mode: str
    granted: int
    waiting: int


class DatabaseHealth(Record):
    """Counters of the whole database: cache, transactions, connections and locks. Nothing here shows
    what another session runs."""

    database: str
    size_bytes: int
    stats_since: datetime | None
    #: Buffer cache hit ratios (0 to 1): every read of the database, then table and index blocks.
    cache_hit_ratio: float | None
    heap_hit_ratio: float | None
    index_hit_ratio: float | None
    commits: int
    rollbacks: int
    deadlocks: int
    temp_files: int
    temp_bytes: int
    conflicts: int
    #: Client sessions on this database (this call's own included) and on the whole server.
    sessions: int
    server_sessions: int
    max_connections: int
    #: Other roles' sessions whose state and wait event this role may not see (pg_read_all_stats).
    sessions_not_visible: int
    by_state: list[CountBy]
    by_role: list[CountBy]
    by_application: list[CountBy]
    by_wait_event: list[CountBy]
    #: Seconds, over the sessions this role can see.
    oldest_transaction_seconds: float | None
    longest_idle_in_transaction_seconds: float | None
    longest_running_statement_seconds: float | None
    #: Transactions since the oldest snapshot any session on the server holds: what vacuum must keep.
    oldest_xmin_age: int | None
    prepared_transactions: int
    oldest_prepared_seconds: float | None
    locks: list[LockCount]
    locks_held: int
    locks_waiting: int
    blocked_sessions: int
    blocking_sessions: int
    longest_lock_wait_seconds: float | None


class PlanNodeTiming(Record):
    """One node of an executed plan: actual rows per loop and loops, the estimate, inclusive time over
    all loops, and shared buffers hit and read."""

    depth: int
    node: str
    actual_rows: float | None
    loops: int
    estimated_rows: float | None
    total_ms: float | None
    shared_hit_blocks: int
    shared_read_blocks: int


class AnalyzedPlan(Record):
    """EXPLAIN (ANALYZE, BUFFERS) of a statement run read-only and rolled back: timings, the nodes
    (the first 200 in plan order; `nodes_total` counts them all), and PostgreSQL's own JSON plan
    without its VERBOSE output lists."""

    planning_ms: float | None
    execution_ms: float | None
    row_cap: int
    nodes: list[PlanNodeTiming]
    nodes_total: int
    plan: dict[str, Any] | None


# --- the limits as query parameters ----------------------------------------------------------------


def _schemas(access: AccessPolicy) -> list[str] | None:
    """`$1` of `EXPOSED_SCHEMA`: the operator's schemas, None for all."""
    return sorted(access.schemas) or None


def _allowlist(
    access: AccessPolicy, *, partitions: bool = False
) -> tuple[list[str] | None, list[str] | None, list[str], list[str]]:
    """The allowlist and denylist of `listed_relation` (as `Catalog._allowlist`); with `partitions`,
    the partitions allowed because their parent is (`AccessPolicy.inherited`) join the allowlist."""
    pairs = sorted(access.tables | access.inherited) if partitions else sorted(access.tables)
    denied = sorted(access.denied)
    return (
        [schema for schema, _ in pairs] if access.tables else None,
        [table for _, table in pairs] if access.tables else None,
        [schema for schema, _ in denied],
        [table for _, table in denied],
    )


def _hidden(access: AccessPolicy) -> tuple[list[str], list[str], list[str]]:
    """The hidden columns as parallel (schema or `*`, table, column) arrays."""
    triples = sorted(access.hidden_columns)
    return [t[0] for t in triples], [t[1] for t in triples], [t[2] for t in triples]


def _uses_hidden(table: str, schema: str, column: str, first: int) -> str:
    """SQL: whether `column` of `schema.table` is hidden (`$first`..`$first+2`, from `_hidden`)."""
    return f"""EXISTS (SELECT 1 FROM unnest(${first}::text[], ${first + 1}::text[], ${first + 2}::text[])
        AS h(schema_name, table_name, column_name)
        WHERE h.table_name = {table} AND h.schema_name IN ('*', {schema}) AND h.column_name = {column})"""


def _stored_relation(first: int) -> str:
    """A relation holding rows (table, partition or materialized view) the role may read and the operator
    allows: `listed_relation` with partitions, which hold a partitioned table's rows and dead rows."""
    schemas, tables = f"${first}::text[]", f"${first + 1}::text[]"
    denied_schemas, denied_tables = f"${first + 2}::text[]", f"${first + 3}::text[]"
    return f"""
    c.relkind IN ('r', 'm')
    AND (has_table_privilege(c.oid, 'SELECT') OR has_any_column_privilege(c.oid, 'SELECT'))
    AND ({schemas} IS NULL OR EXISTS (
        SELECT 1 FROM unnest({schemas}, {tables}) AS allowed(schema_name, table_name)
        WHERE allowed.schema_name = n.nspname AND allowed.table_name IN ('*', c.relname)))
    AND NOT EXISTS (SELECT 1 FROM unnest({denied_schemas}, {denied_tables}) AS denied(schema_name, table_name)
        WHERE denied.schema_name = n.nspname AND denied.table_name = c.relname)
"""


# --- statements ------------------------------------------------------------------------------------

#: Where pg_stat_statements is installed, and which of its columns this version has.
STATEMENTS_EXTENSION_SQL = """
SELECT n.nspname AS schema, e.extversion AS version,
       EXISTS (SELECT 1 FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
               WHERE c.relnamespace = e.extnamespace AND c.relname = 'pg_stat_statements'
                 AND a.attname = 'total_exec_time' AND NOT a.attisdropped) AS exec_time,
       EXISTS (SELECT 1 FROM pg_class c
               WHERE c.relnamespace = e.extnamespace AND c.relname = 'pg_stat_statements_info') AS has_info,
       has_schema_privilege(e.extnamespace, 'USAGE') AS usable
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'pg_stat_statements'
"""

#: Names the extension's schema for the unqualified reads below, for this transaction only
#: (pg_catalog first, so nothing in that schema shadows a built-in).
STATEMENTS_SEARCH_PATH_SQL = (
    "SELECT set_config('search_path', 'pg_catalog, ' || quote_ident($1) || ', pg_temp', true)"
)

STATEMENTS_SINCE_SQL = "SELECT extract(epoch FROM stats_reset)::float8 FROM pg_stat_statements_info"


#: Transaction control and session settings (how every client, pg-mcp included, opens and ends its
#: transactions): never slow, often the most called, so left out of the ranking. A PostgreSQL regular
#: expression (`\\y` is a word boundary there).
_SESSION_CONTROL = (
    r"^\s*(begin|start\s+transaction|commit|end|rollback|abort|savepoint|release|set|reset|show|"
    r"deallocate|close|unlisten|discard|listen)\y"
)


def _statements_sql(total: str, mean: str, most: str) -> str:
    """The top statements of this database by $1 (`StatementOrder`), at most $4; texts of the role's
    own statements, or of every role's with $2, folded and cut to $3 characters in SQL."""
    return f"""
WITH s AS (
    SELECT s.userid, s.queryid, s.query, s.calls, s.{total} AS total_ms, s.{mean} AS mean_ms,
           s.{most} AS max_ms, s.rows, s.shared_blks_hit, s.shared_blks_read, s.temp_blks_written
    FROM pg_stat_statements s
    WHERE s.dbid = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
      AND coalesce(s.query, '') !~* '{_SESSION_CONTROL}'
), ranked AS (
    SELECT s.*, count(*) OVER () AS tracked, sum(s.total_ms) OVER () AS all_ms
    FROM s
    ORDER BY CASE $1::text WHEN 'calls' THEN s.calls::float8 WHEN 'mean_time' THEN s.mean_ms
                           ELSE s.total_ms END DESC, s.queryid
    LIMIT $4
)
SELECT r.queryid::text AS query_id, pg_get_userbyid(r.userid) AS role,
       r.userid = (SELECT oid FROM pg_roles WHERE rolname = current_user) AS own,
       CASE WHEN r.userid = (SELECT oid FROM pg_roles WHERE rolname = current_user) OR $2::bool
            THEN left(btrim(regexp_replace(r.query, '\\s+', ' ', 'g')), $3 + 1) END AS query,
       r.calls, r.total_ms, r.mean_ms, r.max_ms, r.rows, r.shared_blks_hit, r.shared_blks_read,
       r.temp_blks_written, r.tracked, r.all_ms
FROM ranked r
ORDER BY CASE $1::text WHEN 'calls' THEN r.calls::float8 WHEN 'mean_time' THEN r.mean_ms
                       ELSE r.total_ms END DESC, r.queryid
"""


#: PostgreSQL 13 renamed the time columns (pg_stat_statements 1.8); earlier versions have the old names.
STATEMENTS_SQL = _statements_sql("total_exec_time", "mean_exec_time", "max_exec_time")
STATEMENTS_BEFORE_13_SQL = _statements_sql("total_time", "mean_time", "max_time")

#: Relation and schema names outside the operator's limits are found from these (limits active only).
RELATION_NAMES_SQL = """
SELECT n.nspname AS schema, c.relname AS name
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
  AND n.nspname NOT LIKE 'pg\\_temp\\_%'
"""
SCHEMA_NAMES_SQL = """
SELECT n.nspname FROM pg_namespace n
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
"""

_IDENTIFIER = re.compile(r'"((?:[^"]|"")+)"|([^\W\d][\w$]*)')

WITHHELD_OTHER_ROLE = f"another role's statement; PG_MCP_ALLOW_SECRETS={OTHER_SESSIONS} shows them"
WITHHELD_PRIVILEGE = "another role's statement: reading its text needs the pg_read_all_stats role"
WITHHELD_OUT_OF_REACH = "its text names a table, schema or column this server does not expose"
WITHHELD_NOT_KEPT = "pg_stat_statements kept no text for it"


async def top_statements(
    db: Database,
    access: AccessPolicy,
    *,
    order_by: StatementOrder = "total_time",
    limit: int = DEFAULT_LIMIT,
    other_roles: bool = False,
) -> StatementsReport:
    """The statements of this database that took the most time, or ran most often, by pg_stat_statements.

    `other_roles`: the operator allows other sessions' SQL (`other_sessions`); without it only the
    connected role's own texts are shown. With operator limits, a text that names anything out of
    reach is withheld as well.
    """
    empty = StatementsReport(available=False, order_by=order_by, limit=limit)
    try:
        async with db.call(short=True, jit=False, repeatable=True) as session:
            found = await session.fetch(STATEMENTS_EXTENSION_SQL)
            if not found:
                return empty.model_copy(
                    update={"reason": f"pg_stat_statements is not installed in this database. {INSTALL_HINT}"}
                )
            extension = found[0]
            if not extension["usable"]:
                return empty.model_copy(
                    update={
                        "reason": f"pg_stat_statements is installed in schema {extension['schema']}, on "
                        "which this role has no USAGE privilege. GRANT USAGE ON SCHEMA to the role."
                    }
                )
            await session.fetch(STATEMENTS_SEARCH_PATH_SQL, extension["schema"])
            sql = STATEMENTS_SQL if extension["exec_time"] else STATEMENTS_BEFORE_13_SQL
            rows = await session.fetch(sql, order_by, other_roles, MAX_STATEMENT_CHARS, limit)
            since = (
                _moment((await session.fetch(STATEMENTS_SINCE_SQL))[0][0]) if extension["has_info"] else None
            )
            out_of_reach = await _names_out_of_reach(session.fetch, access) if access.active else frozenset()
    except QueryError as exc:
        if "shared_preload_libraries" in exc.message:
            reason = f"pg_stat_statements is installed but its library is not loaded. {INSTALL_HINT}"
        else:
            reason = f"pg_stat_statements could not be read: {exc.message}"
        return empty.model_copy(update={"reason": reason})
    statements = [_statement(row, other_roles, out_of_reach) for row in rows]
    return StatementsReport(
        available=True,
        order_by=order_by,
        limit=limit,
        statements=statements,
        tracked=int(rows[0]["tracked"]) if rows else 0,
        total_ms=float(rows[0]["all_ms"] or 0) if rows else 0.0,
        since=since,
        texts_withheld=sum(1 for s in statements if s.query is None),
    )


def _statement(row: Mapping[str, Any], other_roles: bool, out_of_reach: frozenset[str]) -> StatementStats:
    text: str | None = row["query"]
    withheld = None
    if text is None:
        withheld = WITHHELD_NOT_KEPT if row["own"] or other_roles else WITHHELD_OTHER_ROLE
    elif text == "<insufficient privilege>":
        text, withheld = None, WITHHELD_PRIVILEGE
    elif out_of_reach and _names_any(text, out_of_reach):
        text, withheld = None, WITHHELD_OUT_OF_REACH
    cut = text is not None and len(text) > MAX_STATEMENT_CHARS
    all_ms = float(row["all_ms"] or 0)
    return StatementStats(
        query_id=row["query_id"],
        role=row["role"],
        query=text[:MAX_STATEMENT_CHARS] if text is not None else None,
        withheld=withheld,
        query_cut=cut,
        calls=row["calls"],
        total_ms=float(row["total_ms"]),
        mean_ms=float(row["mean_ms"]),
        max_ms=float(row["max_ms"]) if row["max_ms"] is not None else None,
        rows=row["rows"],
        shared_hit_blocks=row["shared_blks_hit"],
        shared_read_blocks=row["shared_blks_read"],
        temp_written_blocks=row["temp_blks_written"],
        time_share=float(row["total_ms"]) / all_ms if all_ms > 0 else None,
    )


async def _names_out_of_reach(
    fetch: Callable[..., Awaitable[list[Any]]], access: AccessPolicy
) -> frozenset[str]:
    """Lowercased names a shown text must not contain: relations and schemas outside the limits, and
    hidden columns. Compared by word, so a text that merely could name one is withheld too."""
    names = {column.lower() for _, _, column in access.hidden_columns}
    for row in await fetch(RELATION_NAMES_SQL):
        schema, name = row["schema"], row["name"]
        if not access.table_allowed(schema, name) or (access.schemas and schema not in access.schemas):
            names.add(name.lower())
    if access.schemas:
        names.update(row[0].lower() for row in await fetch(SCHEMA_NAMES_SQL) if row[0] not in access.schemas)
    return frozenset(names)


def _names_any(text: str, names: frozenset[str]) -> bool:
    """Whether an identifier of `text` (plain or quoted, compared lowercased) is one of `names`."""
    for match in _IDENTIFIER.finditer(text):
        quoted, plain = match.groups()
        word = quoted.replace('""', '"') if quoted is not None else plain
        if word.lower() in names:
            return True
    return False


# --- index health ----------------------------------------------------------------------------------

#: Parameters of the index queries: $1 exposed schemas, $2..$5 the allow/deny lists, $6..$8 hidden
#: columns, $9 one schema or NULL, $10 the most rows of each list.
_INDEXES = f"""
WITH idx AS MATERIALIZED (
    SELECT n.nspname AS schema, c.relname AS table_name, c.oid AS table_oid, ic.oid AS index_oid,
           ic.relname AS index_name, ic.relkind AS index_kind, ic.relam, i.indisunique, i.indisprimary,
           i.indisvalid, i.indkey, i.indnkeyatts, i.indclass, i.indcollation, i.indoption, i.indexprs,
           i.indpred,
           EXISTS (SELECT 1 FROM pg_constraint con
                   WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid) AS backs_constraint
    FROM pg_index i
    JOIN pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE {EXPOSED_SCHEMA} AND {listed_relation(2)} AND ($9::text IS NULL OR n.nspname = $9)
      AND NOT EXISTS (
          SELECT 1 FROM pg_depend d
          JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
          WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
            AND d.refclassid = 'pg_class'::regclass AND d.refobjid = i.indrelid AND d.refobjsubid > 0
            AND {_uses_hidden("c.relname", "n.nspname", "a.attname", 6)})
), measured AS (
    SELECT idx.*,
           CASE WHEN idx.index_kind = 'I' THEN
               (SELECT coalesce(sum(pg_stat_get_numscans(t.relid)), 0) FROM pg_partition_tree(idx.index_oid) t
                WHERE t.isleaf)
           ELSE pg_stat_get_numscans(idx.index_oid) END::bigint AS scans,
           CASE WHEN idx.index_kind = 'I' THEN
               (SELECT coalesce(sum(pg_relation_size(t.relid)), 0) FROM pg_partition_tree(idx.index_oid) t
                WHERE t.isleaf)
           ELSE pg_relation_size(idx.index_oid) END::bigint AS size_bytes
    FROM idx
)"""

UNUSED_INDEXES_SQL = f"""{_INDEXES}
SELECT u.schema, u.table_name, u.index_name, pg_get_indexdef(u.index_oid) AS definition, u.scans,
       u.size_bytes, u.total
FROM (SELECT m.*, count(*) OVER () AS total FROM measured m
      WHERE m.scans = 0 AND m.indisvalid AND NOT m.indisunique AND NOT m.indisprimary AND NOT m.backs_constraint
      ORDER BY m.size_bytes DESC, m.schema, m.table_name, m.index_name LIMIT $10) u
ORDER BY u.size_bytes DESC, u.schema, u.table_name, u.index_name
"""

DUPLICATE_INDEXES_SQL = f"""{_INDEXES}
, sets AS (
    SELECT m.schema, m.table_name,
           array_agg(m.index_name ORDER BY m.backs_constraint DESC, m.indisunique DESC, m.scans DESC, m.index_oid) AS names,
           array_agg(m.index_oid ORDER BY m.backs_constraint DESC, m.indisunique DESC, m.scans DESC, m.index_oid) AS oids,
           array_agg(m.backs_constraint ORDER BY m.backs_constraint DESC, m.indisunique DESC, m.scans DESC, m.index_oid)
               AS constraints,
           array_agg(m.size_bytes ORDER BY m.backs_constraint DESC, m.indisunique DESC, m.scans DESC, m.index_oid) AS sizes
    FROM measured m
    WHERE m.indisvalid
    GROUP BY m.table_oid, m.schema, m.table_name, m.relam, m.indkey::text, m.indnkeyatts, m.indclass::text,
             m.indcollation::text, m.indoption::text, coalesce(pg_get_expr(m.indexprs, m.table_oid), ''),
             coalesce(pg_get_expr(m.indpred, m.table_oid), '')
    HAVING count(*) > 1
)
SELECT d.schema, d.table_name, d.names, d.constraints, d.sizes, pg_get_indexdef(d.oids[1]) AS definition, d.total
FROM (SELECT s.*, count(*) OVER () AS total FROM sets s
      ORDER BY (SELECT sum(x) FROM unnest(s.sizes[2:]) x) DESC, s.schema, s.table_name, s.names LIMIT $10) d
ORDER BY (SELECT sum(x) FROM unnest(d.sizes[2:]) x) DESC, d.schema, d.table_name, d.names
"""

INVALID_INDEXES_SQL = f"""{_INDEXES}
SELECT v.schema, v.table_name, v.index_name, pg_get_indexdef(v.index_oid) AS definition, v.size_bytes, v.total
FROM (SELECT m.*, count(*) OVER () AS total FROM measured m WHERE NOT m.indisvalid
      ORDER BY m.schema, m.table_name, m.index_name LIMIT $10) v
ORDER BY v.schema, v.table_name, v.index_name
"""


def _exposed_relation(oid: str) -> str:
    """SQL: the relation `oid` is listed (exposed schema, readable, allowed by the operator)."""
    return f"""EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.oid = {oid} AND {EXPOSED_SCHEMA} AND {listed_relation(2)})"""


def _key_uses_hidden(key: str, relation: str) -> str:
    """SQL: a column of the key `key` (an attnum array) of `relation` is hidden."""
    return f"""EXISTS (SELECT 1 FROM unnest({key}) k(num)
        JOIN pg_attribute a ON a.attrelid = {relation} AND a.attnum = k.num
        JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_uses_hidden("c.relname", "n.nspname", "a.attname", 6)})"""


def _key_names(key: str, relation: str) -> str:
    return f"""(SELECT array_agg(a.attname ORDER BY k.ord) FROM unnest({key}) WITH ORDINALITY k(num, ord)
        JOIN pg_attribute a ON a.attrelid = {relation} AND a.attnum = k.num)"""


#: A foreign key is supported by a valid index without predicate whose leading key columns are exactly
#: its columns, in any order.
UNINDEXED_FOREIGN_KEYS_SQL = f"""
SELECT f.* FROM (
    SELECT sn.nspname AS schema, s.relname AS table_name, s.relkind::text AS kind, con.conname AS name,
           {_key_names("con.conkey", "con.conrelid")} AS columns,
           tn.nspname AS target_schema, t.relname AS target_table,
           {_key_names("con.confkey", "con.confrelid")} AS target_columns,
           CASE WHEN s.relkind = 'p' THEN
               (SELECT sum(greatest(p.reltuples, 0))::bigint FROM pg_partition_tree(s.oid) tree
                JOIN pg_class p ON p.oid = tree.relid WHERE tree.isleaf)
           WHEN s.reltuples >= 0 THEN s.reltuples::bigint END AS estimated_rows,
           count(*) OVER () AS total
    FROM pg_constraint con
    JOIN pg_class s ON s.oid = con.conrelid JOIN pg_namespace sn ON sn.oid = s.relnamespace
    JOIN pg_class t ON t.oid = con.confrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace
    WHERE con.contype = 'f' AND con.conparentid = 0 AND NOT s.relispartition
      AND ($9::text IS NULL OR sn.nspname = $9)
      AND {_exposed_relation("con.conrelid")} AND {_exposed_relation("con.confrelid")}
      AND NOT {_key_uses_hidden("con.conkey", "con.conrelid")}
      AND NOT {_key_uses_hidden("con.confkey", "con.confrelid")}
      AND NOT EXISTS (
          SELECT 1 FROM pg_index i
          WHERE i.indrelid = con.conrelid AND i.indisvalid AND i.indpred IS NULL
            AND i.indnkeyatts >= cardinality(con.conkey)
            AND (i.indkey::int2[])[0:cardinality(con.conkey) - 1] @> con.conkey
            AND (i.indkey::int2[])[0:cardinality(con.conkey) - 1] <@ con.conkey)
    ORDER BY estimated_rows DESC NULLS LAST, sn.nspname, s.relname, con.conname
    LIMIT $10
) f
ORDER BY f.estimated_rows DESC NULLS LAST, f.schema, f.table_name, f.name
"""

#: Timestamps are read as seconds since 1970 (`_moment`): the pool decodes timestamptz as PostgreSQL's text.
STATS_SINCE_SQL = (
    "SELECT extract(epoch FROM stats_reset)::float8 FROM pg_stat_database WHERE datname = current_database()"
)


async def index_health(
    db: Database, access: AccessPolicy, *, schema: str | None = None, limit: int = 20
) -> IndexHealth:
    """Unused, duplicate and invalid indexes and unindexed foreign keys of the exposed tables, in one
    snapshot; anything that uses a hidden column is left out."""
    args = (_schemas(access), *_allowlist(access), *_hidden(access), schema, limit)
    async with db.call(short=False, jit=False, repeatable=True) as session:
        unused = await session.fetch(UNUSED_INDEXES_SQL, *args)
        duplicates = await session.fetch(DUPLICATE_INDEXES_SQL, *args)
        invalid = await session.fetch(INVALID_INDEXES_SQL, *args)
        keys = await session.fetch(UNINDEXED_FOREIGN_KEYS_SQL, *args)
        since = _moment((await session.fetch(STATS_SINCE_SQL))[0][0])

    def visible(row: Mapping[str, Any]) -> bool:  # the SQL already left these out: a second check
        hidden = access.hidden(row["schema"], row["table_name"])
        return access.table_allowed(row["schema"], row["table_name"]) and not mentions(
            row["definition"], hidden
        )

    return IndexHealth(
        stats_since=since,
        unused=[
            UnusedIndex(
                schema=r["schema"],
                table=r["table_name"],
                index=r["index_name"],
                definition=r["definition"],
                size_bytes=r["size_bytes"],
                scans=r["scans"],
            )
            for r in unused
            if visible(r)
        ],
        unused_total=_total(unused),
        duplicates=[_duplicates(r) for r in duplicates if visible(r)],
        duplicates_total=_total(duplicates),
        invalid=[
            InvalidIndex(
                schema=r["schema"],
                table=r["table_name"],
                index=r["index_name"],
                definition=r["definition"],
                size_bytes=r["size_bytes"],
            )
            for r in invalid
            if visible(r)
        ],
        invalid_total=_total(invalid),
        unindexed_foreign_keys=[_unindexed(r) for r in keys if _key_visible(r, access)],
        unindexed_foreign_keys_total=_total(keys),
    )


def _moment(epoch: float | None) -> datetime | None:
    """A timestamp read as seconds since 1970 (see STATS_SINCE_SQL), in UTC."""
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _total(rows: list[Any]) -> int:
    return int(rows[0]["total"]) if rows else 0


def _duplicates(row: Mapping[str, Any]) -> DuplicateIndexes:
    names, constraints, sizes = list(row["names"]), list(row["constraints"]), list(row["sizes"])
    drop = [name for name, backs in zip(names[1:], constraints[1:], strict=True) if not backs]
    drop_bytes = sum(size for name, size in zip(names[1:], sizes[1:], strict=True) if name in drop)
    return DuplicateIndexes(
        schema=row["schema"],
        table=row["table_name"],
        keep=names[0],
        drop=drop,
        definition=row["definition"],
        drop_bytes=drop_bytes,
    )


def _key_visible(row: Mapping[str, Any], access: AccessPolicy) -> bool:
    """Both ends exposed and no column hidden (the SQL left the rest out: a second check)."""
    ends = ((row["schema"], row["table_name"], row["columns"]),
            (row["target_schema"], row["target_table"], row["target_columns"]))  # fmt: skip
    return all(
        access.table_allowed(schema, table) and not set(columns or ()) & access.hidden(schema, table)
        for schema, table, columns in ends
    )


def _unindexed(row: Mapping[str, Any]) -> UnindexedForeignKey:
    columns = list(row["columns"] or [])
    table = qualified(row["schema"], row["table_name"])
    listed = ", ".join(quote_ident(column) for column in columns)
    concurrently = "" if row["kind"] == "p" else " CONCURRENTLY"  # not possible on a partitioned table
    return UnindexedForeignKey(
        schema=row["schema"],
        table=row["table_name"],
        name=row["name"],
        columns=columns,
        references=qualified(row["target_schema"], row["target_table"]),
        referenced_columns=list(row["target_columns"] or []),
        estimated_rows=row["estimated_rows"],
        suggestion=f"CREATE INDEX{concurrently} ON {table} ({listed});",
    )


# --- table health ----------------------------------------------------------------------------------

#: Tuple bytes the planner's statistics predict: the header (23 bytes and a null bitmap, aligned), the
#: columns' average widths (weighted by how often they are not null), aligned; plus its line pointer.
#: Pages expected = live rows / tuples per page (page header off, fillfactor applied); the estimated
#: bloat is the table's pages beyond that. None when a column has no statistics (never analyzed).
_BLOAT = """
    CASE WHEN w.columns = w.analysed AND w.columns > 0 THEN
        greatest(pg_relation_size(c.oid) / w.block_size
                 - ceil(greatest(s.n_live_tup, 0)::float8
                        / greatest(floor((w.block_size - 24) * w.fillfactor / 100.0
                                         / (ceil((ceil((23 + CASE WHEN w.nulls THEN ceil(w.columns / 8.0) ELSE 0 END)
                                                       / 8.0) * 8 + w.width) / 8.0) * 8 + 4)), 1)),
                 0)::bigint * w.block_size
    END"""

TABLE_HEALTH_SQL = f"""
SELECT t.* FROM (
    SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind, c.relispartition AS partition,
           s.n_live_tup AS live_rows, s.n_dead_tup AS dead_rows,
           CASE WHEN s.n_live_tup + s.n_dead_tup > 0
                THEN s.n_dead_tup::float8 / (s.n_live_tup + s.n_dead_tup) END AS dead_ratio,
           s.n_mod_since_analyze AS modified_since_analyze,
           extract(epoch FROM s.last_vacuum)::float8 AS last_vacuum,
           extract(epoch FROM s.last_autovacuum)::float8 AS last_autovacuum,
           extract(epoch FROM s.last_analyze)::float8 AS last_analyze,
           extract(epoch FROM s.last_autoanalyze)::float8 AS last_autoanalyze,
           s.seq_scan AS seq_scans, s.seq_tup_read AS seq_rows_read, s.idx_scan AS index_scans,
           pg_table_size(c.oid) AS table_bytes, pg_total_relation_size(c.oid) AS total_bytes,
           {_BLOAT} AS estimated_bloat_bytes,
           count(*) OVER () AS total
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_stat_all_tables s ON s.relid = c.oid
    CROSS JOIN LATERAL (
        SELECT current_setting('block_size')::int AS block_size,
               coalesce((SELECT substring(o FROM '^fillfactor=(\\d+)$')::int FROM unnest(c.reloptions) o
                         WHERE o LIKE 'fillfactor=%'), 100) AS fillfactor,
               (SELECT count(*) FROM pg_attribute a
                WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
               st.analysed, st.width, st.nulls
        FROM (SELECT count(*) AS analysed, coalesce(sum((1 - ps.null_frac) * ps.avg_width), 0) AS width,
                     coalesce(bool_or(ps.null_frac > 0), false) AS nulls
              FROM pg_stats ps
              WHERE ps.schemaname = n.nspname AND ps.tablename = c.relname AND NOT ps.inherited) st
    ) w
    WHERE {EXPOSED_SCHEMA} AND {_stored_relation(2)} AND ($6::text IS NULL OR n.nspname = $6)
    ORDER BY CASE $7::text
                 WHEN 'dead_ratio' THEN CASE WHEN s.n_live_tup + s.n_dead_tup >= $9
                                             THEN s.n_dead_tup::float8 / (s.n_live_tup + s.n_dead_tup) END
                 WHEN 'bloat' THEN ({_BLOAT})::float8
                 WHEN 'seq_reads' THEN s.seq_tup_read::float8
                 WHEN 'size' THEN pg_total_relation_size(c.oid)::float8
                 ELSE s.n_dead_tup::float8 END DESC NULLS LAST,
             n.nspname, c.relname
    LIMIT $8
) t
"""

#: A table this big, scanned in full this many times, gets the sequential-scan note.
BIG_TABLE_ROWS = 10_000
REPEATED_SCANS = 10


async def table_health(
    db: Database,
    access: AccessPolicy,
    *,
    order_by: TableOrder = "dead_rows",
    schema: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> TableHealthReport:
    """The exposed tables (partitions and materialized views included) ranked by `order_by`."""
    args = (_schemas(access), *_allowlist(access, partitions=True), schema, order_by, limit)
    async with db.call(short=False, jit=False, repeatable=True) as session:
        rows = await session.fetch(TABLE_HEALTH_SQL, *args, MIN_ROWS_FOR_RATIO)
        since = _moment((await session.fetch(STATS_SINCE_SQL))[0][0])
    tables = [_table(row) for row in rows if access.table_allowed(row["schema"], row["name"])]
    return TableHealthReport(
        order_by=order_by, limit=limit, tables=tables, total=_total(rows), stats_since=since
    )


def _table(row: Mapping[str, Any]) -> TableHealth:
    bloat = row["estimated_bloat_bytes"]
    size = row["table_bytes"]
    health = TableHealth(
        schema=row["schema"],
        name=row["name"],
        kind="materialized view" if row["kind"] == "m" else "partition" if row["partition"] else "table",
        live_rows=row["live_rows"],
        dead_rows=row["dead_rows"],
        dead_ratio=row["dead_ratio"],
        modified_since_analyze=row["modified_since_analyze"],
        table_bytes=size,
        total_bytes=row["total_bytes"],
        estimated_bloat_bytes=bloat,
        bloat_ratio=bloat / size if bloat is not None and size else None,
        last_vacuum=_moment(row["last_vacuum"]),
        last_autovacuum=_moment(row["last_autovacuum"]),
        last_analyze=_moment(row["last_analyze"]),
        last_autoanalyze=_moment(row["last_autoanalyze"]),
        seq_scans=row["seq_scans"],
        seq_rows_read=row["seq_rows_read"],
        index_scans=row["index_scans"],
        notes=[],
    )
    return health.model_copy(update={"notes": table_notes(health)})


def table_notes(t: TableHealth) -> list[str]:
    """What stands out about a table, each with what to do about it."""
    name = qualified(t.schema_, t.name)
    notes = []
    if t.dead_rows >= 1_000 and (t.dead_ratio or 0) >= 0.1:
        notes.append(
            f"{(t.dead_ratio or 0):.0%} of its rows are dead: VACUUM (ANALYZE) {name}; if autovacuum keeps "
            "falling behind, look for long transactions (database_health) or lower its scale factor"
        )
    if t.live_rows > 0 and t.last_analyze is None and t.last_autoanalyze is None:
        notes.append(f"never analyzed: the planner guesses its rows; ANALYZE {name}")
    elif t.live_rows >= 1_000 and t.modified_since_analyze > t.live_rows * 0.2:
        notes.append(f"{t.modified_since_analyze:,} rows changed since the last ANALYZE: ANALYZE {name}")
    if (t.bloat_ratio or 0) >= 0.3 and (t.estimated_bloat_bytes or 0) >= 1_048_576:
        notes.append(
            f"about {t.bloat_ratio or 0:.0%} of it is estimated free or dead space: VACUUM makes it "
            "reusable; only VACUUM FULL or pg_repack returns it to the disk (both rewrite the table)"
        )
    per_scan = t.seq_rows_read / t.seq_scans if t.seq_scans else 0
    if t.live_rows >= BIG_TABLE_ROWS and per_scan >= BIG_TABLE_ROWS and t.seq_scans >= REPEATED_SCANS:
        notes.append(
            f"{t.seq_scans:,} sequential scans read ~{per_scan:,.0f} rows each: find the statements "
            "(slow_queries) and check their plans (explain_analyze) for a missing index"
        )
    return notes


# --- database health -------------------------------------------------------------------------------

DATABASE_SQL = """
SELECT d.datname AS database, pg_database_size(d.datname) AS size_bytes,
       extract(epoch FROM d.stats_reset)::float8 AS stats_reset,
       d.xact_commit, d.xact_rollback, d.blks_hit, d.blks_read, d.deadlocks, d.temp_files, d.temp_bytes,
       d.conflicts, current_setting('max_connections')::int AS max_connections,
       (SELECT sum(heap_blks_hit) FROM pg_statio_user_tables)::float8 AS heap_hit,
       (SELECT sum(heap_blks_read) FROM pg_statio_user_tables)::float8 AS heap_read,
       (SELECT sum(idx_blks_hit) FROM pg_statio_user_tables)::float8 AS index_hit,
       (SELECT sum(idx_blks_read) FROM pg_statio_user_tables)::float8 AS index_read
FROM pg_stat_database d WHERE d.datname = current_database()
"""

#: Client sessions: those of other roles show no backend type, state or times (without
#: pg_read_all_stats) but do show their role, application and database. Never their SQL.
_CLIENT = "(a.backend_type = 'client backend' OR (a.backend_type IS NULL AND a.usesysid IS NOT NULL))"

SESSIONS_SQL = f"""
SELECT CASE WHEN grouping(a.state) = 0 THEN 'state' WHEN grouping(a.role) = 0 THEN 'role'
            WHEN grouping(a.application) = 0 THEN 'application' ELSE 'wait' END AS dimension,
       coalesce(a.state, a.role, a.application, a.wait) AS name, count(*) AS count
FROM (SELECT coalesce(a.state, '(not visible)') AS state, coalesce(a.usename, '(none)') AS role,
             CASE WHEN a.application_name = '' THEN '(none)' ELSE left(a.application_name, 64) END AS application,
             CASE WHEN a.wait_event IS NOT NULL THEN a.wait_event_type || '/' || a.wait_event
                  WHEN a.state IS NOT NULL THEN '(not waiting)' ELSE '(not visible)' END AS wait
      FROM pg_stat_activity a
      WHERE a.datname = current_database() AND {_CLIENT}) a
GROUP BY GROUPING SETS ((a.state), (a.role), (a.application), (a.wait))
ORDER BY dimension, count DESC, name
"""

SESSION_AGES_SQL = f"""
SELECT count(*) FILTER (WHERE a.datname = current_database()) AS here,
       count(*) AS server,
       count(*) FILTER (WHERE a.datname = current_database() AND a.state IS NULL) AS not_visible,
       extract(epoch FROM now() - min(a.xact_start) FILTER (
           WHERE a.datname = current_database() AND a.pid <> pg_backend_pid())) AS oldest_xact,
       extract(epoch FROM now() - min(a.state_change) FILTER (
           WHERE a.datname = current_database() AND a.state LIKE 'idle in transaction%')) AS idle_in_xact,
       extract(epoch FROM now() - min(a.query_start) FILTER (
           WHERE a.datname = current_database() AND a.state = 'active' AND a.pid <> pg_backend_pid()))
           AS running,
       (SELECT max(age(x.backend_xmin)) FROM pg_stat_activity x WHERE x.backend_xmin IS NOT NULL
          AND x.pid <> pg_backend_pid()) AS xmin_age,
       (SELECT count(*) FROM pg_prepared_xacts) AS prepared,
       (SELECT extract(epoch FROM now() - min(p.prepared)) FROM pg_prepared_xacts p) AS oldest_prepared
FROM pg_stat_activity a
WHERE {_CLIENT}
"""

#: Locks of other sessions (this call's own left out), by type and mode; `waitstart` is PostgreSQL 14's.
LOCKS_SQL = """
SELECT l.locktype, l.mode, count(*) FILTER (WHERE l.granted) AS granted,
       count(*) FILTER (WHERE NOT l.granted) AS waiting
FROM pg_locks l WHERE l.pid IS DISTINCT FROM pg_backend_pid()
GROUP BY l.locktype, l.mode
ORDER BY count(*) FILTER (WHERE NOT l.granted) DESC, count(*) DESC, l.locktype, l.mode
"""

BLOCKING_SQL = """
SELECT count(DISTINCT l.pid) AS blocked,
       (SELECT count(DISTINCT b) FROM pg_locks w, unnest(pg_blocking_pids(w.pid)) b WHERE NOT w.granted) AS blocking,
       extract(epoch FROM now() - min((to_jsonb(l) ->> 'waitstart')::timestamptz)) AS longest_wait
FROM pg_locks l WHERE NOT l.granted
"""


async def database_health(db: Database) -> DatabaseHealth:
    """The database's counters and who is connected, read in one call; no SQL text of any session."""
    async with db.call(short=True, jit=False) as session:
        info = (await session.fetch(DATABASE_SQL))[0]
        groups = await session.fetch(SESSIONS_SQL)
        ages = (await session.fetch(SESSION_AGES_SQL))[0]
        locks = await session.fetch(LOCKS_SQL)
        blocking = (await session.fetch(BLOCKING_SQL))[0]
    by: dict[str, list[CountBy]] = {"state": [], "role": [], "application": [], "wait": []}
    for row in groups:
        by[row["dimension"]].append(CountBy(name=row["name"], count=row["count"]))
    lock_counts = [
        LockCount(locktype=r["locktype"], mode=r["mode"], granted=r["granted"], waiting=r["waiting"])
        for r in locks
    ]
    return DatabaseHealth(
        database=info["database"],
        size_bytes=info["size_bytes"],
        stats_since=_moment(info["stats_reset"]),
        cache_hit_ratio=_ratio(info["blks_hit"], info["blks_read"]),
        heap_hit_ratio=_ratio(info["heap_hit"], info["heap_read"]),
        index_hit_ratio=_ratio(info["index_hit"], info["index_read"]),
        commits=info["xact_commit"],
        rollbacks=info["xact_rollback"],
        deadlocks=info["deadlocks"],
        temp_files=info["temp_files"],
        temp_bytes=info["temp_bytes"],
        conflicts=info["conflicts"],
        sessions=ages["here"],
        server_sessions=ages["server"],
        max_connections=info["max_connections"],
        sessions_not_visible=ages["not_visible"],
        by_state=_top(by["state"]),
        by_role=_top(by["role"]),
        by_application=_top(by["application"]),
        by_wait_event=_top(by["wait"]),
        oldest_transaction_seconds=_seconds(ages["oldest_xact"]),
        longest_idle_in_transaction_seconds=_seconds(ages["idle_in_xact"]),
        longest_running_statement_seconds=_seconds(ages["running"]),
        oldest_xmin_age=ages["xmin_age"],
        prepared_transactions=ages["prepared"],
        oldest_prepared_seconds=_seconds(ages["oldest_prepared"]),
        locks=lock_counts[:MAX_GROUPS],
        locks_held=sum(lock.granted for lock in lock_counts),
        locks_waiting=sum(lock.waiting for lock in lock_counts),
        blocked_sessions=blocking["blocked"],
        blocking_sessions=blocking["blocking"],
        longest_lock_wait_seconds=_seconds(blocking["longest_wait"]),
    )


def _ratio(hit: float | int | None, read: float | int | None) -> float | None:
    total = float(hit or 0) + float(read or 0)
    return float(hit or 0) / total if total else None


def _seconds(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def _top(groups: Iterable[CountBy]) -> list[CountBy]:
    """The MAX_GROUPS largest groups, and the rest counted as one."""
    ranked = sorted(groups, key=lambda g: (-g.count, g.name))
    if len(ranked) <= MAX_GROUPS:
        return ranked
    rest = ranked[MAX_GROUPS - 1 :]
    return [
        *ranked[: MAX_GROUPS - 1],
        CountBy(name=f"({len(rest)} others)", count=sum(g.count for g in rest)),
    ]
