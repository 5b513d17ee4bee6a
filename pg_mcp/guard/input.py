"""Bounds checked before any parsing: type, encoding, length, control characters, emptiness."""

from __future__ import annotations

import re

from pg_mcp.errors import GuardError
from pg_mcp.guard.policy import GuardPolicy
from pg_mcp.guard.rules import Rule

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
#: PostgreSQL's own lexer takes time quadratic in comment nesting and in the length of a run of
#: operator characters; beyond these sizes (far above any real query) the text is refused unread.
MAX_COMMENT_OPENERS = 2_000
MAX_OPERATOR_RUN = 2_000
_LONG_OPERATOR_RUN = re.compile(rf"[-+*/<>=~!@#%^&|`?]{{{MAX_OPERATOR_RUN + 1},}}")


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
    if sql.count("/*") > MAX_COMMENT_OPENERS or _LONG_OPERATOR_RUN.search(sql):
        raise GuardError(
            Rule.TOO_COMPLEX,
            f"The SQL has more than {MAX_COMMENT_OPENERS:,} block-comment openers or a run of more than "
            f"{MAX_OPERATOR_RUN:,} operator characters, which takes PostgreSQL's lexer too long to read.",
            "Remove the long comments or the run of symbols.",
        )
    if not sql.strip():
        raise GuardError(Rule.EMPTY, "The SQL is empty or only comments.", "Send a SELECT statement.")
    return sql
