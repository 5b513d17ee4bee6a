"""How many times a recursive CTE can recurse, read on PostgreSQL's own parse tree.

The planner guesses that a recursive CTE recurses ten times, so its estimate says nothing about a
recursion that runs a million times. The row budget (pg_mcp.guard.plan) therefore takes a recursive
CTE's estimate only when the text itself bounds the recursion:

- a counter: the recursive term computes column `c` as `c + k` (or `c - k`) from a constant start of an
  exact type (an integer or numeric literal, or one cast to such a pg_catalog type: a float counter
  can stop moving), and its WHERE stops it at a constant (`c < 10`, `depth <= 5`): at most (bound - start) / k + 1
  iterations;
- or the data: with UNION (not UNION ALL) and a recursive term that only copies columns (no
  computed values), every row it can produce is made of values already stored, and UNION stops at the
  first round that adds no new row.

Any other recursive CTE is unbounded as far as the budget knows (None).
"""

from __future__ import annotations

import math
from typing import Any

from pg_mcp.guard.tree_walk import nodes

RecursionBound = tuple[str, float | None]
"""A recursive CTE's name and the most times it recurses (None: nothing in the text bounds it)."""

_RISING = frozenset({"<", "<="})


def recursion_bounds(statement: dict[str, Any]) -> tuple[RecursionBound, ...]:
    """Every recursive CTE that the data does not bound, with the iterations its counter allows."""
    bounds: list[RecursionBound] = []
    for _, node in nodes(statement):
        with_clause = node.get("withClause")
        if not isinstance(with_clause, dict) or not with_clause.get("recursive"):
            continue
        for item in with_clause.get("ctes", []):
            cte = item.get("CommonTableExpr", {})
            query = cte.get("ctequery", {}).get("SelectStmt", {})
            name = str(cte.get("ctename", ""))
            if query.get("op") != "SETOP_UNION" or not _aliases(query.get("rarg", {}), name):
                continue  # not recursive after all: PostgreSQL plans it as a plain CTE
            if not query.get("all") and _copies_only(query["rarg"]):
                continue
            bounds.append((name, _counter_iterations(cte, query, name)))
    return tuple(bounds)


def _aliases(term: dict[str, Any], name: str) -> set[str]:
    """The names the recursive term gives the CTE itself (empty: it does not refer to it)."""
    found: set[str] = set()
    for kind, node in nodes(term.get("fromClause", [])):
        if kind == "RangeVar" and node.get("relname") == name and not node.get("schemaname"):
            found.add(str(node.get("alias", {}).get("aliasname", name)))
    return found


def _copies_only(term: dict[str, Any]) -> bool:
    """Whether every output of the recursive term is a column or a constant, never a computed value."""
    targets = [target.get("ResTarget", {}).get("val", {}) for target in term.get("targetList", [])]
    return bool(targets) and all(
        "A_Const" in value or ("ColumnRef" in value and _column(value) is not None) for value in targets
    )


def _counter_iterations(cte: dict[str, Any], query: dict[str, Any], name: str) -> float | None:
    """The fewest iterations any counter of the recursion allows, or None when it has none."""
    base, term = query.get("larg", {}), query["rarg"]
    if base.get("op", "SETOP_NONE") != "SETOP_NONE":
        return None
    columns = _column_names(cte, base)
    aliases = _aliases(term, name)
    starts = [
        _exact_start(target.get("ResTarget", {}).get("val", {})) for target in base.get("targetList", [])
    ]
    steps = term.get("targetList", [])
    best: float | None = None
    for index, column in enumerate(columns):
        if index >= len(steps) or index >= len(starts) or starts[index] is None:
            continue
        step = _step(steps[index].get("ResTarget", {}).get("val", {}), column, aliases)
        if step is None:
            continue
        for operator, limit in _limits(term.get("whereClause"), column, aliases):
            rising = operator in _RISING
            if (step > 0) != rising:
                continue
            start = starts[index]
            assert start is not None
            distance = (limit - start) if rising else (start - limit)
            iterations = max(0.0, math.floor(distance / abs(step))) + 1
            best = iterations if best is None else min(best, iterations)
    return best


