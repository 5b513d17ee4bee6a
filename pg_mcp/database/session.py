"""One call's read-only transaction, as the steps a caller orchestrates: analyse, explain, run.

`Database.call()` opens it (pooled connection, READ ONLY transaction with the limits, always rolled
back) and yields a `Session`. The caller decides what happens in between: the explorer judges the
analysis and the plan with the guard, then runs the statement. Nothing here calls back up into the
guard; the session only reports what PostgreSQL said.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from asyncpg.prepared_stmt import PreparedStatement as PreparedStatement

from pg_mcp.database.driver_errors import CONNECTION_LOST, query_error
from pg_mcp.database.driver_limits import fetch_at_most, never_closed
from pg_mcp.database.fetch_progress import fetch_progress
from pg_mcp.database.value_cutting import (
    CELL_BYTES_PER_CHAR,
    SCALAR_BYTES,
    SMALL_TYPES,
    cell_capped,
    pg_type_name,
    uncap,
)
from pg_mcp.errors import GuardError, QueryError
from pg_mcp.guard import CheckedQuery
from pg_mcp.guard.rules import Rule
from pg_mcp.recent import Recent

#: The LOG message that carries the server's rewritten parse tree of a prepared statement.
ANALYSIS_MESSAGE = "rewritten parse tree"
#: What the server's printing of a parse tree costs it and this process, per character: the trees of a
#: lookup's value-cutting wrapper (35,881 characters) cost 0.23 ms together (`benchmarks/bench_lookup_cpu.py`
#: with the printing stopped after the judged tree, and not).
TREE_SECONDS_PER_CHAR = 6.5e-9
#: About what each column the wrapper cuts adds to its tree (`value_cutting.cell_capped`): its CASE
#: expressions and the functions they call.
CUT_COLUMN_TREE_CHARS = 8_000

#: The judged statement's name on a connection straight to the server (`Kept`), and its wrapper's.
JUDGED_NAME = "pg_mcp_judged"
CELLS_NAME = "pg_mcp_cells"
#: The plan of the judged statement by its name: the very analysis that was judged is planned, and the
#: plan is kept to run it, so the server neither analyses the text again nor plans it twice.
EXPLAIN_JUDGED = f"EXPLAIN (FORMAT JSON, VERBOSE true) EXECUTE {JUDGED_NAME}"
#: Wrappers a connection keeps described (`Kept.wrappers`), and the longest text kept.
KEPT_WRAPPERS = 32
KEPT_WRAPPER_CHARS = 16_384
#: The planner's cost above which a statement is not short: it gives a kept turn back before it runs.
SHORT_PLAN_COST = 1_000.0


class NeedsGeneralTurn(Exception):
    """A statement that started on a turn kept for short calls turned out expensive: run the call again
    on a general turn (`Database.call(short=False)`)."""


@dataclass(frozen=True)
class Column:
    """A result column: its name and PostgreSQL type name (e.g. `int4`, `_text` for text[])."""

    name: str
    type_name: str
    type_schema: str


@dataclass(frozen=True)
class QueryResult:
    """Rows of one statement; `truncated` means more rows existed than `rows` holds.

    `byte_cut` says why: fetching stopped at the result-byte budget (max_result_bytes) before the
    row cap was reached.
    """

    columns: list[Column]
    rows: list[tuple[Any, ...]]
    truncated: bool
    elapsed_ms: float
    byte_cut: bool = False


@dataclass(frozen=True)
class SessionLimits:
    """What a session needs of the database's settings."""

    max_cell_chars: int
    max_result_bytes: int
    #: Operator limits are active: a data error does not quote the value it failed on.
    redact: bool
    #: Seconds a round trip to the database takes, when saving one may cost the server some work
    #: instead (`Session._stop_analysing`); 0 when it may not.
    round_trip: float = 0.0


