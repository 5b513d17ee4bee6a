"""Checks on PostgreSQL's plan of an accepted statement (pure: the plan is handed in).

The plan shows what no text check can: the functions a view's definition calls (views are expanded),
a user function the parser resolved in place of a built-in, the relations really scanned, and the
planner's estimate of the work. `EXPLAIN` plans without executing, and it only ever sees statements
the text stages accepted, whose amplifying calls are already bounded (planning folds constants).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pg_mcp.errors import GuardError
from pg_mcp.guard import secrets
from pg_mcp.guard.functions import denial_reason, is_denied, operator_allowed
from pg_mcp.guard.policy import GuardPolicy
from pg_mcp.guard.recursion import RecursionBound
from pg_mcp.guard.rules import Rule
from pg_mcp.recent import Recent

_BUILT_IN_SCHEMAS = frozenset({"pg_catalog", "information_schema"})
_STRING_LITERAL = re.compile(r"'(?:[^']|'')*'")
#: A call in deparsed SQL: optional schema, then a name (PostgreSQL prints lower-case names bare
#: and quotes the rest), then `(`. Upper-case words (CASE, COALESCE, ANY ...) are syntax.
_CALL = re.compile(r'(?:("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)\.)?("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)\s*\(')
#: Keys of a plan node that hold names or settings, not expressions.
_NOT_EXPRESSIONS = frozenset(
    {"Node Type", "Relation Name", "Schema", "Alias", "Parent Relationship", "Strategy", "Join Type",
     "Index Name", "Scan Direction", "Partial Mode", "Command", "Subplan Name", "CTE Name", "Function Name"}
)  # fmt: skip
#: Plan nodes that consume all of their input before producing a row.
_BLOCKING = frozenset({"Aggregate", "Sort", "Hash", "Materialize", "WindowAgg", "SetOp", "Incremental Sort"})


@dataclass(frozen=True)
class Budget:
    """The planner's estimates a statement may reach; 0 means no limit."""

    max_cost: float = 0.0
    max_rows: float = 0.0


def check_plan_calls(
    plan: Mapping[str, Any], policy: GuardPolicy, *, harmless_settings: bool = False
) -> None:
    """Refuse a plan that calls a user-defined or dangerous function, or reads a secret relation
    (`harmless_settings`: the text proved that pg_settings is read only for harmless settings)."""
    proven = {SETTINGS_FUNCTION} if harmless_settings else set()
    checked: set[tuple[str | None, str]] = set()
    for node in _nodes(plan):
        relation, schema = node.get("Relation Name"), node.get("Schema")
        if relation and schema:
            _check_relation(node, str(schema), str(relation), policy)
        calls = [(node.get("Schema"), str(node.get("Function Name")))] if node.get("Function Name") else []
        for key, value in node.items():
            if key not in _NOT_EXPRESSIONS and key != "Plans":
                calls.extend(call for text in _strings(value) for call in _calls_in(text))
        for call in calls:
            schema_name, name = call
            if call not in checked and not (name in proven and schema_name in (None, "pg_catalog")):
                _check_call(schema_name, name, policy)
                checked.add(call)


