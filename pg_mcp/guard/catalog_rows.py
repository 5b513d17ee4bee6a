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

from collections.abc import Iterator
from typing import Any

from pg_mcp.guard.secrets import HARMLESS_SETTINGS

_RELATION = "pg_settings"
_STATISTICS = "pg_stats"
_SECRET_COLUMNS = frozenset({"sourcefile", "sourceline"})


def reads_only_harmless_settings(statement: dict[str, Any]) -> bool:
    """Whether every read of pg_settings in the statement is restricted to harmless settings."""
    named = 0
    proven = 0
    for kind, node in _nodes(statement):
        if kind == "RangeVar" and _is_settings(node):
            named += 1
        elif kind == "ColumnRef":
            fields = node.get("fields", [])
            last = fields[-1] if fields else {}
            if "A_Star" in last or last.get("String", {}).get("sval") in _SECRET_COLUMNS:
                return False
        elif kind == "SelectStmt":
            proven += _proven_level(node)
    return named > 0 and named == proven


def _proven_level(select: dict[str, Any]) -> int:
    """1 when this query level reads pg_settings alone, filtered to harmless names, without whole rows."""
    sources = select.get("fromClause") or []
    if len(sources) != 1 or "RangeVar" not in sources[0] or not _is_settings(sources[0]["RangeVar"]):
        return 0
    relation = sources[0]["RangeVar"]
    names = {_RELATION, str(relation.get("alias", {}).get("aliasname", _RELATION))}
    for kind, node in _nodes({key: value for key, value in select.items() if key != "fromClause"}):
        if kind == "ColumnRef" and len(node.get("fields", [])) == 1:
            only = node["fields"][0].get("String", {}).get("sval")
            if only in names:  # a whole-row reference
                return 0
    return 1 if _restricts(select.get("whereClause"), names) else 0


def _restricts(where: Any, names: set[str]) -> bool:
    if not isinstance(where, dict):
        return False
    if "BoolExpr" in where:
        expression = where["BoolExpr"]
        return expression.get("boolop") == "AND_EXPR" and any(
            _restricts(arg, names) for arg in expression.get("args", [])
        )
    expression = where.get("A_Expr")
    if not isinstance(expression, dict) or not _is_name_column(expression.get("lexpr"), names):
        return False
    operator = [part.get("String", {}).get("sval") for part in expression.get("name", [])]
    if expression.get("kind") == "AEXPR_OP" and operator == ["="]:
        values = [expression.get("rexpr")]
    elif expression.get("kind") == "AEXPR_IN" and operator == ["="]:
        listed = expression.get("rexpr")
        values = listed.get("List", {}).get("items", []) if isinstance(listed, dict) else listed or []
    else:
        return False
    return bool(values) and all(_harmless_constant(value) for value in values)


def _is_name_column(value: Any, names: set[str]) -> bool:
    fields = value.get("ColumnRef", {}).get("fields", []) if isinstance(value, dict) else []
    parts = [field.get("String", {}).get("sval") for field in fields]
    return parts[-1:] == ["name"] and (len(parts) == 1 or (len(parts) == 2 and parts[0] in names))


def _harmless_constant(value: Any) -> bool:
    constant = value.get("A_Const", {}) if isinstance(value, dict) else {}
    text = constant.get("sval", {}).get("sval")
    return isinstance(text, str) and text.lower() in HARMLESS_SETTINGS


def _is_settings(relation: dict[str, Any]) -> bool:
    return _is_catalog(relation, _RELATION)


def _nodes(root: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    pending = [root]
    while pending:
        value = pending.pop()
        if isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, dict):
            for key, child in value.items():
                if key[:1].isupper() and isinstance(child, dict):
                    yield key, child
                if isinstance(child, (dict, list)):
                    pending.append(child)


StatisticsRead = tuple[str, str, tuple[str, ...] | None]
"""A table's schema, its name, and the columns whose statistics are read (None: all of them)."""


def statistics_read(statement: dict[str, Any]) -> tuple[StatisticsRead, ...] | None:
    """The tables (and columns) whose pg_stats rows the statement can read, when every pg_stats it names
    is filtered to one table; None when it names none or one is not so filtered."""
    named = 0
    reads: list[StatisticsRead] = []
    for kind, node in _nodes(statement):
        if kind == "RangeVar" and _is_catalog(node, _STATISTICS):
            named += 1
        elif kind == "SelectStmt":
            sources = node.get("fromClause") or []
            if (
                len(sources) == 1
                and "RangeVar" in sources[0]
                and _is_catalog(sources[0]["RangeVar"], _STATISTICS)
            ):
                relation = sources[0]["RangeVar"]
                names = {_STATISTICS, str(relation.get("alias", {}).get("aliasname", _STATISTICS))}
                read = _statistics_filter(node.get("whereClause"), names)
                if read is not None:
                    reads.append(read)
    return tuple(reads) if named and named == len(reads) else None


def _statistics_filter(where: Any, names: set[str]) -> StatisticsRead | None:
    terms = _conjuncts(where)
    schema = _equals(terms, "schemaname", names)
    table = _equals(terms, "tablename", names)
    if len(schema) != 1 or len(table) != 1:
        return None
    columns = _equals(terms, "attname", names)
    return (schema[0], table[0], tuple(columns) if columns else None)


def _conjuncts(where: Any) -> list[dict[str, Any]]:
    if not isinstance(where, dict):
        return []
    if "BoolExpr" in where:
        expression = where["BoolExpr"]
        if expression.get("boolop") != "AND_EXPR":
            return []
        return [term for arg in expression.get("args", []) for term in _conjuncts(arg)]
    return [where]


def _equals(terms: list[dict[str, Any]], column: str, names: set[str]) -> list[str]:
    """The constants `column` is compared with by `=` or `IN` in one of the terms (the first such term)."""
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
