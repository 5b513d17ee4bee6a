"""Bounds checked before any parsing: type, encoding, length, control characters, emptiness."""

from __future__ import annotations

import re

from pg_mcp.errors import GuardError
from pg_mcp.guard.policy import GuardPolicy
from pg_mcp.guard.rules import Rule

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def check_input(sql: object, policy: GuardPolicy) -> str:
    """The text to parse, or a refusal; linear in the input."""
    if not isinstance(sql, str):
        raise GuardError(Rule.ENCODING, "The SQL must be text.", "Send the query as a string.")
    if len(sql) > policy.max_sql_length:
        raise GuardError(
            Rule.TOO_LONG,
            f"The SQL is {len(sql)} characters long; the limit is {policy.max_sql_length}.",
            "Send a shorter query.",
        )
    try:
        sql.encode("utf-8")
    except UnicodeEncodeError:
        raise GuardError(
            Rule.ENCODING,
            "The SQL contains characters that cannot be encoded as UTF-8 (lone surrogates).",
            "Send valid Unicode text.",
        ) from None
    if _CONTROL_CHARACTERS.search(sql):
        raise GuardError(
            Rule.CONTROL_CHARACTERS,
            "The SQL contains a NUL byte or another control character.",
            "Remove control characters; only tab, carriage return and newline are accepted.",
        )
    if not sql.strip():
        raise GuardError(Rule.EMPTY, "The SQL is empty or only comments.", "Send a SELECT statement.")
    return sql
