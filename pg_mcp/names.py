"""Parsing and quoting PostgreSQL identifiers (pure, no I/O): tool arguments, and the dotted names
an operator writes in settings.

Names are only ever compared with catalog values passed as query parameters; nothing here
produces SQL that is executed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pg_mcp.errors import NotFoundError

MAX_NAME_LENGTH = 400
_SIMPLE = re.compile(r"[a-z_][a-z0-9_$]*")
#: PostgreSQL's reserved key words: as identifiers they must be quoted.
_RESERVED = frozenset(
    [
        "all",
        "analyse",
        "analyze",
        "and",
        "any",
        "array",
        "as",
        "asc",
        "asymmetric",
        "authorization",
        "binary",
        "both",
        "case",
        "cast",
        "check",
        "collate",
        "collation",
        "column",
        "concurrently",
        "constraint",
        "create",
        "cross",
        "current_catalog",
        "current_date",
        "current_role",
        "current_schema",
        "current_time",
        "current_timestamp",
        "current_user",
        "default",
        "deferrable",
        "desc",
        "distinct",
        "do",
        "else",
        "end",
        "except",
        "false",
        "fetch",
        "for",
        "foreign",
        "freeze",
        "from",
        "full",
        "grant",
        "group",
        "having",
        "ilike",
        "in",
        "initially",
        "inner",
        "intersect",
        "into",
        "is",
        "isnull",
        "join",
        "lateral",
        "leading",
        "left",
        "like",
        "limit",
        "localtime",
        "localtimestamp",
        "natural",
        "not",
        "notnull",
        "null",
        "offset",
        "on",
        "only",
        "or",
        "order",
        "outer",
        "overlaps",
        "placing",
        "primary",
        "references",
        "returning",
        "right",
        "select",
        "session_user",
        "similar",
        "some",
        "symmetric",
        "system_user",
        "table",
        "tablesample",
        "then",
        "to",
        "trailing",
        "true",
        "union",
        "unique",
        "user",
        "using",
        "variadic",
        "verbose",
        "when",
        "where",
        "window",
        "with",
    ]
)


@dataclass(frozen=True)
class NamePart:
    """One identifier: its text as PostgreSQL would store it, and whether it was quoted."""

    text: str
    quoted: bool


def parse_qualified_name(value: str) -> list[NamePart]:
    """Split `schema.table`, `"Mixed Case"` or `sales."Gift Cards"` into parts, folding unquoted ones.

    Unquoted parts fold to lower case like PostgreSQL does; the caller may still fall back to a
    case-insensitive match so a model that forgot the quotes gets the table it meant.
    """
    text = value.strip()
    if not text or len(text) > MAX_NAME_LENGTH or any(ord(ch) < 32 for ch in text):
        raise NotFoundError(
            f"{value[:80]!r} is not a valid table name.",
            'Give a name like orders, sales.orders or "Gift Cards".',
        )
    parts: list[NamePart] = []
    i = 0
    while i < len(text):
        if text[i] == '"':
            end = i + 1
            chunk = []
            while True:
                close = text.find('"', end)
                if close == -1:
                    raise NotFoundError(f"Unterminated quoted name in {value!r}.", 'Close the quote: "Name".')
                chunk.append(text[end:close])
                if close + 1 < len(text) and text[close + 1] == '"':
                    chunk.append('"')
                    end = close + 2
                    continue
                i = close + 1
                break
            parts.append(NamePart("".join(chunk), quoted=True))
        else:
            dot = text.find(".", i)
            end = len(text) if dot == -1 else dot
            raw = text[i:end].strip()
            parts.append(NamePart(raw.lower(), quoted=False))
            i = end
        if i < len(text):
            if text[i] != ".":
                raise NotFoundError(f"Unexpected text after a quoted name in {value!r}.", "Use schema.table.")
            i += 1
            if i == len(text):
                raise NotFoundError(f"{value!r} ends with a dot.", "Use schema.table.")
    if len(parts) > 2 or any(not part.text for part in parts):
        raise NotFoundError(f"{value!r} is not a table name.", "Use table or schema.table.")
    return parts


def setting_parts(entry: str) -> tuple[str, ...]:
    """The parts of a dotted name in a setting (`sales.orders`, `hr.employees.salary`, `my_schema.fn`),
    each without surrounding blanks or double quotes.

    Unlike `parse_qualified_name` (what a model writes, folded as PostgreSQL folds it), case is kept: an
    operator names objects as the catalog spells them (`B.t_001` is schema "B"). A part holds no dot.
    """
    return tuple(part.strip().strip('"') for part in entry.split("."))


def table_setting(entry: str) -> tuple[str, str]:
    """`schema.table`, or `schema.*` for every table of the schema (PG_MCP_TABLES); ValueError otherwise."""
    parts = setting_parts(entry)
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"{entry!r} is not schema.table or schema.*")
    return parts[0], parts[1]


def column_setting(entry: str) -> tuple[str, str, str]:
    """`schema.table.column`, or `table.column` for that table in any schema (schema `*`), as
    PG_MCP_HIDDEN_COLUMNS lists them; ValueError otherwise."""
    parts = setting_parts(entry)
    if len(parts) == 2:
        parts = ("*", *parts)
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"{entry!r} is not schema.table.column or table.column")
    return parts[0], parts[1], parts[2]


def function_setting(entry: str) -> str:
    """`name` or `schema.name` as PG_MCP_ALLOW_FUNCTIONS lists it, in the one spelling every reader
    compares: lowercase, without blanks or quotes around its parts."""
    return ".".join(setting_parts(entry)).lower()


def quote_ident(name: str) -> str:
    """Quote an identifier only when PostgreSQL needs it (for display in text output)."""
    if _SIMPLE.fullmatch(name) and name not in _RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"
