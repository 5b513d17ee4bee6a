"""The SQL guard: decide, without touching the database, whether a statement is a plain read.

Stages, in order (each a pure function; the first refusal wins):

1. `input`: type, length, encoding, control characters (linear, before any parsing).
2. `postgres_reading`: PostgreSQL's own lexer and grammar (libpg_query) read the text, and every
   rule is applied to that tree. This is the verdict: nothing PostgreSQL will run can hide from it.
3. `sqlglot_reading`: sqlglot's reading of the same text, a second opinion that can only add
   refusals (it knows PostgreSQL's field-selection calls, keyword-named functions and more).
4. The bounded statement is built from the caller's own text and read again by PostgreSQL's
   parser, which must find exactly the caller's statement inside: what runs is what was checked.

Everything runs under one deadline. `check_query_async` checks a short statement on the event
loop's thread for at most INLINE_SECONDS, and on a worker thread when that is not enough, so that
no statement can hold up other calls for longer. The plan-based checks (`plan`) come after the database has
planned the statement; they never run for a statement these stages refused, so planning (which
folds constant expressions) only ever sees statements whose amplifying calls are bounded.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pg_mcp.errors import GuardError
from pg_mcp.guard import analysed, watchdog
from pg_mcp.guard.input import check_input
from pg_mcp.guard.operators import BUILTIN_OPERATORS
from pg_mcp.guard.policy import CheckedQuery, GuardPolicy
from pg_mcp.guard.rules import Rule

__all__ = [
    "BUILTIN_OPERATORS", "CheckedQuery", "GuardPolicy", "Rule", "StaleReach", "check_query", "check_query_async",
    "judge_analysis", "load_parsers",
]  # fmt: skip

#: Guard runs at once on worker threads; more calls wait their turn instead of crowding the event
#: loop's thread.
GUARD_WORKERS = 2
#: A short statement is first checked on the event loop's own thread, for at most this long (a few
#: hundred microseconds is usual): handing it to a worker costs more than checking it, in thread
#: switches and contention for the interpreter. One that takes longer (sqlglot backtracking, say) is
#: checked again on a worker, so no statement holds the loop for more than this.
INLINE_SECONDS = 0.01
#: Only statements this short are checked on the loop: libpg_query's parse cannot be interrupted (its
#: time grows with the text), and the main thread has the default stack, not the workers' (the text's
#: length bounds how deep its tree can be).
INLINE_STATEMENT_CHARS = 2_000
#: libpg_query's tree of a long operator chain (`a || b || ...`) is deep, and reading it back into
#: Python recurses once per level: allow that (beyond it, the statement is refused as too deep), on
#: worker threads with a stack to match (statements long enough to need it never run on the loop).
_TREE_RECURSION_LIMIT = 20_000
sys.setrecursionlimit(max(sys.getrecursionlimit(), _TREE_RECURSION_LIMIT))
threading.stack_size(64 * 1024 * 1024)
_EXECUTOR = ThreadPoolExecutor(max_workers=GUARD_WORKERS, thread_name_prefix="pg-mcp-guard")


_DEFAULT_POLICY = GuardPolicy()
#: What precedes the caller's statement in the bounded one. The caller's text is first read indented
#: by as many bytes, so its tree and the subquery's are equal, byte offsets and all, when they mean
#: the same.
_WRAP_PREFIX = "SELECT * FROM (\n"
_INDENT = len(_WRAP_PREFIX.encode())


def check_query(sql: str, max_rows: int, policy: GuardPolicy = _DEFAULT_POLICY) -> CheckedQuery:
    """Accept one read-only statement or raise GuardError; never raises anything else for any input."""
    deadline = time.monotonic() + policy.max_parse_seconds
    try:
        with watchdog.deadline(deadline):
            return _verdict(sql, max_rows, policy, deadline)
    except watchdog.DeadlinePassed:
        raise _too_complex() from None


def _check_here(sql: str, max_rows: int, policy: GuardPolicy) -> CheckedQuery | None:
    """`check_query` on this (the event loop's) thread for at most INLINE_SECONDS, else None: the
    check is then done again on a worker. So is one whose alarm fired at all, since C code may have
    swallowed the alarm's exception and carried on with a wrong answer."""
    deadline = time.monotonic() + min(INLINE_SECONDS, policy.max_parse_seconds)
    try:
        with watchdog.alarm(deadline) as alarm:
            checked = _verdict(sql, max_rows, policy, deadline)
    except watchdog.DeadlinePassed:
        return None
    except GuardError:
        if alarm.fired:  # a refusal from the block (so `alarm` is bound), maybe a wrong one
            return None
        raise
    return None if alarm.fired else checked


def _verdict(sql: str, max_rows: int, policy: GuardPolicy, deadline: float) -> CheckedQuery:
    """Every stage, with every failure but the deadline's turned into a refusal (fail closed)."""
    if max_rows < 1:
        raise ValueError("max_rows must be at least 1")
    try:
        statement, wrapped = _check(sql, max_rows, policy, deadline)
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
    return CheckedQuery(statement=statement, sql=wrapped, max_rows=max_rows)


#: Accepted verdicts kept for statements sent again (a model often repeats one, changing nothing):
#: the guard is a pure function of (text, row cap, policy), so a kept verdict is the verdict. Only
#: short statements are kept, so the cache holds at most VERDICTS_KEPT x CACHED_STATEMENT_CHARS.
VERDICTS_KEPT = 512
CACHED_STATEMENT_CHARS = 4_096
_verdicts: OrderedDict[tuple[str, int, GuardPolicy], CheckedQuery] = OrderedDict()


async def check_query_async(sql: str, max_rows: int, policy: GuardPolicy) -> CheckedQuery:
    """`check_query` on a worker thread, answered within the guard's deadline whatever the input."""
    key = (sql, max_rows, policy) if isinstance(sql, str) and len(sql) <= CACHED_STATEMENT_CHARS else None
    if key is not None and (kept := _verdicts.get(key)) is not None:
        _verdicts.move_to_end(key)
        return kept
    checked = None
    if isinstance(sql, str) and len(sql) <= INLINE_STATEMENT_CHARS and watchdog.alarm_available():
        checked = _check_here(sql, max_rows, policy)
    if checked is None:
        future = asyncio.get_running_loop().run_in_executor(_EXECUTOR, check_query, sql, max_rows, policy)
        try:
            checked = await asyncio.wait_for(future, timeout=policy.max_parse_seconds + 1.0)
        except TimeoutError:
            raise _too_complex() from None
    if key is not None:
        _verdicts[key] = checked
        if len(_verdicts) > VERDICTS_KEPT:
            _verdicts.popitem(last=False)
    return checked


class StaleReach(Exception):
    """PostgreSQL's analysis names an operator-written object the catalog model has never seen: the
    model must be read again before the statement can be judged."""


#: PostgreSQL's analysis of a statement is read on the event loop up to this size (a few hundred
#: microseconds), on a guard worker beyond it; past MAX_ANALYSIS_CHARS it is refused unread.
INLINE_ANALYSIS_CHARS = 64_000
MAX_ANALYSIS_CHARS = 64_000_000


async def judge_analysis(
    tree: str, reach: analysed.CatalogReach, *, limits_active: bool, fresh: bool
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
    if len(tree) <= INLINE_ANALYSIS_CHARS:
        _judge(tree, reach, limits_active, fresh)
    else:
        await asyncio.get_running_loop().run_in_executor(_EXECUTOR, _judge, tree, reach, limits_active, fresh)


def _judge(tree: str, reach: analysed.CatalogReach, limits_active: bool, fresh: bool) -> None:
    statement = analysed.analyse(tree)
    if reach.is_stale_for(statement.oids()):
        if not fresh:
            raise StaleReach
        raise GuardError(
            Rule.ANALYSIS,
            "The statement uses an object created while it was being checked, so it was not run.",
            "Send it again.",
        )
    analysed.check(statement, reach, limits_active=limits_active)


def load_parsers() -> None:
    """Import both readings now (libpg_query and sqlglot, ~0.15 s): the server does it beside serving,
    so that neither start-up nor the first statement waits for them."""
    from pg_mcp.guard import postgres_reading, sqlglot_reading  # noqa: F401


def _check(sql: object, max_rows: int, policy: GuardPolicy, deadline: float) -> tuple[str, str]:
    """Every stage in order, under one deadline; the statement and its bounded wrapper."""
    from pg_mcp.guard import postgres_reading, sqlglot_reading

    text = check_input(sql, policy)
    tree = postgres_reading.parse(text, indent=_INDENT)
    _check_deadline(deadline)
    statement = _statement_text(text, tree)
    postgres_reading.check(tree["stmt"], policy)
    _check_deadline(deadline)
    sqlglot_reading.check(statement, policy)
    _check_deadline(deadline)
    wrapped = f"{_WRAP_PREFIX}{statement}\n) AS pg_mcp_result LIMIT {max_rows + 1}"
    _check_wrapping(tree["stmt"], wrapped)
    _check_deadline(deadline)
    return statement, wrapped


def _statement_text(text: str, tree: dict[str, Any]) -> str:
    """The caller's statement as PostgreSQL delimited it: without the trailing `;` and what follows."""
    raw = text.encode()  # leading comments stay: they are the caller's, and harmless
    end = int(tree.get("stmt_location", 0)) + int(tree.get("stmt_len", 0)) - _INDENT  # read indented
    return (raw[:end] if tree.get("stmt_len") else raw).decode()


def _check_wrapping(inner: dict[str, Any], wrapped: str) -> None:
    """PostgreSQL must read the bounded statement as exactly the caller's statement in a subquery."""
    from pg_mcp.guard import postgres_reading

    outer = postgres_reading.parse(wrapped)["stmt"]
    from_clause = outer.get("SelectStmt", {}).get("fromClause", [])
    subquery = from_clause[0].get("RangeSubselect", {}).get("subquery") if len(from_clause) == 1 else None
    if subquery is None or subquery != inner:
        raise GuardError(
            Rule.SYNTAX,
            "The statement does not stand on its own inside a subquery, so it cannot be bounded.",
            "Send one complete SELECT statement.",
        )


def _check_deadline(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise watchdog.DeadlinePassed


def _too_complex() -> GuardError:
    return GuardError(
        Rule.TOO_COMPLEX,
        "The statement took too long to analyse, so it was refused.",
        "Split the work into smaller, simpler queries.",
    )
