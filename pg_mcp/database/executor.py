"""The asyncpg pool and the only code that executes SQL.

Every statement runs inside a `READ ONLY` transaction that is always rolled back, with
`statement_timeout`, `lock_timeout` and `idle_in_transaction_session_timeout` set for that
transaction (the last also for the session: see `Database._idle_sql`). User SQL goes through
`Database.run_query` alone: extended protocol (one statement per message), rows pulled through
a cursor in chunks so that neither more rows than the row cap nor much more data than the
result-byte budget ever reaches this process.
Connections are reset (FINISH_SQL) before they return to the pool, and asyncpg's statement
cache is off so no server-side prepared statement outlives a call (and PgBouncer in
transaction mode works). A call answers at its deadline even when its backend does not: the
connection is then abandoned, not reset (see `Database._abandon`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg

from pg_mcp.config import Settings
from pg_mcp.database.codecs import BINARY_DECODERS, refuse_encoding
from pg_mcp.errors import DatabaseUnavailableError, QueryError
from pg_mcp.guard import CheckedQuery

log = logging.getLogger(__name__)

#: Types decoded as PostgreSQL's own text so nothing is lost in a Python round trip
#: (intervals with months, time zones, geometric and network syntax). Dates and timestamps get
#: exact binary decoders instead (see codecs.py), so ranges of them still decode.
TEXT_DECODED_TYPES = (
    "time", "timetz", "interval",
    "point", "line", "lseg", "box", "path", "polygon", "circle",
    "inet", "cidr", "macaddr", "macaddr8", "bit", "varbit",
)  # fmt: skip

#: Ends every call in one round trip: nothing a statement did to the session survives it.
FINISH_SQL = (
    "ROLLBACK; RESET ALL; RESET ROLE; RESET SESSION AUTHORIZATION; CLOSE ALL; UNLISTEN *; DEALLOCATE ALL; "
    "SELECT pg_advisory_unlock_all();"
)
#: Errors after which the connection is gone but the database may be fine: retry once.
#: InternalClientError is what asyncpg raises when the server's "terminating connection"
#: message arrived while the connection sat idle in the pool and its socket is not closed yet.
CONNECTION_LOST = (
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.AdminShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.InternalClientError,
    ConnectionError,
    OSError,
)


@dataclass(frozen=True)
class Column:
    """A result column: its name and PostgreSQL type name (e.g. `int4`, `_text` for text[])."""

    name: str
    type_name: str
    type_schema: str


#: Types whose values are small and fixed in size; every other column's values are capped on the server.
SMALL_TYPES = frozenset(
    {
        "int2", "int4", "int8", "float4", "float8", "bool", "char", "date", "time", "timetz", "timestamp",
        "timestamptz", "interval", "uuid", "oid", "money", "macaddr", "macaddr8", "inet", "cidr", "point",
        "line", "lseg", "box", "circle",
    }
)  # fmt: skip


#: A value is cut by the database when its text is over max_cell_chars characters or over this many
#: bytes per allowed character. Two, not four: four bytes per character (the UTF-8 maximum) would
#: let 1,000 emoji through as 4,000 bytes, so a row of 550 such cells would be 2.2 MB.
CELL_BYTES_PER_CHAR = 2
#: What `_approx_bytes` counts for a number, boolean or NULL: about its text in the rendered row.
SCALAR_BYTES = 8


@dataclass(frozen=True)
class CutValue:
    """A value too big to fetch: the start of its text and its full length, cut by the database."""

    prefix: str
    total: int
    unit: str  # "bytes" for bytea, "chars" for everything else


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
class _Fetched:
    """What `_fetch_bounded` pulled through the cursor, and whether and why it stopped early."""

    records: list[asyncpg.Record]
    more: bool
    byte_cut: bool


class Database:
    """A lazily created pool: the server starts while the database is down and recovers when it returns."""

    def __init__(self, settings: Settings, ready: Callable[[float], Awaitable[None]] | None = None) -> None:
        self.settings = settings
        #: For a database that comes up after the server (the demo's first run): waits up to the given
        #: seconds for it, else raises DatabaseUnavailableError saying why.
        self._ready = ready
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        #: Whether the role may `SET temp_file_limit` (superuser-only unless granted), found per connection.
        self._may_set_temp_file_limit = False
        #: Background requests to end backends whose calls were abandoned at their deadline.
        self._stoppers: set[asyncio.Task[None]] = set()

    async def connect(self) -> None:
        """Create the pool now (raising DatabaseUnavailableError) instead of at the first call."""
        await self._get_pool()

    async def close(self) -> None:
        """Close the pool; backends of abandoned calls are asked to stop first (briefly, at most 2 s)."""
        if self._stoppers:
            await asyncio.wait(list(self._stoppers), timeout=STOP_BACKENDS_SECONDS)
        for task in list(self._stoppers):
            task.cancel()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), timeout=5)
            except (TimeoutError, Exception):
                pool.terminate()

    async def run_query(
        self, checked: CheckedQuery, inspect_plan: Callable[[dict[str, Any]], None] | None = None
    ) -> QueryResult:
        """Execute one guard-approved statement and return at most `checked.max_rows` rows.

        `inspect_plan`, when given, sees PostgreSQL's plan (`EXPLAIN (VERBOSE, FORMAT JSON)`, which
        executes nothing) first, in the same transaction, and may refuse the statement by raising.

        Three caps bound memory together: values of variable size larger than the cell limit (in
        characters or bytes) are cut by the database (`_cell_capped`), no more than max_rows + 1
        rows are fetched, and fetching stops once the rows fetched pass max_result_bytes
        (`_fetch_bounded`), which the result then reports as a byte cut.
        """
        started = time.perf_counter()
        executed = checked.sql
        max_chars = self.settings.max_cell_chars
        async with self._read_only() as conn:
            try:
                if inspect_plan is not None:
                    executed = f"EXPLAIN (FORMAT JSON, VERBOSE)\n{checked.sql}"
                    inspect_plan(json.loads(await conn.fetchval(executed))[0]["Plan"])
                    executed = checked.sql
                statement = await conn.prepare(checked.sql)
                attributes = statement.get_attributes()
                if not attributes:
                    raise QueryError(
                        "The statement returns no result columns, so it is not a query; it was not executed.",
                        "Send a SELECT that returns at least one column.",
                    )
                capped = _cell_capped(checked.sql, attributes, max_chars) if checked.cap_cells else None
                if capped is not None:
                    executed, capped_columns = capped
                    statement = await conn.prepare(executed)
                fetched = await _fetch_bounded(
                    statement,
                    checked.max_rows,
                    self.settings.max_result_bytes,
                    _row_bytes_at_most(attributes, max_chars),
                )
            except asyncpg.PostgresError as exc:
                raise _query_error(exc, checked, executed, redact=self.settings.access.active) from None
            except asyncpg.InterfaceError as exc:
                if isinstance(exc, CONNECTION_LOST):
                    raise
                raise QueryError(
                    f"The result cannot be read: {exc}.",
                    "Cast the column to text (column::text) and try again.",
                ) from None
            columns = [Column(a.name, _pg_type_name(a.type.name), a.type.schema) for a in attributes]
        if capped is None:
            rows = [tuple(record) for record in fetched.records]
        else:
            rows = [_uncap(record, capped_columns) for record in fetched.records]
        elapsed = (time.perf_counter() - started) * 1000
        return QueryResult(columns, rows, fetched.more, elapsed, byte_cut=fetched.byte_cut)

    async def fetch_fixed(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """Run one of this package's own catalog queries (fixed text, `$n` parameters)."""
        async with self._read_only() as conn:
            try:
                rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
            except asyncpg.PostgresError as exc:
                raise QueryError(f"Catalog query failed: {exc}") from None
            return rows

    @asynccontextmanager
    async def _read_only(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection inside a read-only transaction that is rolled back afterwards.

        A connection found dead before anything ran on it (server restart, network cut) is
        replaced once, transparently, so the first call after an outage succeeds. When the
        deadline fires (or the caller goes away) the connection is abandoned, not reset: its
        backend may be running a built-in that never checks for interrupts.
        """
        deadline = self.settings.statement_timeout + self.settings.connect_timeout
        began = False
        try:
            async with asyncio.timeout(deadline):
                pool, conn = await self._begin()
                began = True
                cancelled = False
                try:
                    yield conn
                except asyncio.CancelledError:
                    cancelled = True
                    raise
                except CONNECTION_LOST as exc:
                    await self._discard_pool(pool)
                    raise _unavailable(exc, self.settings) from None
                finally:
                    await (self._abandon(pool, conn) if cancelled else self._finish(pool, conn))
        except TimeoutError:
            if not began:
                raise DatabaseUnavailableError(
                    f"The call got no answer from the database at {describe_target(self.settings.dsn)} "
                    f"within {deadline:g} s and was cancelled; nothing was run.",
                    "The network or the server may be down (or every pooled connection busy); "
                    "the next call will try again on a fresh connection.",
                ) from None
            raise QueryError(
                f"The call did not finish within {deadline:g} s and was cancelled.",
                "The database may be overloaded or unreachable; try again, or simplify the query.",
            ) from None

    async def _begin(self) -> tuple[asyncpg.Pool, asyncpg.Connection]:
        for attempt in (1, 2):
            pool = await self._get_pool()
            conn: asyncpg.Connection | None = None
            try:
                conn = await self._acquire(pool)
                await conn.execute(self._begin_sql(conn))
                return pool, conn
            except asyncio.CancelledError:  # the deadline fired while BEGIN waited for the backend
                if conn is not None:
                    await self._abandon(pool, conn)
                raise
            except CONNECTION_LOST as exc:
                if conn is not None:
                    await _release_quietly(pool, conn)
                await self._discard_pool(pool)
                if attempt == 2:
                    raise _unavailable(exc, self.settings) from None
                log.warning("database connection lost (%s); reconnecting", type(exc).__name__)
        raise AssertionError("unreachable")

    async def _acquire(self, pool: asyncpg.Pool) -> asyncpg.Connection:
        """A free connection, waiting at most POOL_WAIT_SECONDS: a quick call behind many slow ones is
        told the server is busy instead of queueing for as long as they run."""
        try:
            conn: asyncpg.Connection = await pool.acquire(timeout=POOL_WAIT_SECONDS)
        except TimeoutError:
            if pool.get_idle_size() == 0 and pool.get_size() >= pool.get_max_size():
                raise QueryError(
                    f"The server is busy: all {pool.get_max_size()} database connections are running "
                    f"queries, and none came free within {POOL_WAIT_SECONDS:g} s.",
                    "Try again in a moment; an operator can raise PG_MCP_POOL_MAX.",
                ) from None
            raise
        return conn

    async def _finish(self, pool: asyncpg.Pool, conn: asyncpg.Connection) -> None:
        """Roll back, reset and return the connection; one in an unknown state is closed instead of reused."""
        try:
            if not conn.is_closed():
                await conn.execute(f"{FINISH_SQL} {self._idle_sql()};")
        except (asyncpg.PostgresError, asyncpg.InterfaceError, *CONNECTION_LOST):
            # A connection lost mid-call may already be back in asyncpg's hands: nothing left to close.
            with contextlib.suppress(asyncpg.InterfaceError):
                conn.terminate()
        except asyncio.CancelledError:  # the deadline fired while the reset waited for the backend
            await self._abandon(pool, conn)
            raise
        await _release_quietly(pool, conn)

    async def _abandon(self, pool: asyncpg.Pool, conn: asyncpg.Connection) -> None:
        """Close a connection without waiting for its backend, and ask the server to end that backend.

        FINISH_SQL would wait for the running statement, which may never end; closing the socket
        returns at once and the pool opens a fresh connection for the next call. asyncpg's own
        cancel request dies with the connection, so the backend is terminated in the background
        instead (the same role may signal its own backends; without that privilege it just logs).
        """
        pid = conn.get_server_pid()
        conn.terminate()
        await _release_quietly(pool, conn)
        task = asyncio.get_running_loop().create_task(self._stop_backend(pid))
        self._stoppers.add(task)
        task.add_done_callback(self._stoppers.discard)

    async def _stop_backend(self, pid: int) -> None:
        """`pg_terminate_backend` for an abandoned call's backend; best effort, never raises."""
        try:
            async with asyncio.timeout(self.settings.connect_timeout):
                conn = await asyncpg.connect(self.settings.dsn, statement_cache_size=0)  # not the pool:
                try:  # it may be closing, at shutdown
                    stopped = await conn.fetchval(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = $1", pid
                    )
                finally:
                    await conn.close()
            log.warning(
                "abandoned backend %d (deadline or cancelled call); terminated: %s", pid, bool(stopped)
            )
        except (TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, *CONNECTION_LOST) as exc:
            log.info("abandoned backend %d (deadline or cancelled call); not terminated: %s", pid, exc)

    def _begin_sql(self, conn: asyncpg.Connection) -> str:
        s = self.settings
        sql = (
            "BEGIN TRANSACTION READ ONLY; SET LOCAL standard_conforming_strings = on; "
            f"SET LOCAL statement_timeout = {int(s.statement_timeout * 1000)}; "
            f"SET LOCAL lock_timeout = {int(s.lock_timeout * 1000)}; "
            f"SET LOCAL idle_in_transaction_session_timeout = {int((s.statement_timeout + 5) * 1000)};"
        )
        if self._may_set_temp_file_limit:  # the Settings pattern admits only digits, a unit and -1
            sql += f" SET LOCAL temp_file_limit = '{s.temp_file_limit}';"
        if conn.get_server_version().major >= 14:  # stop work for a client that went away
            sql += " SET LOCAL client_connection_check_interval = 1000;"
        return sql

    def _idle_sql(self) -> str:
        """The session's idle_in_transaction_session_timeout, set outside any transaction.

        The SET LOCAL in `_begin_sql` is not enough: a failed statement (one cancelled by
        statement_timeout, say) undoes its transaction's settings, and the aborted transaction would
        then wait for its client for ever, as it does when a network partition keeps the rollback
        from arriving. RESET ALL in FINISH_SQL clears this too, so `_finish` sets it again.
        """
        return (
            f"SET idle_in_transaction_session_timeout = {int((self.settings.statement_timeout + 5) * 1000)}"
        )

    async def _init_connection(self, conn: asyncpg.Connection) -> None:
        """Type codecs, the session's idle timeout, and whether this role may set temp_file_limit
        (asked once per connection)."""
        await _set_codecs(conn)
        await conn.execute(self._idle_sql())
        self._may_set_temp_file_limit = await _may_set_temp_file_limit(conn)

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        if self._ready is not None:
            await self._ready(self.settings.connect_timeout)
        async with self._lock:
            if self._pool is None:
                self._pool = await self._create_pool()
            return self._pool

    async def _create_pool(self) -> asyncpg.Pool:
        s = self.settings
        try:
            pool: asyncpg.Pool = await asyncpg.create_pool(
                s.dsn,
                min_size=s.pool_min,
                max_size=s.pool_max,
                timeout=s.connect_timeout,
                statement_cache_size=0,
                max_inactive_connection_lifetime=300,
                init=self._init_connection,
                reset=_reset_connection,
                server_settings={"application_name": "pg-mcp"},
            )
        except (
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            OSError,
            TimeoutError,
            ssl.SSLError,
            ValueError,
            OverflowError,
        ) as exc:
            raise _unavailable(exc, s) from None
        return pool

    async def _discard_pool(self, pool: asyncpg.Pool) -> None:
        async with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.terminate()


async def _release_quietly(pool: asyncpg.Pool, conn: asyncpg.Connection) -> None:
    """Return a connection; if its reset fails, asyncpg has already closed it, which is all we want."""
    try:
        await pool.release(conn)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, *CONNECTION_LOST) as exc:
        log.debug("connection discarded on release: %s", type(exc).__name__)


