"""Operator limits on what the model may read: schemas, tables, hidden columns (pure, no I/O).

Enforced on the planner's own view of a statement: before a query runs, pg-mcp asks PostgreSQL for
its plan (`EXPLAIN (VERBOSE)`, which executes nothing) and checks every relation the plan scans and
every column it reads. Views are expanded in plans, so a view over a forbidden table is caught too,
and aliases, subqueries or functions cannot hide a column the way they can from a SQL text check.

Plans name only what is scanned: leaf partitions, inheritance children and materialized views, never
the table the operator limited. `expand` (fed by `pg_mcp.database.lineage`) carries each limit onto every
relation that stores or copies the data. `pg_catalog` and `information_schema` stay readable (names
are not data), except the planner statistics, which hold sample values and are refused while any
limit is active. TOAST tables are always refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from pg_mcp.errors import GuardError
from pg_mcp.names import column_setting, table_setting

SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema"})
STATISTICS_RELATIONS = frozenset(
    {
        "pg_statistic",
        "pg_statistic_ext",
        "pg_statistic_ext_data",
        "pg_stats",
        "pg_stats_ext",
        "pg_stats_ext_exprs",
    }
)
#: Plan nodes that read a stored relation: one without "Relation Name" reads something unnamed.
_RELATION_SCANS = frozenset(
    {"Seq Scan", "Sample Scan", "Index Scan", "Index Only Scan", "Bitmap Heap Scan", "Tid Scan",
     "Tid Range Scan", "Foreign Scan", "Custom Scan"}
)  # fmt: skip
#: Relation kinds the planner replaces by their definition, so plans show what they read.
_EXPANDED_IN_PLANS = frozenset({"v"})


@dataclass(frozen=True)
class AccessPolicy:
    """`tables` holds (schema, table) pairs, table `*` for a whole schema; empty sets mean no limit.

    `inherited` and `denied` come from `expand`: relations allowed because their parent is, and
    relations out of reach because of what they store or copy, with the reason (for `check`).
    """

    schemas: frozenset[str] = frozenset()
    tables: frozenset[tuple[str, str]] = frozenset()
    hidden_columns: frozenset[tuple[str, str, str]] = frozenset()
    inherited: frozenset[tuple[str, str]] = frozenset()
    denied: Mapping[tuple[str, str], str] = field(default_factory=dict, hash=False)

    @classmethod
    def from_settings(
        cls, schemas: tuple[str, ...], tables: tuple[str, ...], hidden: tuple[str, ...]
    ) -> AccessPolicy:
        return cls(
            schemas=frozenset(schemas),
            tables=frozenset(table_setting(name) for name in tables),
            hidden_columns=frozenset(column_setting(name) for name in hidden),
        )

    @property
    def active(self) -> bool:
        return bool(self.schemas or self.tables or self.hidden_columns)

    @property
    def configured(self) -> AccessPolicy:
        """The operator's own rules, without what `expand` derived from the catalog."""
        return replace(self, inherited=frozenset(), denied={})

    def table_allowed(self, schema: str, table: str) -> bool:
        if schema.startswith("pg_toast"):
            return False
        if schema in SYSTEM_SCHEMAS:
            return not (self.active and table in STATISTICS_RELATIONS)
        if (schema, table) in self.denied:
            return False
        if (schema, table) in self.inherited:
            return True
        if self.schemas and schema not in self.schemas:
            return False
        return not self.tables or (schema, table) in self.tables or (schema, "*") in self.tables

    def hidden(self, schema: str, table: str) -> frozenset[str]:
        index = self._hidden_index
        return index.get((schema, table), frozenset()) | index.get(("*", table), frozenset())

    @cached_property
    def _hidden_index(self) -> dict[tuple[str, str], frozenset[str]]:
        index: dict[tuple[str, str], set[str]] = {}
        for schema, table, column in self.hidden_columns:
            index.setdefault((schema, table), set()).add(column)
        return {key: frozenset(columns) for key, columns in index.items()}


@dataclass(frozen=True)
class StoredRelation:
    """One catalog row for `expand`: a relation, its direct parents, and what its view rule reads.

    `reads` pairs a referenced relation's oid with a column name, or None for the relation as a
    whole (PostgreSQL records one for every relation a rule names); `whole_row` says the rule uses
    a whole-row value somewhere, which reads every column but is recorded only as None.
    """

    oid: int
    schema: str
    name: str
    kind: str
    parents: tuple[int, ...] = ()
    reads: tuple[tuple[int, str | None], ...] = ()
    whole_row: bool = False


def expand(policy: AccessPolicy, relations: Iterable[StoredRelation]) -> AccessPolicy:
    """The policy carried onto every relation that stores or copies limited data.

    Children (partitions, inheritance, any depth) get their ancestors' hidden columns by name, and
    are allowed when all their parents are, refused when one is not (unless named exactly in
    PG_MCP_TABLES). Views and materialized views reading a relation out of reach are refused;
    materialized views are also refused when they copy a hidden column, since plans scan them
    directly (plain views are expanded in plans, where the columns they read are checked).
    """
    base = policy.configured
    if not base.active:
        return base
    return _Expansion(base, relations).policy()


_CYCLE = "its definition refers to itself"


