"""The SQL guard: decide, without touching the database, whether a statement is a plain read.

The stages (`checking`) read the text with PostgreSQL's own grammar and with sqlglot and apply every
rule; they run in guard worker processes (`pool`, `worker`), so a parse that runs away is stopped by
ending its process, and the server never depends on an exception or a signal landing in whatever
code is running. Accepted verdicts of short statements are kept (a model often sends one again).

Then, at Parse, PostgreSQL itself analyses the accepted statement and `judge_analysis` reads its tree
(`analysed`): which code the statement can reach in this database's catalog, and which columns it
reads, before anything is planned. The plan-based checks (`plan`, `access`) come last, a second layer.
"""

from __future__ import annotations

import asyncio
import weakref
from concurrent.futures import ThreadPoolExecutor

from pg_mcp.errors import GuardError
from pg_mcp.guard import analysed
from pg_mcp.guard.operators import BUILTIN_OPERATORS
from pg_mcp.guard.policy import CheckedQuery, GuardPolicy
from pg_mcp.guard.pool import POOL
from pg_mcp.guard.rules import Rule
from pg_mcp.recent import Recent

__all__ = [
    "BUILTIN_OPERATORS", "CheckedQuery", "GuardPolicy", "Rule", "StaleReach", "check_query", "check_query_async",
    "judge_analysis", "start_workers",
]  # fmt: skip

_DEFAULT_POLICY = GuardPolicy()
#: Large analyses are read here, off the event loop (reading is linear: it cannot run away).
_EXECUTOR = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pg-mcp-analysis")


def check_query(sql: str, max_rows: int, policy: GuardPolicy = _DEFAULT_POLICY) -> CheckedQuery:
    """Accept one read-only statement or raise GuardError; never raises anything else for any input."""
    if max_rows < 1:
        raise ValueError("max_rows must be at least 1")
    return POOL.submit(sql, max_rows, policy).result()


def start_workers() -> None:
    """Start the guard's worker processes now, beside serving, so that the first statement finds them."""
    POOL.start()


#: Accepted verdicts kept for statements sent again (a model often repeats one, changing nothing):
#: the guard is a pure function of (text, row cap, policy), so a kept verdict is the verdict. Only
#: short statements are kept, so the cache holds at most VERDICTS_KEPT x CACHED_STATEMENT_CHARS.
VERDICTS_KEPT = 512
CACHED_STATEMENT_CHARS = 4_096
_verdicts: Recent[tuple[str, int, GuardPolicy], CheckedQuery] = Recent(VERDICTS_KEPT)


async def check_query_async(sql: str, max_rows: int, policy: GuardPolicy) -> CheckedQuery:
    """`check_query` for the event loop: answered within the guard's deadline once a worker takes it."""
    key = (sql, max_rows, policy) if isinstance(sql, str) and len(sql) <= CACHED_STATEMENT_CHARS else None
    if key is not None and (kept := _verdicts.get(key)) is not None:
        return kept
    if max_rows < 1:
        raise ValueError("max_rows must be at least 1")
    checked = await asyncio.wrap_future(POOL.submit(sql, max_rows, policy))
    if key is not None:
        _verdicts.put(key, checked)
    return checked


class StaleReach(Exception):
    """PostgreSQL's analysis names an operator-written object the catalog model has never seen: the
    model must be read again before the statement can be judged."""


#: PostgreSQL's analysis of a statement is read on the event loop up to this size (a few hundred
#: microseconds), on a thread beyond it; past MAX_ANALYSIS_CHARS it is refused unread.
INLINE_ANALYSIS_CHARS = 64_000
MAX_ANALYSIS_CHARS = 16_000_000
#: Trees accepted lately, each with the catalog model that accepted it: a verdict depends on nothing
#: else, and the same statement (an operator's tool, whatever its arguments; a query asked again) gets
#: the same tree, so it is not read again while that model stands. At most this many, each at most
#: INLINE_ANALYSIS_CHARS.
ACCEPTED_TREES_KEPT = 64
_accepted: Recent[tuple[str, bool, bool], weakref.ref[analysed.CatalogReach]] = Recent(ACCEPTED_TREES_KEPT)


async def judge_analysis(
    tree: str, reach: analysed.CatalogReach, *, limits_active: bool, fresh: bool, statistics: bool = False
) -> None:
    """Judge the rewritten parse tree PostgreSQL sent for a statement (pg_mcp.guard.analysed); raises
    GuardError, or StaleReach when `reach` predates an object the tree names and is not `fresh`."""
    if len(tree) > MAX_ANALYSIS_CHARS:
        raise GuardError(
            Rule.TOO_COMPLEX,
            f"PostgreSQL's analysis of the statement is over {MAX_ANALYSIS_CHARS:,} characters (views within "
            "views, or a very long statement), too large to check, so it was not run.",
            "Query fewer or smaller views at once.",
        )
    analysed.check_planning_size(tree.count("{RANGETBLENTRY"))  # before reading it: a count costs nothing
    if len(tree) <= INLINE_ANALYSIS_CHARS:
        key = (tree, limits_active, statistics)
        if (accepted := _accepted.get(key)) is not None and accepted() is reach:
            return
        _judge(tree, reach, limits_active, fresh, statistics)
        _accepted.put(key, weakref.ref(reach))
    else:
        await asyncio.get_running_loop().run_in_executor(
            _EXECUTOR, _judge, tree, reach, limits_active, fresh, statistics
        )


def _judge(
    tree: str, reach: analysed.CatalogReach, limits_active: bool, fresh: bool, statistics: bool
) -> None:
    try:
        statement = analysed.analyse(tree)
        _judge_statement(statement, reach, limits_active, fresh, statistics)
    except RecursionError:
        raise GuardError(
            Rule.TOO_DEEP,
            "The statement nests queries and views too deeply to be checked, so it was not run.",
            "Query the tables or views nearer the data, or flatten the query with WITH clauses.",
        ) from None


def _judge_statement(
    statement: analysed.AnalysedStatement,
    reach: analysed.CatalogReach,
    limits_active: bool,
    fresh: bool,
    statistics: bool,
) -> None:
    if reach.is_stale_for(statement.oids()):
        if not fresh:
            raise StaleReach
        raise GuardError(
            Rule.ANALYSIS,
            "The statement uses an object created while it was being checked, so it was not run.",
            "Send it again.",
        )
    analysed.check(statement, reach, limits_active=limits_active, statistics=statistics)
