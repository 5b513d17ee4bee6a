"""The guard's rule ids: the name a refusal carries, in audit lines and in the client's error."""

from __future__ import annotations

from enum import StrEnum


class Rule(StrEnum):
    """One id per rule; a refusal names exactly one."""

    ENCODING = "encoding"
    TOO_LONG = "too_long"
    CONTROL_CHARACTERS = "control_characters"
    EMPTY = "empty"
    SYNTAX = "syntax"
    PARSE = "parse"
    TOO_DEEP = "too_deep"
    TOO_COMPLEX = "too_complex"
    MULTIPLE_STATEMENTS = "multiple_statements"
    NOT_READ_ONLY = "not_read_only"
    WRITE_IN_QUERY = "write_in_query"
    SELECT_INTO = "select_into"
    ROW_LOCK = "row_lock"
    SYNTAX_NOT_ALLOWED = "syntax_not_allowed"
    UNICODE_WHITESPACE = "unicode_whitespace"
    UNICODE_ESCAPE = "unicode_escape"
    OPERATOR = "operator"
    FUNCTION_NOT_ALLOWED = "function_not_allowed"
    USER_DEFINED = "user_defined"
    SECRET = "secret"
    SETTING = "setting"
    AMPLIFIER = "amplifier"
    UNINTERRUPTIBLE = "uninterruptible"
    TABLE_NOT_ALLOWED = "table_not_allowed"
    HIDDEN_COLUMN = "hidden_column"
    CATALOG_TEXT = "catalog_text"
    ANALYSIS = "analysis"
    COST_BUDGET = "cost_budget"
    ROW_BUDGET = "row_budget"
