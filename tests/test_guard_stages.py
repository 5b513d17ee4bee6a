"""The guard's stages as data: `checking.STAGES` run in order over a `Reading`, each rule of a reading
is one entry of its dispatch table, and the refusals both readings make read the same."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from pg_mcp.errors import GuardError
from pg_mcp.guard import checking, postgres_reading, sqlglot_reading
from pg_mcp.guard.policy import GuardPolicy
from pg_mcp.guard.rules import Rule

POLICY = GuardPolicy()
#: The database's names, as the server loads them: `pg_sleep` is callable on one argument and on a row.
KNOWN_NAMES = GuardPolicy(one_arg_functions=frozenset({"pg_sleep"}), row_functions=frozenset({"pg_sleep"}))


def _refusal(check: Callable[[], object]) -> tuple[str, str, str | None] | None:
    try:
        check()
    except GuardError as error:
        return str(error.rule), error.message, error.hint
    return None


def _run(reading: checking.Reading, stages: tuple[checking.Stage, ...]) -> checking.Reading:
    for stage in stages:
        reading = stage(reading)
    return reading


def test_the_stages_run_in_the_order_the_module_documents() -> None:
    names = [stage.__name__ for stage in checking.STAGES]
    assert names == ["read_input", "read_with_postgres", "read_with_sqlglot", "check_wrapping"]
    documented = checking.__doc__ or ""
    positions = [documented.index(f"`{name}`") for name in names]
    assert positions == sorted(positions)


def test_each_stage_returns_the_reading_with_what_it_adds() -> None:
    start = checking.Reading("SELECT 1 AS one; -- done", 10, POLICY)
    read = checking.read_input(start)
    assert read.text == "SELECT 1 AS one; -- done" and start.text == ""  # a new reading, the old unchanged
    parsed = checking.read_with_postgres(read)
    assert parsed.statement == "SELECT 1 AS one" and "SelectStmt" in parsed.tree
    assert checking.read_with_sqlglot(parsed) == parsed  # a second opinion only: it adds nothing
    wrapped = checking.check_wrapping(parsed)
    assert wrapped.wrapped == "SELECT * FROM (\nSELECT 1 AS one\n) AS pg_mcp_result LIMIT 11"
    with pytest.raises(dataclasses.FrozenInstanceError):
        wrapped.text = "SELECT 2"  # type: ignore[misc]


def test_the_verdict_is_the_stages_run_in_order() -> None:
    sql = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r"
    reading = _run(checking.Reading(sql, 3, POLICY), checking.STAGES)
    checked = checking.verdict(sql, 3, POLICY)
    assert (checked.statement, checked.sql, checked.max_rows) == (reading.statement, reading.wrapped, 3)
    assert checked.recursion  # what the accepted statement is known to do comes with it


@pytest.mark.parametrize(
    ("sql", "stage", "rule"),
    [
        ("SELECT 1\x00", "read_input", Rule.CONTROL_CHARACTERS),
        ("DELETE FROM t", "read_with_postgres", Rule.NOT_READ_ONLY),
        ("SELECT " + "(" * 201 + "1" + ")" * 201, "read_with_sqlglot", Rule.TOO_DEEP),  # sqlglot's limit
    ],
)
def test_the_first_stage_that_refuses_decides(sql: str, stage: str, rule: Rule) -> None:
    index = [s.__name__ for s in checking.STAGES].index(stage)
    before = _run(checking.Reading(sql, 10, POLICY), checking.STAGES[:index])  # accepted so far
    with pytest.raises(GuardError) as caught:
        checking.STAGES[index](before)
    assert caught.value.rule == rule
    with pytest.raises(GuardError) as whole:
        checking.verdict(sql, 10, POLICY)
    assert whole.value.rule == rule


def test_the_wrapping_must_hold_the_statement_that_was_read() -> None:
    reading = _run(checking.Reading("SELECT 1", 10, POLICY), checking.STAGES[:3])
    other = dataclasses.replace(reading, statement="SELECT 2")  # not the statement PostgreSQL read
    with pytest.raises(GuardError) as caught:
        checking.check_wrapping(other)
    assert caught.value.rule == Rule.SYNTAX and "subquery" in caught.value.message


def test_adding_a_stage_is_adding_an_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def no_wildcards(reading: checking.Reading) -> checking.Reading:
        seen.append(reading.wrapped)  # runs last: it sees what the stages before it found
        if "*" in reading.statement:
            raise GuardError(Rule.SYNTAX_NOT_ALLOWED, "Name the columns.")
        return reading

    monkeypatch.setattr(checking, "STAGES", (*checking.STAGES, no_wildcards))
    assert checking.verdict("SELECT 1", 5, POLICY).statement == "SELECT 1"
    with pytest.raises(GuardError) as caught:
        checking.verdict("SELECT * FROM pg_class", 5, POLICY)
    assert caught.value.message == "Name the columns."
    assert seen[0].endswith("LIMIT 6")


def test_each_rule_of_postgres_reading_is_for_a_kind_it_reads() -> None:
    """A rule for a node kind outside READ_NODES would never run: that kind is refused first."""
    assert set(postgres_reading._NODE_RULES) <= postgres_reading.READ_NODES


def test_sqlglot_reading_has_a_rule_for_every_kind_it_tells_apart() -> None:
    kinds = set(sqlglot_reading._Kind) - {sqlglot_reading._Kind.NAME, sqlglot_reading._Kind.OTHER}
    assert set(sqlglot_reading._KIND_RULES) == kinds


@pytest.mark.parametrize(
    ("sql", "policy", "rule"),
    [
        ("SELECT 1 INTO t", POLICY, Rule.SELECT_INTO),
        ("SELECT * FROM t FOR UPDATE", POLICY, Rule.ROW_LOCK),
        ("WITH d AS (DELETE FROM t RETURNING 1) SELECT * FROM d", POLICY, Rule.WRITE_IN_QUERY),
        ("SELECT 1 ~~~ 2", POLICY, Rule.OPERATOR),
        ("SELECT pg_sleep(1)", POLICY, Rule.FUNCTION_NOT_ALLOWED),
        ("SELECT public.f()", POLICY, Rule.FUNCTION_NOT_ALLOWED),
        ("SELECT (2).pg_sleep", POLICY, Rule.FUNCTION_NOT_ALLOWED),
        ("SELECT (2).pg_sleep", KNOWN_NAMES, Rule.FUNCTION_NOT_ALLOWED),
        ("SELECT t.pg_sleep FROM t", KNOWN_NAMES, Rule.FUNCTION_NOT_ALLOWED),
        ("SELECT 1; SELECT 2", POLICY, Rule.MULTIPLE_STATEMENTS),
    ],
)
def test_both_readings_refuse_a_rule_in_the_same_words(sql: str, policy: GuardPolicy, rule: Rule) -> None:
    by_postgres = _refusal(lambda: postgres_reading.check(postgres_reading.parse(sql)["stmt"], policy))
    by_sqlglot = _refusal(lambda: sqlglot_reading.check(sql, policy))
    assert by_postgres is not None and by_postgres[0] == rule
    assert by_postgres == by_sqlglot
