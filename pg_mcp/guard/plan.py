"""Checks on PostgreSQL's plan of an accepted statement (pure: the plan is handed in).

The plan shows what no text check can: the functions a view's definition calls (views are expanded),
a user function the parser resolved in place of a built-in, the relations really scanned, and the
planner's estimate of the work. `EXPLAIN` plans without executing, and it only ever sees statements
the text stages accepted, whose amplifying calls are already bounded (planning folds constants).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pg_mcp.errors import GuardError
from pg_mcp.guard import secrets
from pg_mcp.guard.functions import denial_reason, is_denied, operator_allowed
from pg_mcp.guard.policy import GuardPolicy
from pg_mcp.guard.rules import Rule

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
    for node in _nodes(plan):
        relation, schema = node.get("Relation Name"), node.get("Schema")
        if relation and schema:
            _check_relation(node, str(schema), str(relation), policy)
        calls = [(node.get("Schema"), node.get("Function Name"))] if node.get("Function Name") else []
        for key, value in node.items():
            if key not in _NOT_EXPRESSIONS and key != "Plans":
                calls.extend(call for text in _strings(value) for call in _calls(text))
        for schema_name, name in calls:
            if not (name in proven and schema_name in (None, "pg_catalog")):
                _check_call(schema_name, str(name), policy)


def check_budget(plan: Mapping[str, Any], budget: Budget) -> None:
    """Refuse a statement whose estimated cost, or rows fed into a step that reads all of its input,
    exceed the budget, showing the estimate so the caller can narrow the query."""
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
    for node in _nodes(plan):
        if node.get("Node Type") not in _BLOCKING:
            continue
        for child in node.get("Plans", []):
            rows = float(child.get("Plan Rows", 0.0))
            if rows > budget.max_rows:
                raise GuardError(
                    Rule.ROW_BUDGET,
                    f"The planner estimates that one step ({node.get('Node Type')}) reads {rows:,.0f} rows; this "
                    f"server's limit is {budget.max_rows:,.0f} (PG_MCP_MAX_PLAN_ROWS).",
                    "Filter before aggregating or sorting, or aggregate a sample (TABLESAMPLE).",
                )


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


def _calls(text: str) -> Iterator[tuple[str | None, str]]:
    for match in _CALL.finditer(_STRING_LITERAL.sub("''", text)):
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
