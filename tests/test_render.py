"""Rendering: exact JSON-safe values, unambiguous compact text, stated truncation."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import pytest

from pg_mcp.database.session import Column, QueryResult
from pg_mcp.render.results import render_result
from pg_mcp.render.values import Limits, json_value, text_cell, type_label


@pytest.mark.parametrize(
    ("value", "type_name", "expected"),
    [
        (None, "int4", None),
        (True, "bool", True),
        (42, "int4", 42),
        (2**53 - 1, "int8", 2**53 - 1),
        (2**53 + 1, "int8", str(2**53 + 1)),
        (-(2**63), "int8", str(-(2**63))),
        (float("nan"), "float8", "NaN"),
        (float("inf"), "float8", "Infinity"),
        (float("-inf"), "float8", "-Infinity"),
        (1.5, "float8", 1.5),
        ("12345678901234567890.123456789", "numeric", "12345678901234567890.123456789"),
        (Decimal("1.10"), "numeric", "1.10"),
        ("", "text", ""),
        ('{"a": [1, 2.5, null]}', "jsonb", {"a": [1, 2.5, None]}),
        ('{"big": 123456789012345678901234567890}', "jsonb", {"big": "123456789012345678901234567890"}),
        ('{"x": 0.1000000000000000000001}', "jsonb", {"x": "0.1000000000000000000001"}),
        ('"just a string"', "json", "just a string"),
        (b"\xde\xad\xbe\xef", "bytea", "\\xdeadbeef"),
        (uuid.UUID(int=1), "uuid", "00000000-0000-0000-0000-000000000001"),
        (["a", None, "c"], "_text", ["a", None, "c"]),
        ([[1, 2], [3, 4]], "_int4", [[1, 2], [3, 4]]),
        ([], "_int4", []),
        (["4713-01-01 BC", "infinity"], "_date", ["4713-01-01 BC", "infinity"]),
        ("1 year 2 mons 3 days 00:00:00.000001", "interval", "1 year 2 mons 3 days 00:00:00.000001"),
        ({"f1": 1, "f2": "x"}, "record", {"f1": 1, "f2": "x"}),
    ],
)
def test_json_value_is_exact(value: Any, type_name: str, expected: Any) -> None:
    converted = json_value(value, type_name)
    assert converted == expected
    json.dumps(converted, allow_nan=False)


def test_long_values_are_cut_with_a_marker() -> None:
    limits = Limits(max_cell_chars=20)
    assert json_value("x" * 100, "text", limits) == "x" * 20 + "…[cut: 100 chars in all]"
    cut = json_value(bytes(range(256)) * 10, "bytea", limits)
    assert cut.startswith("\\x000102") and cut.endswith("[cut: 2,560 bytes in all]")


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (None, "NULL"),
        ("NULL", '"NULL"'),
        ("", '""'),
        ("plain text", "plain text"),
        ("tab\there", '"tab\\there"'),
        ("line\nbreak", '"line\\nbreak"'),
        (" padded", '" padded"'),
        ('"quoted"', '"\\"quoted\\""'),
        (True, "true"),
        (3, "3"),
        ({"a": 1}, '{"a":1}'),
        (["x", None], '["x",null]'),
    ],
)
def test_text_cells_are_unambiguous(value: Any, cell: str) -> None:
    assert text_cell(value) == cell


def test_type_labels() -> None:
    assert type_label(Column("a", "int4", "pg_catalog")) == "integer"
    assert type_label(Column("a", "_text", "pg_catalog")) == "text[]"
    assert type_label(Column("a", "_int4", "pg_catalog")) == "integer[]"
    assert type_label(Column("a", "order_status", "sales")) == "sales.order_status"
    assert type_label(Column("a", "Mood", "public")) == 'public."Mood"'


def _result(rows: int, truncated: bool) -> QueryResult:
    columns = [Column("id", "int4", "pg_catalog"), Column("name", "text", "pg_catalog")]
    return QueryResult(columns, [(i, f"name {i}") for i in range(rows)], truncated, 1.0)


def test_render_states_row_count_and_cut() -> None:
    complete = render_result(_result(2, False), 100, Limits(), 1000)
    assert complete.text.splitlines() == ["id:integer\tname:text", "0\tname 0", "1\tname 1", "(2 rows)"]
    assert complete.structured["truncated"] is False and complete.structured["row_count"] == 2
    cut = render_result(_result(10, True), 10, Limits(), 1000)
    assert cut.structured["truncated"] is True
    assert "cut at max_rows=10; more rows exist" in cut.text.splitlines()[-1]
    assert "max_rows up to 1000" in cut.text


def test_render_cuts_at_the_byte_budget_and_says_so() -> None:
    rendered = render_result(_result(1000, False), 1000, Limits(max_result_bytes=2000), 1000)
    assert len(rendered.text.encode()) < 2400
    assert rendered.structured["truncated"] is True
    assert rendered.structured["row_count"] == len(rendered.text.splitlines()) - 2
    assert "output cut at 2,000 bytes" in rendered.text


def test_text_is_far_smaller_than_pretty_json() -> None:
    rendered = render_result(_result(100, False), 100, Limits(), 1000)
    pretty = json.dumps(
        [dict(zip(["id", "name"], row, strict=True)) for row in rendered.structured["rows"]], indent=2
    )
    assert len(rendered.text) < 0.5 * len(pretty)


def test_json_nested_too_deep_for_serialisers_is_kept_as_text() -> None:
    from pg_mcp.render.values import MAX_JSON_DEPTH, json_value

    deep = "[" * 254 + "]" * 254
    value = json_value(deep, "jsonb")
    assert isinstance(value, str) and value.startswith(deep) and f"more than {MAX_JSON_DEPTH} levels" in value
    tricky = '{"k": "' + '\\"[' * 100 + '", "n": [[1]]}'  # brackets inside a string do not count
    assert json_value(tricky, "jsonb")["n"] == [[1]]
