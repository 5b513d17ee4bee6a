"""Big values cut by the database itself: the wrapper that sends at most a prefix of each long value
and its full length, so neither this process nor the wire ever carries a whole huge value."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from pg_mcp.recent import Recent

#: A value's text, from its type's output function: `::text` would run a cast to text, which the
#: database's owner may have written (`CREATE CAST (... AS text) WITH FUNCTION ...`).
TEXT_OF = "pg_catalog.format('%s', {})"

#: Types whose values are small and fixed in size; every other column's values are capped on the server.
SMALL_TYPES = frozenset(
    {
        "int2", "int4", "int8", "float4", "float8", "bool", "char", "date", "time", "timetz", "timestamp",
        "timestamptz", "interval", "uuid", "oid", "money", "macaddr", "macaddr8", "inet", "cidr", "point",
        "line", "lseg", "box", "circle",
    }
)  # fmt: skip


#: A value is cut by the database when its text is over max_cell_chars characters or over this many
#: bytes per allowed character. Two, not four: four bytes per character (the UTF-8 maximum) would
#: let 1,000 emoji through as 4,000 bytes, so a row of 550 such cells would be 2.2 MB.
CELL_BYTES_PER_CHAR = 2


#: What `_approx_bytes` counts for a number, boolean or NULL: about its text in the rendered row.
SCALAR_BYTES = 8


@dataclass(frozen=True)
class CutValue:
    """A value too big to fetch: the start of its text and its full length, cut by the database."""

    prefix: str
    total: int
    unit: str  # "bytes" for bytea, "chars" for everything else


#: Wrappers made lately, for a statement run again (the same text gets the same columns, mostly): a
#: wrapper is a function of the text, the column types and the cell limit alone. At most this many,
#: each of a statement at most KEPT_STATEMENT_CHARS long.
WRAPPERS_KEPT = 64
KEPT_STATEMENT_CHARS = 16_384
_made: Recent[tuple[str, tuple[str, ...], int], tuple[str, tuple[str | None, ...]]] = Recent(WRAPPERS_KEPT)


def cell_capped(sql: str, attributes: Any, max_chars: int) -> tuple[str, tuple[str | None, ...]] | None:
    """`sql` wrapped so that a value whose text is too long arrives as the start of its text and its
    length: the cut the renderer makes, made before the value is sent.

    Too long means over `max_chars` characters or over CELL_BYTES_PER_CHAR x `max_chars` bytes,
    so a cell costs at most that many bytes whatever its characters. Each column keeps its place,
    holding its value when it fits and NULL otherwise; one last column, a text array with an entry
    per column of variable size, holds `length:start` for each value that was cut. So the wrapper
    adds one column, whatever the width (PostgreSQL allows 1,664). Each value is converted to text
    once, in an inner query that `OFFSET 0` keeps from being merged into the outer one, unless
    that inner query would itself be too wide; bytea is measured and cut as bytes, never converted
    whole. Returns the SQL and, per original column, the unit of its length (None for a column
    passed through), or None when every column is small.
    """
    key = (sql, tuple(a.type.name for a in attributes), max_chars)
    made = _made.get(key)
    if made is None:
        made = _wrapped(sql, key[1], max_chars)
        if made is not None and len(sql) <= KEPT_STATEMENT_CHARS:
            _made.put(key, made)
    return made


def _wrapped(
    sql: str, type_names: tuple[str, ...], max_chars: int
) -> tuple[str, tuple[str | None, ...]] | None:
    units = tuple(
        None if name in SMALL_TYPES else ("bytes" if name == "bytea" else "chars") for name in type_names
    )
    if not any(units):
        return None
    names = [f"c{i}" for i in range(len(units))]
    inline = len(names) + units.count("chars") > MAX_TARGET_COLUMNS
    shown_bytes = bytea_bytes_shown(max_chars)
    max_bytes = CELL_BYTES_PER_CHAR * max_chars
    inner, selects, cuts = list(names), [], []
    for name, unit in zip(names, units, strict=True):
        if unit is None:
            selects.append(name)
            continue
        if unit == "bytes":  # shown as hex: \x and two characters per byte; its length costs nothing
            length = f"pg_catalog.octet_length({name})"
            big = f"{length} > {shown_bytes}"
            shown = f"'\\x' || pg_catalog.encode(pg_catalog.substring({name}, 1, {shown_bytes}), 'hex')"
        else:  # octet_length first: it is free even for a toasted value, char_length is not
            text = f"{TEXT_OF.format(name)}" if inline else f"t_{name}"
            if not inline:
                inner.append(f"{TEXT_OF.format(name)} AS {text}")
            length = f"pg_catalog.char_length({text})"
            big = f"CASE WHEN pg_catalog.octet_length({text}) > {max_bytes} THEN true ELSE {length} > {max_chars} END"
            # max_chars characters unless they pass the byte limit; then half as many, at most 4 bytes each
            start = f"pg_catalog.substr({text}, 1, {max_chars})"
            shown = (
                f"CASE WHEN pg_catalog.octet_length({start}) <= {max_bytes} THEN {start} "
                f"ELSE pg_catalog.substr({text}, 1, {max(1, max_bytes // 4)}) END"
            )
        selects.append(f"CASE WHEN {big} THEN NULL ELSE {name} END")
        cuts.append(f"CASE WHEN {big} THEN pg_catalog.format('%s:%s', {length}, {shown}) END")
    selects.append(f"ARRAY[{', '.join(cuts)}]::pg_catalog.text[]")
    source = f"(\n{sql}\n) AS pg_mcp_cells({', '.join(names)})"
    if not inline:
        source = f"(SELECT {', '.join(inner)} FROM {source} OFFSET 0) AS pg_mcp_text"
    return f"SELECT {', '.join(selects)} FROM {source}", units


def pg_type_name(name: str) -> str:
    """PostgreSQL's own type name: asyncpg calls the built-in array types `int4[]`, PostgreSQL `_int4`."""
    return "_" + name.removesuffix("[]") if name.endswith("[]") else name


def bytea_bytes_shown(max_chars: int) -> int:
    """Bytes of a bytea value shown within `max_chars` characters of hex (`\\x` and two per byte)."""
    return max(1, max_chars // 2 - 1)


def uncap(record: asyncpg.Record, units: Sequence[str | None]) -> tuple[Any, ...]:
    """One row of the original columns from a `_cell_capped` row; cut values become CutValue."""
    cuts = iter(record[len(units)])
    values: list[Any] = []
    for position, unit in enumerate(units):
        value = record[position]
        if unit is not None:
            cut = next(cuts)
            if cut is not None:
                total, _, prefix = cut.partition(":")
                value = CutValue(prefix, int(total), unit)
        values.append(value)
    return tuple(values)


#: Columns a wrapper's target list may hold: PostgreSQL allows 1,664, and the wrapper adds one.
MAX_TARGET_COLUMNS = 1_600
