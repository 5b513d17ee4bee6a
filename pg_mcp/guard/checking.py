"""The guard's stages over one statement: `STAGES`, run in order (each a pure function of a `Reading`,
returning it with what it adds; the first refusal wins). Adding a stage is adding one entry.

1. `read_input`: type, length, encoding, control characters (linear, before any parsing).
2. `read_with_postgres`: PostgreSQL's own lexer and grammar (libpg_query, `postgres_reading`) read
   the text, and every rule is applied to that tree.
3. `read_with_sqlglot`: sqlglot's reading of the same text (`sqlglot_reading`), a second opinion
   that can only add refusals (it knows PostgreSQL's field-selection calls, keyword-named functions
   and more).
4. `check_wrapping`: the bounded statement is built from the caller's own text and read again by
   PostgreSQL's parser, which must find exactly the caller's statement inside: what runs is what was
   checked.

These run in a guard worker process (`pg_mcp.guard.worker`), never in the server's: a parse that runs
away is stopped by ending its process.

Why sqlglot's reading stays, measured with `benchmarks/bench_guard_layers.py`:
- Over the 1,599 statements of the attack corpora, PostgreSQL's reading refuses 1,597. sqlglot's
  refuses 1,511, and only 2 that PostgreSQL's accepted, both on its own parser limits (nesting depth
  and subscript chains), not on a safety rule.
- It costs most of the readings' CPU: p50 0.073 ms against 0.034 ms per statement, 267 ms against 81 ms
  over the corpora.
- It stays as an independent second opinion on a different grammar, which can only add refusals.
  What the server actually judges is PostgreSQL's own analysis (`pg_mcp.guard.analysed`). Since it
  runs here, in a worker process with a deadline, it can cost time but never wedge the server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeAlias

from pg_mcp.errors import GuardError
from pg_mcp.guard.catalog_rows import statistics_read
from pg_mcp.guard.input import check_input
from pg_mcp.guard.policy import CheckedQuery, GuardPolicy
from pg_mcp.guard.recursion import recursion_bounds
from pg_mcp.guard.rules import Rule

#: What precedes the caller's statement in the bounded one. The caller's text is first read indented
#: by as many bytes, so its tree and the subquery's are equal, byte offsets and all, when they mean
#: the same.
_WRAP_PREFIX = "SELECT * FROM (\n"
_INDENT = len(_WRAP_PREFIX.encode())


@dataclass(frozen=True)
class Reading:
    """What the stages know of one statement so far: each stage returns it with what it adds."""

    sql: object
    max_rows: int
    policy: GuardPolicy
    text: str = ""
    """The caller's text, once its input is checked."""
    tree: dict[str, Any] = field(default_factory=dict)
    """PostgreSQL's tree of the statement (libpg_query's `stmt`)."""
    statement: str = ""
    """The statement as PostgreSQL delimited it: without the trailing `;` and what follows."""
    harmless_settings: bool = False
    """The statement reads pg_settings only for harmless settings (pg_mcp.guard.catalog_rows)."""
    wrapped: str = ""
    """The bounded statement: the caller's in a subquery, with the row cap."""


Stage: TypeAlias = Callable[[Reading], Reading]


def load_parsers() -> None:
    """Import both readings (libpg_query and sqlglot): a worker does it before it says it is ready."""
    from pg_mcp.guard import postgres_reading, sqlglot_reading  # noqa: F401


def verdict(sql: object, max_rows: int, policy: GuardPolicy) -> CheckedQuery:
    """Every stage, with every failure turned into a refusal (fail closed)."""
    if max_rows < 1:
        raise ValueError("max_rows must be at least 1")
    try:
        return _check(sql, max_rows, policy)
    except GuardError:
        raise
    except RecursionError:
        raise GuardError(
            Rule.TOO_DEEP,
            "The statement nests expressions too deeply to be analysed, so it was refused.",
            "Flatten the query, for example with WITH clauses or fewer chained operators.",
        ) from None
    except Exception as error:  # MemoryError and parser bugs alike
        raise GuardError(
            Rule.PARSE,
            f"The statement could not be analysed ({type(error).__name__}), so it was refused.",
            "Simplify the query: less nesting, fewer terms.",
        ) from None


def _check(sql: object, max_rows: int, policy: GuardPolicy) -> CheckedQuery:
    """Every stage in order, then what the accepted statement is known to do."""
    reading = Reading(sql, max_rows, policy)
    for stage in STAGES:
        reading = stage(reading)
    return _checked(reading)


def _checked(reading: Reading) -> CheckedQuery:
    """The statement, its bounded wrapper, the catalog rows it is proven to read
    (pg_mcp.guard.catalog_rows) and how often its recursive CTEs can recurse (pg_mcp.guard.recursion)."""
    return CheckedQuery(
        reading.statement,
        reading.wrapped,
        reading.max_rows,
        harmless_settings=reading.harmless_settings,
        statistics_of=statistics_read(reading.tree),
        recursion=recursion_bounds(reading.tree),
    )


# --- the stages (STAGES) ---------------------------------------------------------------------
# The readings are imported where they run (and by `load_parsers`, before a worker says it is ready):
# importing this module loads neither parser.


def read_input(reading: Reading) -> Reading:
    """The text's bounds, checked before any parser reads it."""
    return replace(reading, text=check_input(reading.sql, reading.policy))


def read_with_postgres(reading: Reading) -> Reading:
    """PostgreSQL's grammar reads one statement, and every rule is applied to its tree."""
    from pg_mcp.guard import postgres_reading

    entry = postgres_reading.parse(reading.text, indent=_INDENT)
    harmless_settings = postgres_reading.check(entry["stmt"], reading.policy)
    return replace(
        reading,
        tree=entry["stmt"],
        statement=_statement_text(reading.text, entry),
        harmless_settings=harmless_settings,
    )


def read_with_sqlglot(reading: Reading) -> Reading:
    """sqlglot's reading of the statement: a second opinion, which can only refuse."""
    from pg_mcp.guard import sqlglot_reading

    sqlglot_reading.check(reading.statement, reading.policy)
    return reading


def check_wrapping(reading: Reading) -> Reading:
    """PostgreSQL must read the bounded statement as exactly the caller's statement in a subquery."""
    from pg_mcp.guard import postgres_reading

    wrapped = f"{_WRAP_PREFIX}{reading.statement}\n) AS pg_mcp_result LIMIT {reading.max_rows + 1}"
    outer = postgres_reading.parse(wrapped)["stmt"]
    from_clause = outer.get("SelectStmt", {}).get("fromClause", [])
    subquery = from_clause[0].get("RangeSubselect", {}).get("subquery") if len(from_clause) == 1 else None
    if subquery is None or subquery != reading.tree:
        raise GuardError(
            Rule.SYNTAX,
            "The statement does not stand on its own inside a subquery, so it cannot be bounded.",
            "Send one complete SELECT statement.",
        )
    return replace(reading, wrapped=wrapped)


#: The stages, in order: each takes what the ones before it found.
STAGES: tuple[Stage, ...] = (read_input, read_with_postgres, read_with_sqlglot, check_wrapping)


def _statement_text(text: str, entry: dict[str, Any]) -> str:
    """The caller's statement as PostgreSQL delimited it: without the trailing `;` and what follows."""
    raw = text.encode()  # leading comments stay: they are the caller's, and harmless
    end = int(entry.get("stmt_location", 0)) + int(entry.get("stmt_len", 0)) - _INDENT  # read indented
    return (raw[:end] if entry.get("stmt_len") else raw).decode()
