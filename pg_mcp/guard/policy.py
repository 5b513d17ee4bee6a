"""What the guard is told: the operator's configuration and names read from the database."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class GuardPolicy:
    """Operator limits and extra functions they vouch for, plus what the database defines itself.

    The database-derived sets are None when unknown (pure unit tests); the server always loads them.
    """

    max_sql_length: int = 100_000
    allowed_functions: frozenset[str] = field(default_factory=frozenset)
    max_parse_seconds: float = 2.0
    allowed_secrets: frozenset[str] = field(default_factory=frozenset)
    one_arg_functions: frozenset[str] | None = None
    """Names of the database's functions callable with one argument, which `(expr).name` may call.
    None when unknown: then a field selection is accepted only if its name is an allowed function."""
    row_functions: frozenset[str] = field(default_factory=frozenset)
    """Names of functions callable with one row argument, which `alias.name` may call."""
    parameters: int = 0
    """How many `$n` parameters the statement may use: an operator's tool declares them (their values
    are bound, never spliced into the text); a caller's own SQL has none."""


@dataclass(frozen=True)
class CheckedQuery:
    """A statement the guard accepted, and the bounded SQL the database layer executes."""

    statement: str
    sql: str
    """What runs: returns at most max_rows + 1 rows (the guard's `LIMIT`, or a plan's one row)."""
    max_rows: int
    cap_cells: bool = True
    """Whether the database cuts big values (off for statements that must arrive whole, like a plan)."""
    statistics_of: tuple[tuple[str, str, tuple[str, ...] | None], ...] | None = None
    """The tables (schema, name, columns or None for all) whose planner statistics (pg_stats) are all
    the statement reads of them, when it is proven (pg_mcp.guard.catalog_rows)."""
    recursion: tuple[tuple[str, float | None], ...] = ()
    """Each recursive CTE the data does not bound, with the iterations its text allows (None: any
    number; pg_mcp.guard.recursion): the row budget's reading of what the planner only guesses."""
    harmless_settings: bool = False
    """The statement reads pg_settings only for harmless settings (pg_mcp.guard.catalog_rows): its plan
    may scan pg_show_all_settings()."""