def check_budget(plan: Mapping[str, Any], budget: Budget, recursion: Sequence[RecursionBound] = ()) -> None:
    """Refuse a statement whose estimated cost, or rows fed into a step that reads all of its input,
    exceed the budget, showing the estimate so the caller can narrow the query.

    Where the planner only guesses (how often a recursive CTE recurses, how many rows a function given
    a subquery's value returns), the rows are what the text allows (`recursion`,
    pg_mcp.guard.recursion), or unbounded."""
    cost = float(plan.get("Total Cost", 0.0))
    if budget.max_cost and cost > budget.max_cost:
        raise GuardError(
            Rule.COST_BUDGET,
            f"The planner estimates this query at cost {cost:,.0f}; this server's limit is {budget.max_cost:,.0f} "
            "(PG_MCP_MAX_COST).",
            "Narrow it: filter with WHERE on indexed columns, aggregate fewer rows, avoid cross joins; the explain "
            "tool shows the estimate per step.",
        )
    if not budget.max_rows:
        return
    iterations = dict(recursion)
    subquery_values = _subquery_values(plan)
    for node, reader in _nodes_with_reader(plan):
        kind = node.get("Node Type")
        if kind in _BLOCKING:
            for child in node.get("Plans", []):
                if child.get("Parent Relationship") not in _SIDE_PLANS:
                    _check_rows(float(child.get("Plan Rows", 0.0)), str(kind), budget)
        elif kind == "Function Scan":  # it stores all the function's rows before returning one
            rows = (
                math.inf
                if _from_subquery(str(node.get("Function Call", "")), subquery_values)
                else _rows(node)
            )
            _check_rows(rows, "Function Scan", budget, guessed=f"{node.get('Function Name')}()")
        elif (
            kind == "ProjectSet"
            and reader
            and any(_from_subquery(output, subquery_values) for output in node.get("Output", []))
        ):
            _check_rows(math.inf, reader, budget, guessed="a set-returning function in the select list")
        elif kind == "CTE Scan" and reader and str(node.get("CTE Name")) in iterations:
            name = str(node.get("CTE Name"))
            rows = _recursive_rows(plan, name, iterations[name])
            _check_rows(rows, reader, budget, guessed=f"the recursive CTE {name}")


#: Plans that hang off a node without being its input.
_SIDE_PLANS = frozenset({"InitPlan", "SubPlan"})
#: A subquery's result in a plan's expressions: `$0` from "InitPlan 1 (returns $0)" (PostgreSQL 15),
#: `(InitPlan 1).col1` (16 and later) or a correlated `(SubPlan 2)`.
_PARAMETER = re.compile(r"\$(\d+)")
_SUBQUERY = re.compile(r"\((?:SubPlan|InitPlan) \d+\)")


def _subquery_values(plan: Mapping[str, Any]) -> frozenset[str]:
    """The parameters the plan's initial subqueries set (their values are known only at run time)."""
    names = (str(node.get("Subplan Name", "")) for node in _nodes(plan))
    return frozenset(
        number for name in names if name.startswith("InitPlan") for number in _PARAMETER.findall(name)
    )


def _from_subquery(expression: str, subquery_values: frozenset[str]) -> bool:
    """Whether a call's arguments take a subquery's result (a column or a constant can be estimated)."""
    text = _STRING_LITERAL.sub("''", expression)
    return bool(_SUBQUERY.search(text)) or any(n in subquery_values for n in _PARAMETER.findall(text))


def _rows(node: Mapping[str, Any]) -> float:
    return float(node.get("Plan Rows", 0.0))


def _recursive_rows(plan: Mapping[str, Any], name: str, iterations: float | None) -> float:
    """The most rows a recursive CTE can produce: its first term's rows, then the recursive term's
    estimate for each iteration the text allows (the planner assumes ten)."""
    for node in _nodes(plan):
        if node.get("Subplan Name") == f"CTE {name}" and node.get("Node Type") == "Recursive Union":
            first, then = (node.get("Plans") or [{}, {}])[:2]
            return math.inf if iterations is None else _rows(first) + max(_rows(then), 1.0) * iterations
    return 0.0 if iterations is not None else math.inf