def _column_names(cte: dict[str, Any], base: dict[str, Any]) -> list[str]:
    """The CTE's column names: its alias list, else what its first term's outputs are called."""
    aliases = [str(item.get("String", {}).get("sval", "")) for item in cte.get("aliascolnames", [])]
    if aliases:
        return aliases
    names: list[str] = []
    for target in base.get("targetList", []):
        res = target.get("ResTarget", {})
        names.append(str(res.get("name") or _column(res.get("val", {})) or ""))
    return names


def _step(value: dict[str, Any], column: str, aliases: set[str]) -> float | None:
    """k when the value is `column + k` or `k + column` (-k for `column - k`), for a constant k ≠ 0."""
    expression = value.get("A_Expr", {})
    if expression.get("kind") != "AEXPR_OP":
        return None
    operator = _operator(expression)
    left, right = expression.get("lexpr", {}), expression.get("rexpr", {})
    if operator == "+" and _is_column(right, column, aliases):
        left, right = right, left
    if operator not in ("+", "-") or not _is_column(left, column, aliases):
        return None
    step = _number(right)
    if not step:
        return None
    return step if operator == "+" else -step


def _limits(where: Any, column: str, aliases: set[str]) -> list[tuple[str, float]]:
    """The `column < N`-like conjuncts of the WHERE clause, as (operator with the column on the left, N)."""
    conjuncts = [where] if where else []
    boolean = (where or {}).get("BoolExpr", {})
    if boolean.get("boolop") == "AND_EXPR":
        conjuncts = boolean.get("args", [])
    limits: list[tuple[str, float]] = []
    for conjunct in conjuncts:
        expression = conjunct.get("A_Expr", {})
        operator = _operator(expression) if expression.get("kind") == "AEXPR_OP" else None
        left, right = expression.get("lexpr", {}), expression.get("rexpr", {})
        if operator in ("<", "<=", ">", ">=") and _is_column(right, column, aliases):
            left, right = right, left
            operator = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}[operator]
        limit = _number(right)
        if operator in ("<", "<=", ">", ">=") and _is_column(left, column, aliases) and limit is not None:
            limits.append((operator, limit))
    return limits


def _is_column(value: dict[str, Any], column: str, aliases: set[str]) -> bool:
    """Whether the value is the CTE's column (bare, or qualified by the recursive term's name for it)."""
    fields = value.get("ColumnRef", {}).get("fields", [])
    names = [field.get("String", {}).get("sval") for field in fields]
    return names == [column] or (len(names) == 2 and names[0] in aliases and names[1] == column)


def _column(value: dict[str, Any]) -> str | None:
    fields = value.get("ColumnRef", {}).get("fields", [])
    last = fields[-1].get("String", {}).get("sval") if fields else None
    return str(last) if last is not None else None


def _operator(expression: dict[str, Any]) -> str | None:
    names = expression.get("name", [])
    return str(names[-1].get("String", {}).get("sval")) if len(names) == 1 else None


#: Types whose `+` is exact: a counter of another type (float8 at 1e17, where n + 1 = n) may never
#: reach its bound. A name resolves to pg_catalog's type first, whatever the search path.
_EXACT_TYPES = frozenset(
    {"int2", "int4", "int8", "smallint", "integer", "int", "bigint", "numeric", "decimal"}
)


def _exact_start(value: dict[str, Any]) -> float | None:
    """A counter's start: a numeric literal (integer or numeric, both exact), or one cast to an exact
    type; None for anything else, so that the counter is not trusted."""
    cast = value.get("TypeCast")
    if cast is not None:
        names = [n.get("String", {}).get("sval") for n in cast.get("typeName", {}).get("names", [])]
        qualified = len(names) == 2 and names[0] == "pg_catalog"
        if not (len(names) == 1 or qualified) or names[-1] not in _EXACT_TYPES:
            return None
        if cast.get("typeName", {}).get("arrayBounds"):
            return None
    return _number(value)


def _number(value: dict[str, Any]) -> float | None:
    """A numeric literal's value (an integer, or a decimal such as 1e6, cast or not), else None."""
    value = value.get("TypeCast", {}).get("arg", value)
    constant = value.get("A_Const", {})
    if "ival" in constant:
        return float(constant["ival"].get("ival", 0))
    if "fval" in constant:
        try:
            number = float(constant["fval"].get("fval", ""))
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None