@dataclass(frozen=True)
class Analysis:
    """What Parse gave for one statement: the server's rewritten parse tree (None when it sent none), and
    the prepared statement or the error preparing it raised. Nothing has been planned or run."""

    tree: str | None
    statement: PreparedStatement | None
    failure: Exception | None

    def prepared(self) -> PreparedStatement:
        """The prepared statement, or the error preparing it (to raise once the tree was judged)."""
        if self.failure is not None:
            raise self.failure
        assert self.statement is not None
        return self.statement

    def tree_or_refusal(self) -> str:
        """The tree to judge; without one nothing can be judged, so the statement is refused."""
        if self.tree is None:
            raise GuardError(
                Rule.ANALYSIS,
                "PostgreSQL did not send its analysis of the statement, so it was not run.",
                "A connection pooler or proxy may be dropping the server's notices; connect directly or "
                "through PgBouncer, which passes them on.",
            )
        return self.tree


@dataclass
class Kept:
    """What a connection straight to PostgreSQL keeps from call to call (none through a pooler).

    On such a connection a call names its judged statement (JUDGED_NAME), and a wrapper whose rows
    come through a cursor (CELLS_NAME); `DEALLOCATE ALL` drops them when the call ends. What is kept
    is only described statements, sent unnamed with the message that runs them. Through PgBouncer a
    named statement may land on another server connection, or be dropped by another client's reset,
    so there every statement stays unnamed, and is analysed again when it runs.
    """

    #: EXPLAIN_JUDGED, described once per connection: after that, one round trip explains each call's
    #: judged statement.
    explain: PreparedStatement | None = None
    #: Value-cutting wrappers described lately, by their text and the types of the columns and parameters
    #: of the statement they wrap, as described in this call (which decide the wrapper's): one asked
    #: again runs in one round trip, parsed and run together, with no describe to wait for.
    wrappers: Recent[tuple[str, tuple[int, ...]], PreparedStatement] = field(
        default_factory=lambda: Recent(KEPT_WRAPPERS)
    )


@dataclass(frozen=True)
class _Fetched:
    """What `_fetch_bounded` pulled through the cursor, and whether and why it stopped early."""

    records: list[asyncpg.Record]
    more: bool
    byte_cut: bool


