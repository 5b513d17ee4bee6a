"""Operator limits on what the model may read: schemas, tables, hidden columns (pure, no I/O).

Enforced on the planner's own view of a statement: before a query runs, pg-mcp asks PostgreSQL for
its plan (`EXPLAIN (VERBOSE)`, which executes nothing) and checks every relation the plan scans and
every column it reads. Views are expanded in plans, so a view over a forbidden table is caught too,
and aliases, subqueries or functions cannot hide a column the way they can from a SQL text check.
`pg_catalog` and `information_schema` stay readable (names are not data), except the planner
statistics, which hold sample values and are refused while any column is hidden.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pg_mcp.errors import GuardError

SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema"})
STATISTICS_RELATIONS = frozenset({"pg_statistic", "pg_statistic_ext", "pg_statistic_ext_data"})
_SCAN_TEXT_KEYS = ("Output", "Filter", "Index Cond", "Recheck Cond", "TID Cond", "Join Filter", "Sort Key")


@dataclass(frozen=True)
class AccessPolicy:
    """`tables` holds (schema, table) pairs, table `*` for a whole schema; empty sets mean no limit."""

    schemas: frozenset[str] = frozenset()
    tables: frozenset[tuple[str, str]] = frozenset()
    hidden_columns: frozenset[tuple[str, str, str]] = frozenset()

    @classmethod
    def from_settings(
        cls, schemas: tuple[str, ...], tables: tuple[str, ...], hidden: tuple[str, ...]
    ) -> AccessPolicy:
        return cls(
            schemas=frozenset(schemas),
            tables=frozenset(_split(name, 2) for name in tables),  # type: ignore[misc]
            hidden_columns=frozenset(_split(name, 3) for name in hidden),  # type: ignore[misc]
        )

    @property
    def active(self) -> bool:
        return bool(self.schemas or self.tables or self.hidden_columns)

    def table_allowed(self, schema: str, table: str) -> bool:
        if schema in SYSTEM_SCHEMAS:
            return not (self.hidden_columns and table in STATISTICS_RELATIONS | {"pg_stats", "pg_stats_ext"})
        if self.schemas and schema not in self.schemas:
            return False
        return not self.tables or (schema, table) in self.tables or (schema, "*") in self.tables

    def hidden(self, schema: str, table: str) -> frozenset[str]:
        return frozenset(c for s, t, c in self.hidden_columns if (s, t) in ((schema, table), ("*", table)))


def _split(name: str, parts: int) -> tuple[str, ...]:
    """`sales.orders` / `sales.*` (parts=2); `sales.users.password_hash` or `users.password_hash` (parts=3)."""
    pieces = tuple(piece.strip().strip('"') for piece in name.split("."))
    if parts == 3 and len(pieces) == 2:
        pieces = ("*", *pieces)
    if len(pieces) != parts or not all(pieces):
        raise ValueError(f"{name!r} is not a {'schema.table' if parts == 2 else 'schema.table.column'} name")
    return pieces


def check_plan(plan: Mapping[str, Any], policy: AccessPolicy) -> None:
    """Raise GuardError if the plan reads a relation or column the operator has put out of reach."""
    for node in _nodes(plan):
        relation, schema = node.get("Relation Name"), node.get("Schema")
        if not relation or not schema:
            continue
        if not policy.table_allowed(schema, relation):
            raise GuardError(
                "table_not_allowed",
                f"The query reads {schema}.{relation}, which this server does not expose.",
                "Use list_tables to see the tables you can query.",
            )
        hidden = policy.hidden(schema, relation)
        if hidden:
            _check_columns(node, schema, relation, hidden)


def _check_columns(node: Mapping[str, Any], schema: str, relation: str, hidden: frozenset[str]) -> None:
    alias = re.escape(node.get("Alias") or relation)
    text = " ".join(_strings(node.get(key)) for key in _SCAN_TEXT_KEYS)
    if re.search(rf'(?:^|[^\w])"?{alias}"?\.\*', text):
        raise GuardError(
            "hidden_column",
            f"The query reads whole rows of {schema}.{relation}, which has hidden columns.",
            "Name the columns you need instead of * or the row itself.",
        )
    for column in hidden:
        if re.search(rf'(^|[^\w$]){re.escape(column)}"?($|[^\w$])', text):
            raise GuardError(
                "hidden_column",
                f"The column {relation}.{column} is hidden by the server's operator.",
                "Leave it out of the query; describe_table lists the columns you can use.",
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
