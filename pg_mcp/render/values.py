"""PostgreSQL values to JSON-safe values and text cells, losslessly or saying how they were cut (pure).

A string cell is written bare unless that would be ambiguous (empty, `NULL`, tabs, newlines, edge
whitespace, a leading quote), in which case it is a JSON string literal.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from asyncpg import Range, Record

from pg_mcp.database.session import Column
from pg_mcp.database.value_cutting import CutValue, bytea_bytes_shown
from pg_mcp.names import qualified
from pg_mcp.render.json_text import nests_deeper_than

MAX_SAFE_INTEGER = 2**53 - 1


_SQL_TYPE_NAMES = {
    "int2": "smallint",
    "int4": "integer",
    "int8": "bigint",
    "float4": "real",
    "float8": "double precision",
    "bool": "boolean",
    "bpchar": "char",
    "varchar": "varchar",
    "timestamptz": "timestamptz",
    "timetz": "timetz",
}


_NEEDS_QUOTES = re.compile(r'^\s|\s$|[\t\n\r]|^"')


def _element_type(type_name: str) -> str | None:
    """The element type of an array type (`_text` for text[]), else None."""
    return type_name[1:] if type_name.startswith("_") else None


def type_label(column: Column) -> str:
    """`integer`, `text[]`, `sales.order_status`: the name a model would write in SQL."""
    element = _element_type(column.type_name)
    name, suffix = (column.type_name, "") if element is None else (element, "[]")
    name = _SQL_TYPE_NAMES.get(name, name)
    if column.type_schema not in ("pg_catalog", ""):
        name = qualified(column.type_schema, name)
    return name + suffix


@dataclass(frozen=True)
class Limits:
    """How much of a result is shown: characters per cell, bytes per result."""

    max_cell_chars: int = 1000
    max_result_bytes: int = 1_000_000


def json_value(value: Any, type_name: str = "", limits: Limits = Limits()) -> Any:
    """A JSON-safe value that loses nothing, or says how it was shortened."""
    if isinstance(value, CutValue):
        return f"{value.prefix}…[cut: {value.total:,} {value.unit} in all]"
    if value is None or (isinstance(value, bool | str) and type_name not in ("json", "jsonb")):
        return _shorten(value, limits) if isinstance(value, str) else value
    if isinstance(value, int):
        return value if abs(value) <= MAX_SAFE_INTEGER else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else ("NaN" if math.isnan(value) else _infinity(value))
    if isinstance(value, str):  # json / jsonb arrive as PostgreSQL's text
        return _parse_json(value, limits)
    if isinstance(value, Decimal):
        return _decimal_text(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return _bytea(bytes(value), limits)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Range):
        return _range_text(value)
    if isinstance(value, Mapping | Record):  # composite types arrive as Records
        return _whole({str(key): json_value(item, "", limits) for key, item in value.items()}, limits)
    if isinstance(value, Sequence):
        element = _element_type(type_name) or ""
        return _whole([json_value(item, element, limits) for item in value], limits)
    return _shorten(str(value), limits)


def _whole(value: list[Any] | dict[str, Any], limits: Limits) -> Any:
    """An array or composite within the cell limit as it is; a longer one as its shortened JSON text."""
    text = _compact_json(value)
    return value if len(text) <= limits.max_cell_chars else _shorten(text, limits)


def _compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _range_text(value: Range) -> str:
    """PostgreSQL's own range syntax: `[1,10)`, `empty`, `["2025-01-01 00:00:00+00",)`."""
    if value.isempty:
        return "empty"
    lower = "" if value.lower_inf or value.lower is None else _range_bound(value.lower)
    upper = "" if value.upper_inf or value.upper is None else _range_bound(value.upper)
    return f"{'[' if value.lower_inc else '('}{lower},{upper}{']' if value.upper_inc else ')'}"


def _decimal_text(value: Decimal) -> str:
    """Positional notation like PostgreSQL prints numeric (`1E+3` would be `1000`), scale kept."""
    return format(value, "f")


def _range_bound(bound: Any) -> str:
    text = _decimal_text(bound) if isinstance(bound, Decimal) else str(bound)
    if text == "" or re.search(r'[\s,()\[\]"\\]', text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def _infinity(value: float) -> str:
    return "Infinity" if value > 0 else "-Infinity"


def _shorten(text: str, limits: Limits) -> str:
    if len(text) <= limits.max_cell_chars:
        return text
    return f"{text[: limits.max_cell_chars]}…[cut: {len(text):,} chars in all]"


def _bytea(data: bytes, limits: Limits) -> str:
    shown = bytea_bytes_shown(limits.max_cell_chars)
    hex_text = "\\x" + data[:shown].hex()
    return hex_text if len(data) <= shown else f"{hex_text}…[cut: {len(data):,} bytes in all]"


def _parse_json(text: str, limits: Limits) -> Any:
    """Parse json/jsonb text, keeping numbers that a float would change as their exact text."""
    if len(text) > limits.max_cell_chars:
        return _shorten(text, limits)
    if nests_deeper_than(text, MAX_JSON_DEPTH):  # clients cannot serialise such a value back: keep its text
        return f"{text}…[nested more than {MAX_JSON_DEPTH} levels deep: kept as JSON text]"
    try:
        return json.loads(text, parse_float=_exact_float, parse_int=_exact_int)
    except ValueError:
        return text


#: json/jsonb nested deeper than this is returned as its text: JSON serialisers stop near 250 levels.
MAX_JSON_DEPTH = 64


def _exact_float(text: str) -> float | str:
    as_float = float(text)
    try:
        same = math.isfinite(as_float) and Decimal(repr(as_float)) == Decimal(text)
    except InvalidOperation:
        same = False
    return as_float if same else text


def _exact_int(text: str) -> int | str:
    number = int(text)
    return number if abs(number) <= MAX_SAFE_INTEGER else text


def text_cell(value: Any) -> str:
    """One cell of the text table; `value` is already JSON-safe."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if value == "" or value == "NULL" or _NEEDS_QUOTES.search(value):
            return json.dumps(value, ensure_ascii=False)
        return value
    if isinstance(value, int | float):
        return str(value)
    return _compact_json(value)


def parse_pg_array(text: str) -> list[str | None]:
    """Elements of a one-dimensional PostgreSQL array literal such as `{a,"b c",NULL}`."""
    body = text.strip()
    if not (body.startswith("{") and body.endswith("}")):
        return [text]
    items: list[str | None] = []
    current: list[str] = []
    quoted = in_quotes = False
    i = 1
    while i < len(body) - 1:
        ch = body[i]
        if in_quotes:
            if ch == "\\" and i + 1 < len(body) - 1:
                i += 1
                current.append(body[i])
            elif ch == '"':
                in_quotes = False
            else:
                current.append(ch)
        elif ch == '"':
            in_quotes = quoted = True
        elif ch == ",":
            items.append(_array_item(current, quoted))
            current, quoted = [], False
        else:
            current.append(ch)
        i += 1
    if current or quoted or items:
        items.append(_array_item(current, quoted))
    return items


def _array_item(chars: list[str], quoted: bool) -> str | None:
    value = "".join(chars)
    return None if not quoted and value == "NULL" else value
