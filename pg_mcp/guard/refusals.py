"""The refusals both readings of a statement make (`postgres_reading`, `sqlglot_reading`), worded once:
whichever reading meets a rule first, the caller reads the same refusal."""

from __future__ import annotations

from collections.abc import Callable

from pg_mcp.errors import GuardError
from pg_mcp.guard.functions import is_function_allowed
from pg_mcp.guard.policy import GuardPolicy
from pg_mcp.guard.rules import Rule

READ_ONLY_HINT = "Only reads are accepted: SELECT, WITH ... SELECT, VALUES and TABLE."
FUNCTION_HINT = "Use built-in read-only functions; an operator can allow more with PG_MCP_ALLOW_FUNCTIONS."


def empty() -> GuardError:
    return GuardError(Rule.EMPTY, "The SQL is empty or only comments.", "Send a SELECT statement.")


def multiple_statements() -> GuardError:
    return GuardError(
        Rule.MULTIPLE_STATEMENTS,
        "The SQL contains more than one statement.",
        "Send one SELECT statement per call.",
    )


def syntax(where: str, description: str) -> GuardError:
    """A parser could not read the text; `where` is " at line L, column C" or empty."""
    return GuardError(
        Rule.SYNTAX,
        f"The SQL could not be parsed{where}: {description}.",
        "Check the syntax near that position (PostgreSQL dialect).",
    )


def not_read_only(shown: str, detail: str | None = None) -> GuardError:
    """The statement itself is not a read: `shown` names it as written (DELETE, SET ...)."""
    also = f" ({detail})" if detail else ""
    return GuardError(
        Rule.NOT_READ_ONLY,
        f"{shown} statements are not allowed: this server is read-only{also}.",
        READ_ONLY_HINT,
    )


def write_in_query(word: str) -> GuardError:
    """A statement inside a read (a data-modifying CTE): `word` is INSERT, DELETE ..."""
    return GuardError(
        Rule.WRITE_IN_QUERY,
        f"The query contains a {word} statement: this server is read-only.",
        "Remove the data-modifying part (for example a WITH ... DELETE); only reads are accepted.",
    )


def select_into() -> GuardError:
    return GuardError(
        Rule.SELECT_INTO,
        "SELECT ... INTO creates a table: this server is read-only.",
        "Drop the INTO clause to get the rows back instead.",
    )


def row_lock() -> GuardError:
    return GuardError(
        Rule.ROW_LOCK,
        "FOR UPDATE / FOR SHARE locks rows: this server is read-only.",
        "Drop the locking clause.",
    )


def too_deep(what: str, limit: int) -> GuardError:
    """Nesting past a reading's bound: `what` is what nests (queries, parentheses)."""
    return GuardError(
        Rule.TOO_DEEP,
        f"The SQL nests {what} more than {limit} levels deep.",
        "Flatten the query, for example with WITH clauses.",
    )


def operator_not_builtin(operator: str) -> GuardError:
    return GuardError(
        Rule.OPERATOR,
        f"The operator {operator} is not one of PostgreSQL's built-in operators; a user-defined "
        "operator runs a function the guard cannot check.",
        "Use built-in operators, or the equivalent built-in function.",
    )


def operator_outside_catalog(shown: str) -> GuardError:
    """OPERATOR(schema.op) with another schema than pg_catalog; `shown` is what is inside the parentheses."""
    return GuardError(
        Rule.OPERATOR,
        f"OPERATOR({shown}) names an operator outside pg_catalog, which runs a function the "
        "guard cannot check.",
        "Write the built-in operator plainly, e.g. a + b, or OPERATOR(pg_catalog.+).",
    )


def tablesample_method(shown: str) -> GuardError:
    """A TABLESAMPLE method is a function: only the built-in SYSTEM and BERNOULLI are accepted."""
    return GuardError(
        Rule.FUNCTION_NOT_ALLOWED,
        f"The TABLESAMPLE method {shown} is not allowed.",
        "Use TABLESAMPLE SYSTEM (pct) or BERNOULLI (pct).",
    )


def function_not_allowed(name: str, reason: str) -> GuardError:
    return GuardError(
        Rule.FUNCTION_NOT_ALLOWED, f"The function {name}() is not allowed: {reason}.", FUNCTION_HINT
    )


def check_function(name: str, schema: str | None, policy: GuardPolicy) -> None:
    """A call of `schema.name` (or plain `name`) must be allowed, by the allowlist or the operator."""
    allowed, reason = is_function_allowed(name, schema, policy.allowed_functions)
    if not allowed:
        shown = f"{schema}.{name}" if schema else name
        raise function_not_allowed(shown, reason or "it is not allowed")


def check_field_selection(name: str, policy: GuardPolicy) -> None:
    """`(expr).name` calls `name(expr)` in PostgreSQL when no such field exists: a function the
    database could call so must be allowed (with the database's names unknown, any name must be)."""
    known = policy.one_arg_functions
    if _allowed(name, policy) or (known is not None and name not in known):
        return
    raise GuardError(
        Rule.FUNCTION_NOT_ALLOWED,
        f"The field selection (...).{name} can call the function {name}(), which is not allowed"
        if known is not None
        else f"The field selection (...).{name} cannot be checked: PostgreSQL may read it as a call of {name}().",
        "Select the field another way (e.g. from a subquery or with ->> for json), or drop it.",
    )


def check_row_function(name: str, policy: GuardPolicy, written: Callable[[], str]) -> None:
    """`alias.name` calls `name(alias)` on the whole row when the row has no such column; `written`
    gives the reference as the caller wrote it, for the refusal only."""
    if name in policy.row_functions and not _allowed(name, policy):
        raise GuardError(
            Rule.FUNCTION_NOT_ALLOWED,
            f"{written()} can call the function {name}() on the whole row, and that function is not allowed.",
            "If it is a column, select it through a subquery that names it without a table prefix.",
        )


def _allowed(name: str, policy: GuardPolicy) -> bool:
    return is_function_allowed(name, None, policy.allowed_functions)[0]
