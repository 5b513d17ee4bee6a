"""Table-name arguments: quoting, case folding, and refusal of junk."""

from __future__ import annotations

import pytest

from pg_mcp.errors import NotFoundError
from pg_mcp.names import parse_qualified_name, quote_ident


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
