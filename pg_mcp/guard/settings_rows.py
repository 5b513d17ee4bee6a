"""Reads of `pg_settings` that can only return harmless rows, proven on PostgreSQL's own parse tree.

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
    return relation.get("relname") == _RELATION and relation.get("schemaname") in (None, "pg_catalog")


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