class _Expansion:
    """Memoised walks over parents and view reads; a cycle (PostgreSQL allows none) is refused."""

    def __init__(self, base: AccessPolicy, relations: Iterable[StoredRelation]) -> None:
        self.base = base
        self.by_oid = {relation.oid: relation for relation in relations}
        self._hidden: dict[int, frozenset[str]] = {}
        self._reason: dict[int, str | None] = {}
        self._tainted: dict[int, str | None] = {}

    def policy(self) -> AccessPolicy:
        hidden = set(self.base.hidden_columns)
        inherited: set[tuple[str, str]] = set()
        denied: dict[tuple[str, str], str] = {}
        for relation in self.by_oid.values():
            key = (relation.schema, relation.name)
            if relation.parents:
                hidden.update((*key, column) for column in self.hidden_of(relation.oid))
            allowed = self.base.table_allowed(*key)
            reason = self.reason_denied(relation.oid)
            if reason is not None and allowed:  # what the rules refuse anyway needs no entry
                denied[key] = reason
            elif reason is None and not allowed and relation.parents:
                inherited.add(key)
        return replace(
            self.base, hidden_columns=frozenset(hidden), inherited=frozenset(inherited), denied=denied
        )

    def _display(self, oid: int) -> str:
        relation = self.by_oid[oid]
        return f"{relation.schema}.{relation.name}"

    def hidden_of(self, oid: int) -> frozenset[str]:
        """Hidden column names of a relation: its own and every ancestor's."""
        if oid not in self._hidden:
            relation = self.by_oid[oid]
            self._hidden[oid] = frozenset()  # cycle guard
            own = self.base.hidden(relation.schema, relation.name)
            inherited = (self.hidden_of(parent) for parent in relation.parents if parent in self.by_oid)
            self._hidden[oid] = own.union(*inherited)
        return self._hidden[oid]

    def reason_denied(self, oid: int) -> str | None:
        """Why a relation is out of reach, or None when it may be read."""
        if oid not in self._reason:
            self._reason[oid] = _CYCLE  # only a cycle (impossible in PostgreSQL) sees this
            self._reason[oid] = self._find_reason(self.by_oid[oid])
        return self._reason[oid]

    def _find_reason(self, relation: StoredRelation) -> str | None:
        key = (relation.schema, relation.name)
        if relation.parents:
            if key in self.base.tables:
                return None
            for parent in relation.parents:
                if parent in self.by_oid and self.reason_denied(parent) is not None:
                    return f"it stores rows of {self._display(parent)}, which this server does not expose"
            return None
        if not relation.reads:
            return None if self.base.table_allowed(*key) else "outside PG_MCP_SCHEMAS / PG_MCP_TABLES"
        for ref, _ in relation.reads:
            if ref in self.by_oid and self.reason_denied(ref) is not None:
                return f"it reads {self._display(ref)}, which this server does not expose"
        if relation.kind not in _EXPANDED_IN_PLANS:
            tainted = self.tainted(relation.oid)
            if tainted is not None:
                return f"it copies {tainted}"
        return None if self.base.table_allowed(*key) else "outside PG_MCP_SCHEMAS / PG_MCP_TABLES"

    def tainted(self, oid: int) -> str | None:
        """What hidden data a view or materialized view reads (directly or through views), or None."""
        if oid not in self._tainted:
            self._tainted[oid] = _CYCLE
            self._tainted[oid] = self._find_taint(self.by_oid[oid])
        return self._tainted[oid]

    def _find_taint(self, relation: StoredRelation) -> str | None:
        for ref, column in relation.reads:
            if ref not in self.by_oid:
                continue
            upstream = self.tainted(ref)
            if upstream is not None:
                return upstream
            hidden = self.hidden_of(ref)
            if column is not None and column in hidden:
                return f"the hidden column {self._display(ref)}.{column}"
            if column is None and relation.whole_row and hidden:
                return f"whole rows of {self._display(ref)}, which has hidden columns"
        return None


def statistics_allowed(
    policy: AccessPolicy, reads: tuple[tuple[str, str, tuple[str, ...] | None], ...] | None
) -> bool:
    """Whether every table whose statistics a statement reads is allowed, with none of the columns read
    hidden (all of its columns when the statement does not name them)."""
    if not reads:
        return False
    for schema, table, columns in reads:
        hidden = policy.hidden(schema, table)
        if not policy.table_allowed(schema, table) or (hidden and (columns is None or hidden & set(columns))):
            return False
    return True


def check_plan(plan: Mapping[str, Any], policy: AccessPolicy, *, statistics: bool = False) -> None:
    """Raise GuardError if the plan reads a relation or column the operator has put out of reach.

    Call it for every plan, limits or not: TOAST tables are refused regardless. `statistics`: the
    statement reads planner statistics only of tables and columns the limits allow (`statistics_allowed`).
    """
    for node in _nodes(plan):
        relation, schema = node.get("Relation Name"), node.get("Schema")
        if not relation or not schema:
            if policy.active and node.get("Node Type") in _RELATION_SCANS:
                raise GuardError(
                    "unidentified_scan",
                    f"The plan has a {node.get('Node Type')} whose relations PostgreSQL does not name "
                    "(e.g. a join or aggregate pushed down to a foreign server), so the server's limits "
                    "cannot be checked.",
                    "Query one foreign table at a time, or join the results in a subquery.",
                )
            continue
        if statistics and schema == "pg_catalog" and relation in STATISTICS_RELATIONS:
            continue
        if not policy.table_allowed(schema, relation):
            reason = policy.denied.get((schema, relation))
            raise GuardError(
                "table_not_allowed",
                f"The query reads {schema}.{relation}, which this server does not expose"
                + (f": {reason}." if reason else "."),
                "Use list_tables to see the tables you can query.",
            )


def _nodes(plan: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _strings(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return " ".join(str(item) for item in value)
    return ""