async def _set_codecs(conn: asyncpg.Connection) -> None:
    for type_name, decoder in BINARY_DECODERS.items():
        await conn.set_type_codec(
            type_name, schema="pg_catalog", encoder=refuse_encoding, decoder=decoder, format="binary"
        )
    for type_name in TEXT_DECODED_TYPES:
        try:
            await conn.set_type_codec(type_name, schema="pg_catalog", encoder=str, decoder=str, format="text")
        except ValueError:  # type absent on this server version
            continue


async def _may_set_temp_file_limit(conn: asyncpg.Connection) -> bool:
    """temp_file_limit is superuser-only; PostgreSQL 15 can grant it (GRANT SET ON PARAMETER)."""
    if conn.get_server_version().major >= 15:
        sql = "SELECT has_parameter_privilege(current_user, 'temp_file_limit', 'SET')"
    else:
        sql = "SELECT current_setting('is_superuser') = 'on'"
    return bool(await conn.fetchval(sql))


async def _fetch_bounded(
    statement: asyncpg.prepared_stmt.PreparedStatement, max_rows: int, budget: int, row_at_most: int
) -> _Fetched:
    """Rows through a cursor in chunks, stopping at max_rows or once they pass `budget` bytes.

    The first chunk is as many rows as fit in the budget at their largest possible size
    (`row_at_most`), so a small result still arrives in one round trip. Later chunks are sized
    from the average row fetched so far, and never so large that rows at their largest size
    would pass twice the budget: what is fetched stays under about three times the budget, or
    one row when a single row is larger. Bytes are counted as `_approx_bytes` does.
    """
    cursor = await statement.cursor()
    kept: list[asyncpg.Record] = []
    total = 0
    chunk = max(1, budget // row_at_most)
    while True:
        asked = min(chunk, max_rows + 1 - len(kept))
        batch = await cursor.fetch(asked)
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


def _row_bytes_at_most(attributes: Any, max_chars: int) -> int:
    """The largest a fetched row can be, by `_approx_bytes`, when its values are cut by `_cell_capped`."""
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


async def _reset_connection(conn: asyncpg.Connection) -> None:
    """The pool's own reset: nothing left to do, `_finish` has already run FINISH_SQL."""


def _cell_capped(sql: str, attributes: Any, max_chars: int) -> tuple[str, list[str | None]] | None:
    """`sql` wrapped so that a value whose text is too long arrives as the start of its text and its
    length: the cut the renderer makes, made before the value is sent.

    Too long means over `max_chars` characters or over CELL_BYTES_PER_CHAR x `max_chars` bytes,
    so a cell costs at most that many bytes whatever its characters. Each column keeps its place,
    holding its value when it fits and NULL otherwise; one last column, a text array with an entry
    per column of variable size, holds `length:start` for each value that was cut. So the wrapper
    adds one column, whatever the width (PostgreSQL allows 1,664). Each value is converted to text
    once, in an inner query that `OFFSET 0` keeps from being merged into the outer one, unless
    that inner query would itself be too wide; bytea is measured and cut as bytes, never converted
    whole. Returns the SQL and, per original column, the unit of its length (None for a column
    passed through), or None when every column is small.
    """
    units: list[str | None] = [
        None if a.type.name in SMALL_TYPES else ("bytes" if a.type.name == "bytea" else "chars")
        for a in attributes
    ]
    if not any(units):
        return None
    names = [f"c{i}" for i in range(len(units))]
    inline = len(names) + units.count("chars") > MAX_TARGET_COLUMNS
    shown_bytes = bytea_bytes_shown(max_chars)
    max_bytes = CELL_BYTES_PER_CHAR * max_chars
    inner, selects, cuts = list(names), [], []
    for name, unit in zip(names, units, strict=True):
        if unit is None:
            selects.append(name)
            continue
        if unit == "bytes":  # shown as hex: \x and two characters per byte; its length costs nothing
            length = f"octet_length({name})"
            big = f"{length} > {shown_bytes}"
            shown = f"'\\x' || encode(substring({name} FROM 1 FOR {shown_bytes}), 'hex')"
        else:  # octet_length first: it is free even for a toasted value, char_length is not
            text = f"({name}::text)" if inline else f"t_{name}"
            if not inline:
                inner.append(f"{name}::text AS {text}")
            length = f"char_length({text})"
            big = f"CASE WHEN octet_length({text}) > {max_bytes} THEN true ELSE {length} > {max_chars} END"
            # max_chars characters unless they pass the byte limit; then half as many, at most 4 bytes each
            start = f"substr({text}, 1, {max_chars})"
            shown = (
                f"CASE WHEN octet_length({start}) <= {max_bytes} THEN {start} "
                f"ELSE substr({text}, 1, {max(1, max_bytes // 4)}) END"
            )
        selects.append(f"CASE WHEN {big} THEN NULL ELSE {name} END")
        cuts.append(f"CASE WHEN {big} THEN {length}::text || ':' || {shown} END")
    selects.append(f"ARRAY[{', '.join(cuts)}]::text[]")
    source = f"(\n{sql}\n) AS pg_mcp_cells({', '.join(names)})"
    if not inline:
        source = f"(SELECT {', '.join(inner)} FROM {source} OFFSET 0) AS pg_mcp_text"
    return f"SELECT {', '.join(selects)} FROM {source}", units


def _pg_type_name(name: str) -> str:
    """PostgreSQL's own type name: asyncpg calls the built-in array types `int4[]`, PostgreSQL `_int4`."""
    return "_" + name.removesuffix("[]") if name.endswith("[]") else name


def bytea_bytes_shown(max_chars: int) -> int:
    """Bytes of a bytea value shown within `max_chars` characters of hex (`\\x` and two per byte)."""
    return max(1, max_chars // 2 - 1)


def _uncap(record: asyncpg.Record, units: list[str | None]) -> tuple[Any, ...]:
    """One row of the original columns from a `_cell_capped` row; cut values become CutValue."""
    cuts = iter(record[len(units)])
    values: list[Any] = []
    for position, unit in enumerate(units):
        value = record[position]
        if unit is not None:
            cut = next(cuts)
            if cut is not None:
                total, _, prefix = cut.partition(":")
                value = CutValue(prefix, int(total), unit)
        values.append(value)
    return tuple(values)


def _query_error(
    exc: asyncpg.PostgresError, checked: CheckedQuery, executed: str, *, redact: bool = False
) -> QueryError:
    """PostgreSQL's message, with the error position mapped back onto the caller's own text.

    With `redact` (operator limits are set), a data error does not quote the value it failed on
    (`invalid input syntax for type integer: "<a hidden value>"`): it may come from data out of reach.
    """
    if isinstance(exc, asyncpg.QueryCanceledError):
        return QueryError(
            f"The query was cancelled by the server: {exc.args[0] if exc.args else exc}.",
            "It ran past the statement timeout (PG_MCP_STATEMENT_TIMEOUT). Narrow it with WHERE, "
            "aggregate instead of listing, or check its plan.",
        )
    if isinstance(exc, LOST_DURING_QUERY):
        return QueryError(
            f"PostgreSQL closed the connection during the query: {getattr(exc, 'message', None) or exc}. "
            "Nothing was changed (every statement runs in a read-only transaction that is rolled back).",
            "Try again; the next call uses a fresh connection.",
        )
    if isinstance(exc, asyncpg.LockNotAvailableError):
        return QueryError(f"{exc}.", "A table it reads is locked by another session; try again later.")
    message = getattr(exc, "message", None) or str(exc)
    detail = getattr(exc, "detail", None)
    if redact and str(getattr(exc, "sqlstate", "")).startswith(DATA_EXCEPTION_CLASS):
        message = _QUOTED_VALUE.sub('"…"', message)
        detail = _QUOTED_VALUE.sub('"…"', detail) if detail else detail
    position = _user_position(getattr(exc, "position", None), checked, executed)
    if position:
        message += f" (at line {position[0]}, column {position[1]})"
    if detail:
        message += f"\nDetail: {detail}"
    hint = getattr(exc, "hint", None)
    if isinstance(exc, asyncpg.UndefinedTableError | asyncpg.UndefinedColumnError) and not hint:
        hint = "Use list_tables and describe_table to find the exact names (quote mixed-case names)."
    return QueryError(message, hint)


#: Columns a wrapper's target list may hold: PostgreSQL allows 1,664, and the wrapper adds one.
MAX_TARGET_COLUMNS = 1_600

#: How long a call waits for a free pooled connection before it is told the server is busy.
POOL_WAIT_SECONDS = 5.0

#: How long closing waits for abandoned backends to be told to stop.
STOP_BACKENDS_SECONDS = 2.0

#: Server-side ends of a session while a statement ran (pg_terminate_backend, shutdown, crash).
LOST_DURING_QUERY = (
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.ConnectionDoesNotExistError,
)

#: SQLSTATE class of data exceptions (bad casts, out-of-range values): their messages quote the value.
DATA_EXCEPTION_CLASS = "22"
_QUOTED_VALUE = re.compile(r'"(?:[^"]|"")*"')


def _user_position(position: str | None, checked: CheckedQuery, executed: str) -> tuple[int, int] | None:
    """Convert PostgreSQL's 1-based character offset in the executed SQL to a line/column in the statement."""
    if not position or not str(position).isdigit():
        return None
    offset = int(position) - 1 - executed.index(checked.statement)
    if not 0 <= offset <= len(checked.statement):
        return None
    before = checked.statement[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def describe_target(dsn: str) -> str:
    """`user@host:port/db` for messages: never the password."""
    try:
        parts = urlsplit(dsn)
        host = parts.hostname or "localhost"
        port = parts.port or 5432
        user = unquote(parts.username or "") or "(default user)"
        database = unquote(parts.path.lstrip("/")) or user
    except ValueError:
        return "(unparseable DATABASE_URL)"
    return f"{user}@{host}:{port}/{database}"


def _unavailable(exc: BaseException, settings: Settings) -> DatabaseUnavailableError:
    """Explain a connection failure by its cause, with what to check next."""
    target = describe_target(settings.dsn)
    if isinstance(exc, asyncpg.InvalidPasswordError):
        return DatabaseUnavailableError(
            f"Authentication failed for {target}.", "Check the user name and password in DATABASE_URL."
        )
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return DatabaseUnavailableError(
            f"The database in {target} does not exist.", "Check the database name at the end of DATABASE_URL."
        )
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        text = str(exc)
        hint = "Check that the role exists and that pg_hba.conf allows it to connect from here."
        if "no encryption" in text or "SSL off" in text:
            hint = "The server requires SSL: add ?sslmode=require to DATABASE_URL."
        return DatabaseUnavailableError(f"The server refused {target}: {text}", hint)
    if isinstance(exc, asyncpg.TooManyConnectionsError):
        return DatabaseUnavailableError(
            f"The server has no free connection slots for {target}.",
            "Lower PG_MCP_POOL_MAX, close other clients, or connect through PgBouncer.",
        )
    if isinstance(exc, asyncpg.CannotConnectNowError | asyncpg.AdminShutdownError):
        return DatabaseUnavailableError(
            f"The server at {target} is starting up or shutting down.", "Try again in a few seconds."
        )
    if isinstance(exc, socket.gaierror):
        return DatabaseUnavailableError(
            f"The host in {target} could not be resolved.",
            "Check the host name in DATABASE_URL and the network.",
        )
    if isinstance(exc, ConnectionRefusedError):
        return DatabaseUnavailableError(
            f"Connection refused by {target}.",
            "Is PostgreSQL running and listening on that host and port? Check the port in DATABASE_URL.",
        )
    if isinstance(exc, TimeoutError):
        return DatabaseUnavailableError(
            f"Connecting to {target} timed out.",
            "Check the host, the port, firewalls and VPNs; raise PG_MCP_CONNECT_TIMEOUT for slow networks.",
        )
    if isinstance(exc, asyncpg.ClientConfigurationError):
        return DatabaseUnavailableError(
            f"DATABASE_URL for {target} has an invalid parameter: {_first_line(exc)}.",
            "Fix that parameter in DATABASE_URL.",
        )
    if isinstance(exc, ValueError | OverflowError):  # the driver's message may quote the URL: not shown
        return DatabaseUnavailableError(
            f"DATABASE_URL for {target} cannot be used: its host, port or parameters are malformed.",
            "Check the URL's form: postgresql://user:password@host:5432/db?sslmode=require, with special "
            "characters in the password percent-encoded.",
        )
    if isinstance(exc, ssl.SSLError) or "SSL" in str(exc):
        return DatabaseUnavailableError(
            f"The SSL connection to {target} failed: {exc}",
            "Check sslmode in DATABASE_URL (require, verify-full) and the server's certificate.",
        )
    return DatabaseUnavailableError(
        f"Cannot reach the database at {target} ({type(exc).__name__}: {_first_line(exc)}).",
        "Check DATABASE_URL and that the server is running; the next call will try again.",
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else "no details"