def _check_rows(rows: float, step: str, budget: Budget, *, guessed: str = "") -> None:
    if rows <= budget.max_rows:
        return
    if guessed and math.isinf(rows):
        raise GuardError(
            Rule.ROW_BUDGET,
            f"Nothing in the statement bounds how many rows {guessed} produces, and a step that reads all of "
            f"its input ({step}) would read them; the planner's estimate would only be a guess, and this "
            f"server's limit is {budget.max_rows:,.0f} rows (PG_MCP_MAX_PLAN_ROWS).",
            "Bound it in the text: give a recursive CTE a depth counter (`depth + 1` in the recursive part, "
            "`WHERE depth < 100`) or make it UNION of stored columns, give set-returning functions constant "
            "arguments, or LIMIT the rows before aggregating or sorting.",
        )
    source = f" from {guessed}" if guessed else ""
    raise GuardError(
        Rule.ROW_BUDGET,
        f"The planner estimates that one step ({step}) reads {rows:,.0f} rows{source}; this server's limit is "
        f"{budget.max_rows:,.0f} (PG_MCP_MAX_PLAN_ROWS).",
        "Filter before aggregating or sorting, or aggregate a sample (TABLESAMPLE).",
    )


def _nodes_with_reader(plan: Mapping[str, Any]) -> Iterator[tuple[Mapping[str, Any], str]]:
    """Every node, with the nearest step above it that reads all of its input ("" when none does)."""
    stack: list[tuple[Mapping[str, Any], str]] = [(plan, "")]
    while stack:
        node, reader = stack.pop()
        yield node, reader
        kind = str(node.get("Node Type"))
        below = kind if kind in _BLOCKING else reader
        stack.extend((child, below) for child in node.get("Plans", []))


def _check_relation(node: Mapping[str, Any], schema: str, relation: str, policy: GuardPolicy) -> None:
    """A secret relation in a plan; a masked catalog (pg_authid under pg_roles) is judged by column on
    PostgreSQL's analysis instead (pg_mcp.guard.analysed)."""
    if schema != "pg_catalog" or relation not in secrets.SECRET_COLUMNS:
        secrets.check_relation(schema, relation, policy.allowed_secrets)


#: The function under pg_settings, which its plan scans.
SETTINGS_FUNCTION = "pg_show_all_settings"


def _check_call(schema: str | None, name: str, policy: GuardPolicy) -> None:
    qualified = f"{schema}.{name}" if schema else name
    if schema is not None and schema not in _BUILT_IN_SCHEMAS:
        if not operator_allowed(name, schema, policy.allowed_functions):
            raise GuardError(
                Rule.USER_DEFINED,
                f"The plan calls the user-defined function {qualified}() (through a view or in place of a "
                "built-in), which the operator has not allowed.",
                "Query the underlying tables directly, or ask the operator to allow the function "
                "(PG_MCP_ALLOW_FUNCTIONS).",
            )
        return
    if is_denied(name) and name not in policy.allowed_functions:
        raise GuardError(
            Rule.FUNCTION_NOT_ALLOWED,
            f"The plan calls {name}(), which is refused: {denial_reason(name)}.",
            "Query the underlying tables directly.",
        )
    secrets.check_function(name, policy.allowed_secrets)


#: The calls found lately in plan strings of at most CALL_STRING_CHARS: a statement's expressions (and
#: its value-cutting wrapper's) come back in each of its plans, whatever its literals.
CALL_STRINGS_KEPT = 1_024
CALL_STRING_CHARS = 4_096
_found: Recent[str, tuple[tuple[str | None, str], ...]] = Recent(CALL_STRINGS_KEPT)


def _calls_in(text: str) -> tuple[tuple[str | None, str], ...]:
    """The functions `text` calls, each as (schema or None, name)."""
    if "(" not in text:  # most plan strings (names, directions, keys) call nothing: no pattern needed
        return ()
    if len(text) > CALL_STRING_CHARS:
        return tuple(_calls(text))
    found = _found.get(text)
    if found is None:
        found = tuple(_calls(text))
        _found.put(text, found)
    return found


def _calls(text: str) -> Iterator[tuple[str | None, str]]:
    for match in _CALL.finditer(_STRING_LITERAL.sub("''", text) if "'" in text else text):
        schema, name = match.group(1), match.group(2)
        yield (_unquote(schema) if schema else None), _unquote(name)


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


def _nodes(plan: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    stack = [plan]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(node.get("Plans", []))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, str):
                yield item