class Session:
    """The steps of one call on its connection, inside its read-only transaction."""

    def __init__(
        self,
        conn: asyncpg.Connection,
        limits: SessionLimits,
        *,
        short_only: bool,
        analysing: bool,
        kept: Kept | None = None,
    ) -> None:
        self._conn = conn
        self._limits = limits
        self._kept = kept
        #: The text of the statement prepared as JUDGED_NAME in this call, if one was.
        self._judged: str | None = None
        self._short_only = short_only
        self._analysing = self._listening = analysing
        self._trees: list[str] = []
        self._tree_chars = 0
        #: Columns of the judged statement's result that the wrapper would cut (`value_cutting`).
        self._cut_columns = 0
        self._started = time.perf_counter()
        if analysing:
            conn.add_log_listener(self._collect)

    def close(self) -> None:
        if self._listening:
            with contextlib.suppress(asyncpg.InterfaceError):  # a connection lost mid-call is released
                self._conn.remove_log_listener(self._collect)

    def _collect(self, _: object, message: asyncpg.PostgresLogMessage) -> None:
        if self._analysing and str(message.message).startswith(ANALYSIS_MESSAGE):
            self._trees.append(str(message.detail or ""))

    async def analyse(self, sql: str, checked: CheckedQuery) -> Analysis:
        """Prepare `sql` (Parse: the server analyses and rewrites it, and plans nothing) and keep the
        rewritten tree the server sent (in a session opened with `analysed`). A failure to prepare is
        kept, not raised: a refusal of the tree says more than the failure."""
        self._trees.clear()
        named = self._kept is not None and self._judged is None
        try:
            statement = await self._conn.prepare(sql, name=JUDGED_NAME if named else None)
        except asyncpg.PostgresError as exc:
            failure: Exception = query_error(exc, checked, sql, redact=self._limits.redact)
            return Analysis(self._trees[0] if self._trees else None, None, failure)
        except asyncpg.InternalClientError as exc:
            if type(exc) is not asyncpg.InternalClientError:  # a subclass: the connection is in trouble
                raise
            failure = QueryError(  # a result type the driver cannot describe
                "The result has a column of a pseudo-type the driver cannot read (anyarray, say).",
                "Cast that column to text (column::text).",
            )
            return Analysis(self._trees[0] if self._trees else None, None, failure)
        except asyncpg.InterfaceError as exc:
            if isinstance(exc, CONNECTION_LOST):
                raise
            failure = QueryError(  # the driver cannot describe the result (a row type it does not support)
                f"The result cannot be read: {exc}.", "Cast the column to text (column::text) and try again."
            )
            return Analysis(self._trees[0] if self._trees else None, None, failure)
        if named:
            self._judged = sql
            never_closed(statement)
        if self._analysing and not self._trees:  # the listener runs soon after the message arrives
            await asyncio.sleep(0)
        tree = self._trees[0] if self._trees else None
        self._tree_chars = len(tree or "")
        self._cut_columns = sum(a.type.name not in SMALL_TYPES for a in statement.get_attributes())
        return Analysis(tree, statement, None)

    async def _stop_analysing(self, checked: CheckedQuery, *, text_explained: bool = False) -> None:
        """Judged: the plan, the wrapper and the server's log need no more trees, so the server is told to
        stop printing them, unless that round trip costs more than letting it print them for nothing
        (a distant database; trees that go to no log). `text_explained`: a text is about to be explained,
        not the judged statement by its name."""
        if self._analysing:
            self._analysing = False
            printed = self._chars_printed_unless_stopped(checked, text_explained)
            if printed * TREE_SECONDS_PER_CHAR < self._limits.round_trip:
                return
            await self._conn.execute("SET LOCAL debug_print_rewritten = off")

    def _chars_printed_unless_stopped(self, checked: CheckedQuery, text_explained: bool) -> int:
        """The characters of the trees the server would print after the judged one. A text explained is
        analysed twice (prepared, then parsed again to run), unless EXPLAIN names the judged statement
        (a tree of a line). On a connection straight to the server (`Kept`) the wrapper is analysed
        once, if the result is cut at all; through a pooler every statement is analysed again to run:
        the wrapper twice, or the statement once."""
        explained = 2 * self._tree_chars if text_explained else 0
        wrapper = self._tree_chars + CUT_COLUMN_TREE_CHARS * self._cut_columns
        wrapped = checked.cap_cells and self._cut_columns > 0
        if self._kept is not None:
            return explained + (wrapper if wrapped else 0)
        return explained + (2 * wrapper if wrapped else self._tree_chars)

    async def explain(
        self, sql: str, checked: CheckedQuery, *, verbose: bool = True, args: tuple[Any, ...] = ()
    ) -> dict[str, Any]:
        """PostgreSQL's plan of `sql` with `args` bound (EXPLAIN FORMAT JSON, which executes nothing)."""
        by_name = sql == self._judged and verbose and not args
        await self._stop_analysing(checked, text_explained=not by_name)
        explain = f"EXPLAIN (FORMAT JSON, VERBOSE {str(verbose).lower()})\n{sql}"
        try:
            if by_name:
                explain = EXPLAIN_JUDGED
                explained = await self._explain_judged()
            else:
                explained = await self._one_value(explain, args)
            plan: dict[str, Any] = json.loads(explained)[0]["Plan"]
        except asyncpg.PostgresError as exc:
            raise query_error(exc, checked, explain, redact=self._limits.redact) from None
        return plan

    async def explain_analyze(
        self, sql: str, checked: CheckedQuery, args: tuple[Any, ...] = ()
    ) -> dict[str, Any]:
        """EXPLAIN (ANALYZE, BUFFERS, VERBOSE, FORMAT JSON) of the judged `sql`: it executes the statement
        in this read-only transaction (EXPLAIN discards its rows); the whole document, timings and all."""
        await self._stop_analysing(checked, text_explained=True)
        explain = f"EXPLAIN (ANALYZE, BUFFERS, VERBOSE, FORMAT JSON)\n{sql}"
        try:
            explained: dict[str, Any] = json.loads(await self._one_value(explain, args))[0]
        except asyncpg.PostgresError as exc:
            raise query_error(exc, checked, explain, redact=self._limits.redact) from None
        return explained

    async def _explain_judged(self) -> Any:
        """EXPLAIN_JUDGED's one value, in one round trip once the connection has it described (`Kept`)."""
        assert self._kept is not None
        if self._kept.explain is None:
            self._kept.explain = await self._conn.prepare(EXPLAIN_JUDGED)
        rows = await fetch_at_most(self._kept.explain, 1)
        assert rows is not None  # a `Kept` exists only where the driver has it (CAN_KEEP_NAMED)
        return rows[0][0]

    async def _one_value(self, sql: str, args: tuple[Any, ...]) -> Any:
        """The first column of the one row `sql` returns, prepared once: `fetchval` would parse and
        analyse the statement again to run it (an unnamed statement), which for an EXPLAIN is a second
        analysis of the whole query."""
        statement = await self._conn.prepare(sql)
        rows = await fetch_at_most(statement, 1, args)
        if rows is None:  # this asyncpg lacks the row-limited execute: one value all the same
            return await statement.fetchval(*args)
        return rows[0][0]

    def keep_turn_for(self, plan: dict[str, Any]) -> None:
        """Raise NeedsGeneralTurn when this call holds a turn kept for short calls and `plan` is not short."""
        if self._short_only and float(plan.get("Total Cost", 0)) > SHORT_PLAN_COST:
            raise NeedsGeneralTurn

    async def run(
        self, statement: PreparedStatement, checked: CheckedQuery, args: tuple[Any, ...] = ()
    ) -> QueryResult:
        """At most `checked.max_rows` rows of the prepared (and judged) `checked.sql`, with `args` bound
        to its parameters (an operator's tool).

        What runs is that statement, or pg-mcp's own cell-capping wrapper around it, which calls only
        `pg_catalog` functions on its columns and converts values with their types' output functions,
        never a cast (`value_cutting`): nothing the judged tree did not already reach.

        Three caps bound memory together: values of variable size larger than the cell limit (in
        characters or bytes) are cut by the database, no more than max_rows + 1 rows are fetched, and
        fetching stops once the rows fetched pass max_result_bytes (`_fetch_bounded`), which the result
        then reports as a byte cut.
        """
        await self._stop_analysing(checked)
        attributes = statement.get_attributes()
        if not attributes:
            raise QueryError(
                "The statement returns no result columns, so it is not a query; it was not executed.",
                "Send a SELECT that returns at least one column.",
            )
        max_chars = self._limits.max_cell_chars
        executed = checked.sql
        capped = cell_capped(checked.sql, attributes, max_chars) if checked.cap_cells else None
        try:
            row_at_most = _row_bytes_at_most(attributes, max_chars)
            budget = self._limits.max_result_bytes
            if capped is not None:  # pg-mcp's own wrapper around the judged statement (value_cutting)
                executed = capped[0]
                at_once = _fits_at_once(checked.max_rows, budget, row_at_most)
                statement = await self._wrapper(executed, statement, at_once=at_once)
            fetched = await _fetch_bounded(statement, checked.max_rows, budget, row_at_most, args)
        except asyncpg.PostgresError as exc:
            raise query_error(exc, checked, executed, redact=self._limits.redact) from None
        except asyncpg.InterfaceError as exc:
            if isinstance(exc, CONNECTION_LOST):
                raise
            raise QueryError(
                f"The result cannot be read: {exc}.", "Cast the column to text (column::text) and try again."
            ) from None
        columns = [Column(a.name, pg_type_name(a.type.name), a.type.schema) for a in attributes]
        if capped is None:
            rows = [tuple(record) for record in fetched.records]
        else:
            rows = [uncap(record, capped[1]) for record in fetched.records]
        elapsed = (time.perf_counter() - self._started) * 1000
        return QueryResult(columns, rows, fetched.more, elapsed, byte_cut=fetched.byte_cut)

    async def _wrapper(self, sql: str, judged: PreparedStatement, *, at_once: bool) -> PreparedStatement:
        """The value-cutting wrapper `sql`, prepared. On a connection straight to the server, a wrapper
        whose rows are fetched at once (`_fits_at_once`) is kept (`Kept.wrappers`), and one kept is
        not described again; any other is named, so that the server does not analyse it again to run
        it. Through a pooler it is prepared unnamed."""
        if self._kept is None:
            return await self._conn.prepare(sql)
        if not at_once:
            return never_closed(await self._conn.prepare(sql, name=CELLS_NAME))
        key = (sql, _types_of(judged))
        statement = self._kept.wrappers.get(key)
        if statement is None:
            statement = await self._conn.prepare(sql)
            if len(sql) <= KEPT_WRAPPER_CHARS:
                self._kept.wrappers.put(key, statement)
        return statement

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """One of this package's own catalog queries (fixed text, `$n` parameters)."""
        try:
            rows: list[asyncpg.Record] = await self._conn.fetch(sql, *args)
        except asyncpg.PostgresError as exc:
            raise QueryError(f"Catalog query failed: {exc}") from None
        return rows


