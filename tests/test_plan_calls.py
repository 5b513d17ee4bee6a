"""The plan check's calls: what a plan string calls is read once and kept, but every plan is judged
under its own policy, every time."""

from __future__ import annotations

from typing import Any

import pytest

from pg_mcp.errors import GuardError
from pg_mcp.guard.plan import CALL_STRING_CHARS, check_plan_calls
from pg_mcp.guard.policy import GuardPolicy
from pg_mcp.guard.rules import Rule


def plan(*outputs: str, children: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    node: dict[str, Any] = {"Node Type": "Result", "Output": list(outputs)}
    if children:
        node["Plans"] = children
    return node


def test_a_denied_call_is_refused_each_time_its_string_comes_back() -> None:
    calls_it = plan("pg_catalog.pg_read_file('/etc/passwd'::text)")
    for _ in range(3):
        with pytest.raises(GuardError) as refused:
            check_plan_calls(calls_it, GuardPolicy())
        assert refused.value.rule == Rule.FUNCTION_NOT_ALLOWED


def test_the_same_string_is_judged_under_each_policy() -> None:
    calls_it = plan("public.shipping_days(o.id)")
    with pytest.raises(GuardError) as refused:
        check_plan_calls(calls_it, GuardPolicy())
    assert refused.value.rule == Rule.USER_DEFINED
    check_plan_calls(calls_it, GuardPolicy(allowed_functions=frozenset({"public.shipping_days"})))
    with pytest.raises(GuardError):
        check_plan_calls(calls_it, GuardPolicy())


def test_a_call_repeated_across_nodes_is_refused_wherever_it_is() -> None:
    inner = plan("pg_catalog.lower(c.name)", "pg_catalog.pg_ls_dir('.'::text)")
    outer = plan("pg_catalog.lower(c.name)", children=[inner])
    with pytest.raises(GuardError) as refused:
        check_plan_calls(outer, GuardPolicy())
    assert "pg_ls_dir" in refused.value.message


def test_a_long_string_is_read_whole_and_not_kept() -> None:
    padding = " || ".join(["pg_catalog.lower(c.name)"] * (CALL_STRING_CHARS // 20))
    long_output = f"{padding} || pg_catalog.pg_read_binary_file('x'::text)"
    assert len(long_output) > CALL_STRING_CHARS
    for _ in range(2):
        with pytest.raises(GuardError) as refused:
            check_plan_calls(plan(long_output), GuardPolicy())
        assert "pg_read_binary_file" in refused.value.message


def test_harmless_calls_pass() -> None:
    check_plan_calls(plan("pg_catalog.lower(c.name)", "pg_catalog.format('%s'::text, c.id)"), GuardPolicy())
