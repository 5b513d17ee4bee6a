"""Names: table-name arguments (quoting, case folding, refusal of junk) and the dotted names of settings."""

from __future__ import annotations

import pytest

from pg_mcp.errors import NotFoundError
from pg_mcp.names import (
    column_setting,
    function_setting,
    parse_qualified_name,
    quote_ident,
    setting_parts,
    table_setting,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("orders", [("orders", False)]),
        ("Orders", [("orders", False)]),
        ("sales.orders", [("sales", False), ("orders", False)]),
        ('sales."Gift Cards"', [("sales", False), ("Gift Cards", True)]),
        ('"My.Schema"."a""b"', [("My.Schema", True), ('a"b', True)]),
        ("  spaced  ", [("spaced", False)]),
    ],
)
def test_parse(value: str, expected: list[tuple[str, bool]]) -> None:
    assert [(p.text, p.quoted) for p in parse_qualified_name(value)] == expected


@pytest.mark.parametrize("value", ["", "   ", "a.b.c", '"unterminated', "a.", '"x"y', "a\x00b", "x" * 500])
def test_parse_refuses(value: str) -> None:
    with pytest.raises(NotFoundError):
        parse_qualified_name(value)


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("orders", "orders"),
        ("Gift Cards", '"Gift Cards"'),
        ("order", '"order"'),
        ('a"b', '"a""b"'),
        ("_x1", "_x1"),
    ],
)
def test_quote_ident(name: str, quoted: str) -> None:
    assert quote_ident(name) == quoted


# Dotted names in settings (PG_MCP_TABLES, PG_MCP_HIDDEN_COLUMNS, PG_MCP_ALLOW_FUNCTIONS): case kept,
# quotes and blanks around each part dropped.


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("sales.orders", ("sales", "orders")),
        ("sales.*", ("sales", "*")),
        ("B.t_001", ("B", "t_001")),
        ('"Sales" . "Orders"', ("Sales", "Orders")),
    ],
)
def test_table_setting(entry: str, expected: tuple[str, str]) -> None:
    assert table_setting(entry) == expected


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("hr.employees.salary", ("hr", "employees", "salary")),
        ("users.password_hash", ("*", "users", "password_hash")),
        ('"HR".employees."Salary"', ("HR", "employees", "Salary")),
    ],
)
def test_column_setting(entry: str, expected: tuple[str, str, str]) -> None:
    assert column_setting(entry) == expected


@pytest.mark.parametrize("entry", ["orders", "a.b.c", "a..b", ".a", "a.", '"".a', " . "])
def test_table_setting_refuses(entry: str) -> None:
    with pytest.raises(ValueError, match=r"is not schema\.table or schema"):
        table_setting(entry)


@pytest.mark.parametrize("entry", ["salary", "a.b.c.d", "a..b", "a.b.", '"".b.c'])
def test_column_setting_refuses(entry: str) -> None:
    with pytest.raises(ValueError, match=r"is not schema\.table\.column or table\.column"):
        column_setting(entry)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [("My.Fn", "my.fn"), ("safe_fn", "safe_fn"), ('"my_schema" . "Fn"', "my_schema.fn"), ('"fn"', "fn")],
)
def test_function_setting(entry: str, expected: str) -> None:
    assert function_setting(entry) == expected
    assert setting_parts(expected)[-1] == expected.rpartition(".")[2]