#: A judge of PostgreSQL's analysis of a statement: returns, or raises a refusal.
Judge = Callable[[str], Awaitable[None]]


async def _fetch_bounded(
    statement: PreparedStatement, max_rows: int, budget: int, row_at_most: int, args: tuple[Any, ...] = ()
) -> _Fetched:
    """Rows through a cursor in chunks, stopping at max_rows or once they pass `budget` bytes.

    When max_rows + 1 rows at their largest fit in the budget, they are fetched at once instead, with
    that row limit on the Execute message (`fetch_at_most`): one round trip less.
    The first chunk is as many rows as fit in the budget at their largest possible size
    (`row_at_most`), so a small result still arrives in one round trip. Later chunks are sized
    from the average row fetched so far, and never so large that rows at their largest size
    would pass twice the budget: what is fetched stays under about three times the budget, or
    one row when a single row is larger. Bytes are counted as `_approx_bytes` does.
    """
    chunk = max(1, budget // row_at_most)
    if _fits_at_once(max_rows, budget, row_at_most):  # one round trip, no cursor, where the driver allows it
        records = await fetch_at_most(statement, max_rows + 1, args)
        if records is not None:  # always where there is a `Kept`, whose wrappers need it
            return _Fetched(records[:max_rows], more=len(records) > max_rows, byte_cut=False)
    cursor = await statement.cursor(*args)
    kept: list[asyncpg.Record] = []
    total = 0
    while True:
        asked = min(chunk, max_rows + 1 - len(kept))
        batch = await cursor.fetch(asked)
        if (progress := fetch_progress.get()) is not None:
            progress.rows += len(batch)
        for record in batch:
            if len(kept) == max_rows:
                return _Fetched(kept, more=True, byte_cut=False)
            size = _approx_bytes(record)
            if kept and total + size > budget:
                return _Fetched(kept, more=True, byte_cut=True)
            kept.append(record)
            total += size
        if len(batch) < asked:
            return _Fetched(kept, more=False, byte_cut=False)
        if total >= budget:  # one row alone filled the budget: skip, not fetch, to learn if more exist
            more = await cursor.forward(1) > 0
            return _Fetched(kept, more=more, byte_cut=more)
        remaining = budget - total
        chunk = max(1, min(math.ceil(remaining * len(kept) / total), (remaining + budget) // row_at_most))


def _types_of(statement: PreparedStatement) -> tuple[int, ...]:
    """The type OIDs of a prepared statement's result columns, then of its parameters (after a 0)."""
    return (
        *(a.type.oid for a in statement.get_attributes()),
        0,
        *(t.oid for t in statement.get_parameters()),
    )


def _fits_at_once(max_rows: int, budget: int, row_at_most: int) -> bool:
    """Whether max_rows + 1 rows at their largest fit in the result budget, so that they are fetched at
    once (`_fetch_bounded`)."""
    return max_rows + 1 <= max(1, budget // row_at_most)


def _row_bytes_at_most(attributes: Any, max_chars: int) -> int:
    """The largest a fetched row can be, by `_approx_bytes`, when its values are cut by `cell_capped`."""
    cell = CELL_BYTES_PER_CHAR * max_chars + 2 * SCALAR_BYTES  # a value or its prefix, and its length
    return sum(2 * SCALAR_BYTES if a.type.name in SMALL_TYPES else cell for a in attributes) + 2


def _approx_bytes(value: Any) -> int:
    """About the bytes of `value`'s text in a rendered row: what the result budget counts, cheaply."""
    if value is None or isinstance(value, bool | int | float):
        return SCALAR_BYTES
    if isinstance(value, str):
        return len(value) if value.isascii() else len(value.encode())
    if isinstance(value, bytes):
        return 2 * len(value) + 2
    if isinstance(value, list | tuple | asyncpg.Record):
        return 2 + sum(_approx_bytes(item) + 1 for item in value)
    return len(str(value))
