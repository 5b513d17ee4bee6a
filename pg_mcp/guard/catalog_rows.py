"""Catalog reads that can only return some rows, proven on PostgreSQL's own parse tree.

`pg_stats` rows describe one column of one table each, sample values included. Under schema or table
limits a statement may read them when every `pg_stats` it names is the only relation of its query
level, filtered at the top of that level's WHERE by `schemaname = '…' AND tablename = '…'` (and
optionally `attname = '…'` or `attname IN (…)`): `statistics_read` returns those tables and columns,
and the server allows the read when the limits allow the table and hide none of the columns.

`pg_settings` holds secrets row by row (file paths such as `config_file`, custom `x.y` settings) and in
its `sourcefile` column, not as a whole. A statement may read it when every `pg_settings` it names is
the only relation of its query level, filtered at the top of that level's WHERE by `name = '…'` or
`name IN ('…', …)` with settings on the harmless list, and nothing in the statement reads `*`, a whole
row of it, or `sourcefile`/`sourceline`. Anything else reading it stays a secret of `server_config`.
"""

from __future__ import annotations

from typing import Any

from pg_mcp.guard.secrets import HARMLESS_SETTINGS
from pg_mcp.guard.tree_walk import nodes

_SETTINGS = "pg_settings"
_STATISTICS = "pg_stats"
_SECRET_SETTINGS_COLUMNS = frozenset({"sourcefile", "sourceline"})

StatisticsRead = tuple[str, str, tuple[str, ...] | None]
"""A table's schema, its name, and the columns whose statistics are read (None: all of them)."""


def reads_only_harmless_settings(statement: dict[str, Any]) -> bool:
    """Whether every read of pg_settings in the statement is restricted to harmless settings."""
    for kind, node in nodes(statement):
        if kind == "ColumnRef":
            last = (node.get("fields") or [{}])[-1]
            if "A_Star" in last or last.get("String", {}).get("sval") in _SECRET_SETTINGS_COLUMNS:
                return False
    levels = _filtered_levels(statement, _SETTINGS)
    return levels is not None and all(
        not _reads_whole_rows(select, names)
        and (values := _equals(_conjuncts(select.get("whereClause")), "name", names))
        and all(value.lower() in HARMLESS_SETTINGS for value in values)
        for select, names in levels
    )


def statistics_read(statement: dict[str, Any]) -> tuple[StatisticsRead, ...] | None:
    """The tables (and columns) whose pg_stats rows the statement can read, when every pg_stats it names
    is filtered to one table; None when it names none or one is not so filtered."""
    levels = _filtered_levels(statement, _STATISTICS)
    if levels is None:
        return None
    reads: list[StatisticsRead] = []
    for select, names in levels:
        terms = _conjuncts(select.get("whereClause"))
        schema, table = _equals(terms, "schemaname", names), _equals(terms, "tablename", names)
        if len(schema) != 1 or len(table) != 1:
            return None
        columns = _equals(terms, "attname", names)
        reads.append((schema[0], table[0], tuple(columns) if columns else None))
    return tuple(reads)


def _filtered_levels(
    statement: dict[str, Any], relation: str
) -> list[tuple[dict[str, Any], set[str]]] | None:
    """Each query level that reads `relation` as its only relation, with the names its columns may be
    qualified by; None when the statement does not name it, or names it anywhere else."""
    named = 0
    levels: list[tuple[dict[str, Any], set[str]]] = []
    for kind, node in nodes(statement):
        if kind == "RangeVar" and _is_catalog(node, relation):
            named += 1
        elif kind == "SelectStmt":
            sources = node.get("fromClause") or []
            if len(sources) == 1 and _is_catalog(sources[0].get("RangeVar", {}), relation):
                alias = sources[0]["RangeVar"].get("alias", {}).get("aliasname", relation)
                levels.append((node, {relation, str(alias)}))
    return levels if named and named == len(levels) else None


def _reads_whole_rows(select: dict[str, Any], names: set[str]) -> bool:
    """Whether the level refers to its relation's whole row (`SELECT s FROM pg_settings s`)."""
    return any(
        kind == "ColumnRef"
        and len(node.get("fields", [])) == 1
        and node["fields"][0].get("String", {}).get("sval") in names
        for kind, node in nodes({key: value for key, value in select.items() if key != "fromClause"})
    )


def _conjuncts(where: Any) -> list[dict[str, Any]]:
    """The terms ANDed at the top of a WHERE clause (none under an OR or a NOT)."""
    if not isinstance(where, dict):
        return []
    if "BoolExpr" in where:
        expression = where["BoolExpr"]
        if expression.get("boolop") != "AND_EXPR":
            return []
        return [term for arg in expression.get("args", []) for term in _conjuncts(arg)]
    return [where]


def _equals(terms: list[dict[str, Any]], column: str, names: set[str]) -> list[str]:
    """The string constants `column` is compared with by `=` or `IN` in the first term that does so."""
    for term in terms:
        expression = term.get("A_Expr")
        if not isinstance(expression, dict) or not _is_column(expression.get("lexpr"), column, names):
            continue
        operator = [part.get("String", {}).get("sval") for part in expression.get("name", [])]
        if operator != ["="] or expression.get("kind") not in ("AEXPR_OP", "AEXPR_IN"):
            continue
        listed = expression.get("rexpr")
        values = listed.get("List", {}).get("items", [listed]) if isinstance(listed, dict) else []
        texts = [
            value.get("A_Const", {}).get("sval", {}).get("sval")
            for value in values
            if isinstance(value, dict)
        ]
        if texts and all(isinstance(text, str) for text in texts):
            return [str(text) for text in texts]
    return []


def _is_column(value: Any, column: str, names: set[str]) -> bool:
    fields = value.get("ColumnRef", {}).get("fields", []) if isinstance(value, dict) else []
    parts = [field.get("String", {}).get("sval") for field in fields]
    return parts[-1:] == [column] and (len(parts) == 1 or (len(parts) == 2 and parts[0] in names))


def _is_catalog(relation: dict[str, Any], name: str) -> bool:
    return relation.get("relname") == name and relation.get("schemaname") in (None, "pg_catalog")
