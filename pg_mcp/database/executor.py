"""The asyncpg pool and the only code that executes SQL.

Every statement runs inside a `READ ONLY` transaction that is always rolled back, with
`statement_timeout`, `lock_timeout` and `idle_in_transaction_session_timeout` in force (for the
session on a connection straight to the server, for each transaction through a pooler, kept in
force after a failed statement either way: see `Database._begin_sql`). Each call is one `Session`
(`Database.call`): extended protocol (one statement per message), rows pulled through a cursor in
chunks so that neither more rows than the row cap nor much more data than the result-byte budget
ever reaches this process (`pg_mcp.database.session`). Connections are reset (FINISH_SQL) before
they return to the pool (beside the answer, which need not wait for it), and asyncpg's statement
cache is off so no server-side prepared statement outlives a call (and PgBouncer in transaction
mode works). A call answers at its deadline even when its backend does not: the connection is then
abandoned, not reset (see `Database._abandon`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from pg_mcp.config import Settings
from pg_mcp.database.codecs import BINARY_DECODERS, refuse_encoding
from pg_mcp.database.driver_errors import (
    CONNECTION_LOST,
    describe_target,
)
from pg_mcp.database.driver_limits import CAN_KEEP_NAMED, underlying
from pg_mcp.database.endpoint import Endpoint
from pg_mcp.database.session import Kept, QueryResult, Session, SessionLimits
from pg_mcp.database.turns import Turn, Turns, current_caller
from pg_mcp.errors import DatabaseUnavailableError, QueryError, ServerBusyError
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

#: Settings pinned for every call: how the statement is read (strings, casts, NULL comparison), planned
#: (a database default of geqo = off and collapse limits of 40 makes planning take gigabytes) and
#: printed (dates, intervals, floats, bytea), whatever a database or role default says.
PINNED_SETTINGS = (
    ("standard_conforming_strings", "on"),
    ("search_path", '"$user", public'),
    ("transform_null_equals", "off"),
    ("array_nulls", "on"),
    ("geqo", "on"),
    ("geqo_threshold", "12"),
    ("join_collapse_limit", "8"),
    ("from_collapse_limit", "8"),
    ("constraint_exclusion", "partition"),
    ("plan_cache_mode", "auto"),
    ("datestyle", "ISO, MDY"),
    ("intervalstyle", "postgres"),
    ("extra_float_digits", "1"),
    ("bytea_output", "hex"),
    ("xmloption", "content"),
    ("row_security", "on"),
)

#: What makes the server send its rewritten parse tree of each prepared statement to this client, as a
#: LOG message (`pg_mcp.guard.analysed` reads it), in one line. Printing is switched on last, so that
#: these statements themselves are not printed.
ANALYSIS_SETTINGS = (
    " SET LOCAL debug_pretty_print = off; SET LOCAL client_min_messages = log;"
    " SET LOCAL debug_print_rewritten = on;"
)

#: Ends every call in one round trip: nothing a statement did to the session survives it (on a connection
#: straight to the server, the session's own settings are set again after it: `Database._settle_sql`).
FINISH_SQL = (
    "ROLLBACK; RESET ALL; RESET ROLE; RESET SESSION AUTHORIZATION; CLOSE ALL; UNLISTEN *; DEALLOCATE ALL; "
    "SELECT pg_advisory_unlock_all();"
)


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
        #: Whether the role may keep the analysis out of the server's log (`SET log_min_messages`).
        self._may_quiet_analysis = False
        #: What each connection straight to the server keeps between calls (`Kept`); none through a pooler.
        self._kept: dict[asyncpg.Connection, Kept] = {}
        #: Background requests to end backends whose calls were abandoned at their deadline.
        self._stoppers: set[asyncio.Task[None]] = set()
        #: Resets still running after their call answered (see `_finish_soon`).
        self._finishing: set[asyncio.Task[None]] = set()
        #: One turn per pooled connection, shared fairly between callers (see `turns`).
        self._turns = Turns(settings.pool_max, reserved=SHORT_TURNS, share=settings.pool_share)
        self._turn_of: dict[asyncpg.Connection, Turn] = {}
        #: How long the latest BEGINs took, from sending to the answer: the fastest is the round trip.
        self._begin_seconds: deque[float] = deque(maxlen=ROUND_TRIP_WINDOW)
        #: Readiness's own connection (see `probe`).
        self._probe_conn: asyncpg.Connection | None = None
        #: The URL, tunnel and password source of every connection (see `endpoint`).
        self._endpoint = Endpoint(settings)
        self._probe_lock = asyncio.Lock()

    @property
    def _session_limits(self) -> SessionLimits:
        s = self.settings
        return SessionLimits(
            s.max_cell_chars,
            s.max_result_bytes,
            redact=s.access.active,
            round_trip=self._skippable_round_trip(),
        )

    def _skippable_round_trip(self) -> float:
        """The database's round trip in seconds (the fastest of the latest BEGINs), when a session may
        save one by letting the server print trees nobody reads; 0 when those trees would also go into
        the server's log (the role may not keep them out), which is worth a round trip."""
        if not self._may_quiet_analysis or not self._begin_seconds:
            return 0.0
        return min(self._begin_seconds)

    def pool_usage(self) -> tuple[int, int]:
        """Open and idle connections of the pool (0, 0 before it exists), for the metrics."""
        pool = self._pool
        return (pool.get_size(), pool.get_idle_size()) if pool is not None else (0, 0)

    async def probe(self, timeout: float) -> None:
        """`SELECT 1` on a connection of its own, outside the pool (readiness must not wait behind calls),
        kept open between probes; raises DatabaseUnavailableError saying why, or that it timed out."""
        async with self._probe_lock:
            try:
                async with asyncio.timeout(timeout):
                    if self._probe_conn is None or self._probe_conn.is_closed():
                        self._probe_conn = await asyncpg.connect(
                            self.settings.dsn,
                            **await self._endpoint.connect_args(),
                            timeout=timeout,
                            statement_cache_size=0,
                            server_settings={"application_name": "pg-mcp probe"},
                        )
                    await self._probe_conn.fetchval("SELECT 1")
            except (*CONNECT_ERRORS, *CONNECTION_LOST) as exc:
                if self._probe_conn is not None:
                    self._probe_conn.terminate()
                    self._probe_conn = None
                if isinstance(exc, TimeoutError):
                    raise DatabaseUnavailableError(
                        f"{describe_target(self.settings.dsn)} did not answer within {timeout:g} s.",
                        "Check the database server and the network.",
                    ) from None
                raise self._endpoint.unavailable(exc) from None

    async def connect(self) -> None:
        """Create the pool now (raising DatabaseUnavailableError) instead of at the first call."""
        await self._get_pool()

    async def close(self) -> None:
        """Close the pool; resets still running finish, and backends of abandoned calls are asked to stop,
        first (briefly, at most 2 s)."""
        if self._finishing:
            await asyncio.wait(list(self._finishing), timeout=self.settings.connect_timeout)
        if self._stoppers:
            await asyncio.wait(list(self._stoppers), timeout=STOP_BACKENDS_SECONDS)
        for task in list(self._stoppers):
            task.cancel()
        if self._probe_conn is not None:
            self._probe_conn.terminate()
            self._probe_conn = None
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), timeout=5)
            except (TimeoutError, Exception):
                pool.terminate()
        await self._endpoint.close()

    @asynccontextmanager
    async def call(
        self, *, short: bool, analysed: bool = False, jit: bool = True, repeatable: bool = False
    ) -> AsyncIterator[Session]:
        """One call: a read-only transaction on a pooled connection, rolled back afterwards, as a Session.

        `short`: the call may take a turn kept for short calls (`turns`); a statement found expensive
        there raises NeedsGeneralTurn (`Session.keep_turn_for`), to be run again with `short=False`.
        `analysed`: the server sends its rewritten parse tree of each statement prepared until the first
        is explained or run (`Session.analyse`). `jit=False` for this package's own short catalog
        queries (compiling one takes longer than running it; asyncpg's statement cache is off, so a
        compiled plan would never be reused). `repeatable`: every query of the call sees one snapshot.
        """
        async with self._read_only(jit, analysed, short=short, repeatable=repeatable) as conn:
            session = Session(
                conn,
                self._session_limits,
                short_only=self._turn_of[conn].short_only,
                analysing=analysed,
                kept=self._kept.get(underlying(conn)),
            )
            try:
                yield session
            finally:
                session.close()

    async def run_query(self, checked: CheckedQuery) -> QueryResult:
        """Run `checked.sql` as given, nothing judged: the layers below the guard on their own (their
        tests, and benchmarks of them). Served statements go through `call` with their analysis judged."""
        async with self.call(short=False) as session:
            return await session.run((await session.analyse(checked.sql, checked)).prepared(), checked)

    async def fetch_fixed(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """Run one of this package's own catalog queries (fixed text, `$n` parameters), without JIT."""
        async with self.call(short=True, jit=False) as session:
            return await session.fetch(sql, *args)

    @asynccontextmanager
    async def _read_only(
        self, jit: bool = True, analysed: bool = False, *, short: bool, repeatable: bool = False
    ) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection inside a read-only transaction that is rolled back afterwards (`short`:
        the call may take a turn kept for short calls, see `turns`).

        A connection found dead before anything ran on it (server restart, network cut) is
        replaced once, transparently, so the first call after an outage succeeds. When the
        deadline fires (or the caller goes away) the connection is abandoned, not reset: its
        backend may be running a built-in that never checks for interrupts.
        """
        deadline = self.settings.statement_timeout + self.settings.connect_timeout
        began = False
        try:
            async with asyncio.timeout(deadline) as timer:
                pool, conn = await self._begin(jit, analysed, short, repeatable)
                began = True
                cancelled = False
                try:
                    yield conn
                except asyncio.CancelledError:
                    cancelled = True
                    raise
                except CONNECTION_LOST as exc:
                    await self._discard_pool(pool)
                    raise self._endpoint.unavailable(exc) from None
                finally:
                    if cancelled:
                        await self._abandon(pool, conn, at_deadline=timer.expired())
                    else:
                        self._finish_soon(pool, conn)
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

    async def _begin(
        self, jit: bool, analysed: bool, short: bool, repeatable: bool = False
    ) -> tuple[asyncpg.Pool, asyncpg.Connection]:
        for attempt in (1, 2):
            pool = await self._get_pool()
            conn: asyncpg.Connection | None = None
            try:
                conn = await self._acquire(pool, short)
                started = time.perf_counter()
                await conn.execute(self._begin_sql(conn, jit, analysed, repeatable))
                self._begin_seconds.append(time.perf_counter() - started)
                return pool, conn
            except asyncio.CancelledError:  # the deadline fired while BEGIN waited for the backend
                if conn is not None:
                    await self._abandon(pool, conn)
                raise
            except CONNECTION_LOST as exc:
                if conn is not None:
                    await self._release(pool, conn)
                await self._discard_pool(pool)
                if attempt == 2:
                    raise self._endpoint.unavailable(exc) from None
                log.warning("database connection lost (%s); reconnecting", type(exc).__name__)
            except CONNECT_ERRORS as exc:  # the pool opened a connection, and the server refused it
                if conn is not None:
                    await self._release(pool, conn)
                if attempt == 1 and self._endpoint.password_rotated(exc):
                    continue  # asked again, the password source gives the new password
                raise self._endpoint.unavailable(exc) from None
        raise AssertionError("unreachable")

    async def _acquire(self, pool: asyncpg.Pool, short: bool) -> asyncpg.Connection:
        """A free connection, taking a turn first (`turns`: fair between callers, with room for short
        calls), waiting at most POOL_WAIT_SECONDS: a call that cannot get one is told the server is busy
        instead of queueing for as long as the statements ahead of it run."""
        try:
            async with asyncio.timeout(POOL_WAIT_SECONDS):
                turn = await self._turns.acquire(current_caller.get(), short=short)
        except TimeoutError:
            raise ServerBusyError(
                f"The server is busy: the database connections this caller may use "
                f"({self._turns.share} of {self.settings.pool_max}) are running queries, and none came free "
                f"within {POOL_WAIT_SECONDS:g} s.",
                "Try again in a moment, or run fewer slow queries at once; an operator can raise "
                "PG_MCP_POOL_MAX or PG_MCP_POOL_SHARE.",
            ) from None
        try:  # a turn means a free connection, or room to open one (bounded by connect_timeout)
            conn: asyncpg.Connection = await pool.acquire()
        except BaseException:
            self._turns.release(turn)
            raise
        self._turn_of[conn] = turn
        return conn

    async def _release(self, pool: asyncpg.Pool, conn: asyncpg.Connection) -> None:
        """Return a connection and its turn; if its reset fails, asyncpg has already closed it, which is
        all we want."""
        try:
            await pool.release(conn)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, *CONNECTION_LOST) as exc:
            log.debug("connection discarded on release: %s", type(exc).__name__)
        finally:
            turn = self._turn_of.pop(conn, None)
            if turn is not None:
                self._turns.release(turn)

    def _finish_soon(self, pool: asyncpg.Pool, conn: asyncpg.Connection) -> None:
        """Reset the connection beside the answer: the call's result is complete, so it need not wait a
        round trip for the rollback; the connection returns to the pool only once reset (or closed),
        within connect_timeout, else it is abandoned."""
        task = asyncio.get_running_loop().create_task(self._finish_within(pool, conn))
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    async def _finish_within(self, pool: asyncpg.Pool, conn: asyncpg.Connection) -> None:
        try:
            async with asyncio.timeout(self.settings.connect_timeout):
                await self._finish(pool, conn)
        except TimeoutError:  # `_finish` has abandoned the connection
            log.warning(
                "a connection's reset got no answer within %g s; closed", self.settings.connect_timeout
            )

    async def _finish(self, pool: asyncpg.Pool, conn: asyncpg.Connection) -> None:
        """Roll back, reset and return the connection; one in an unknown state is closed instead of reused."""
        try:
            if not conn.is_closed():
                direct = underlying(conn) in self._kept
                await conn.execute(FINISH_SQL + (self._settle_sql(conn) if direct else ""))
        except (asyncpg.PostgresError, asyncpg.InterfaceError, *CONNECTION_LOST):
            # A connection lost mid-call may already be back in asyncpg's hands: nothing left to close.
            with contextlib.suppress(asyncpg.InterfaceError):
                conn.terminate()
        except asyncio.CancelledError:  # the deadline fired while the reset waited for the backend
            await self._abandon(pool, conn)
            raise
        await self._release(pool, conn)

    async def _abandon(
        self, pool: asyncpg.Pool, conn: asyncpg.Connection, *, at_deadline: bool = False
    ) -> None:
        """Close a connection without waiting for its backend, and ask the server to end that backend.

        FINISH_SQL would wait for the running statement, which may never end; closing the socket
        returns at once and the pool opens a fresh connection for the next call. asyncpg's own
        cancel request dies with the connection, so the backend is terminated in the background
        instead (the same role may signal its own backends; without that privilege it just logs).
        """
        pid = conn.get_server_pid()
        conn.terminate()
        await self._release(pool, conn)
        task = asyncio.get_running_loop().create_task(self._stop_backend(pid, at_deadline))
        self._stoppers.add(task)
        task.add_done_callback(self._stoppers.discard)

    async def _stop_backend(self, pid: int, at_deadline: bool = False) -> None:
        """`pg_terminate_backend` for an abandoned call's backend; best effort, never raises."""
        try:
            async with asyncio.timeout(self.settings.connect_timeout):
                conn = await asyncpg.connect(  # not the pool: it may be closing, at shutdown
                    self.settings.dsn, statement_cache_size=0, **await self._endpoint.connect_args()
                )
                try:  # it may be closing, at shutdown
                    stopped = await conn.fetchval(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = $1", pid
                    )
                finally:
                    await conn.close()
        except (TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, *CONNECTION_LOST) as exc:
            log.info("abandoned backend %d (deadline or cancelled call); not terminated: %s", pid, exc)
            return
        if stopped is None:  # it ended with its connection: the usual case for a call cut between steps
            log.debug("abandoned backend %d had already ended", pid)
        elif stopped:
            # past its deadline is worth a warning; a call its client cancelled (its audit line says so),
            # or that the server ended as it stopped, is what was asked for
            log.log(
                logging.WARNING if at_deadline else logging.DEBUG,
                "abandoned backend %d was still running (%s): terminated",
                pid,
                "past its deadline" if at_deadline else "the call was cancelled",
            )
        else:
            log.warning(
                "abandoned backend %d is still running and the role may not end it: it stops at its "
                "statement_timeout, or at idle_in_transaction_session_timeout",
                pid,
            )

    def _begin_sql(
        self, conn: asyncpg.Connection, jit: bool, analysed: bool, repeatable: bool = False
    ) -> str:
        """One message that opens the call's read-only transaction with its limits.

        Every setting that changes how a statement is read, planned or printed, and that a database or
        role default could change, is pinned (PINNED_SETTINGS), and the limits are set. On a connection
        straight to the server that was done for the session when the connection opened, and again by
        each reset (`_settle_sql`), so the transaction only says what differs between calls.

        Through a pooler nothing is set for the session, so that nothing reaches the next client of the
        server connection: the settings are set for the transaction, and the savepoint after them keeps
        them in force after a failed statement. PostgreSQL undoes a failed transaction's settings at
        once, so without it an aborted transaction (one cancelled by statement_timeout, say) would fall
        back to the session's idle_in_transaction_session_timeout, 0 by default, and wait for its
        ROLLBACK for ever, as it does when a network partition keeps the ROLLBACK from arriving. A
        failure undoes only what came after the savepoint.

        With `analysed`, the server sends its rewritten parse tree of each statement prepared (see
        `Session.analyse`), and keeps it out of its own log when the role may say so; printing starts
        last, so that none of these statements is printed.
        """
        pooled = underlying(conn) not in self._kept
        sql = f"BEGIN TRANSACTION{' ISOLATION LEVEL REPEATABLE READ' if repeatable else ''} READ ONLY;"
        if pooled:
            sql += "".join(f" SET LOCAL {name} = {value};" for name, value in self._settings(conn))
        if not jit:
            sql += " SET LOCAL jit = off;"
        if pooled:
            sql += " SAVEPOINT pg_mcp_call;"
        if analysed:
            sql += (
                " SET LOCAL log_min_messages = fatal;" if self._may_quiet_analysis else ""
            ) + ANALYSIS_SETTINGS
        return sql

    def _settings(self, conn: asyncpg.Connection) -> list[tuple[str, str]]:
        """The pinned settings and the limits, as every call runs with them."""
        s = self.settings
        settings = [
            *PINNED_SETTINGS,
            ("statement_timeout", str(int(s.statement_timeout * 1000))),
            ("lock_timeout", str(int(s.lock_timeout * 1000))),
            ("idle_in_transaction_session_timeout", str(int(s.idle_in_transaction_timeout * 1000))),
        ]
        if self._may_set_temp_file_limit:  # the Settings pattern admits only digits, a unit and -1
            settings.append(("temp_file_limit", f"'{s.temp_file_limit}'"))
        if conn.get_server_version().major >= 14:  # stop work for a client that went away
            settings.append(("client_connection_check_interval", "1000"))
        return settings

    def _settle_sql(self, conn: asyncpg.Connection) -> str:
        """The settings and limits for the session of a connection straight to the server: set when it
        opens, and after each reset's RESET ALL (`_finish`)."""
        return "".join(f" SET {name} = {value};" for name, value in self._settings(conn))

    async def _init_connection(self, conn: asyncpg.Connection) -> None:
        """Type codecs; whether this role may set temp_file_limit and log_min_messages; and whether the
        connection reaches the server itself, with no pooler in between (asked once per connection)."""
        await _set_codecs(conn)
        facts = await conn.fetchrow(
            CONNECTION_FACTS_SQL if conn.get_server_version().major >= 15 else CONNECTION_FACTS_SQL_14
        )
        self._may_set_temp_file_limit = bool(facts["temp_file_limit"])
        self._may_quiet_analysis = bool(facts["log_min_messages"])
        self._kept = {known: kept for known, kept in self._kept.items() if not known.is_closed()}
        # A pooler hands out keys of its own instead of the server's (BackendKeyData), so the backend
        # the connection's key names is the one answering only on a connection straight to it.
        if CAN_KEEP_NAMED and facts["pid"] == conn.get_server_pid():
            await conn.execute(self._settle_sql(conn))
            self._kept[conn] = Kept()

    @property
    def analysis_logged(self) -> bool:
        """Whether the server writes each analysed statement's tree to its log (the role may not stop it)."""
        return not self._may_quiet_analysis

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
        """The pool, its first connections open; a refused password from a password source is asked for
        once more (it may have rotated since it was read)."""
        try:
            return await self._open_pool()
        except asyncpg.InvalidPasswordError as exc:
            if not self._endpoint.password_rotated(exc):
                raise self._endpoint.unavailable(exc) from None
        try:
            return await self._open_pool()
        except asyncpg.InvalidPasswordError as exc:
            raise self._endpoint.unavailable(exc) from None

    async def _open_pool(self) -> asyncpg.Pool:
        s = self.settings
        try:
            pool: asyncpg.Pool = await asyncpg.create_pool(
                s.dsn,
                **await self._endpoint.connect_args(),
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
            if isinstance(exc, asyncpg.InvalidPasswordError):
                raise
            raise self._endpoint.unavailable(exc) from None
        return pool

    async def _discard_pool(self, pool: asyncpg.Pool) -> None:
        async with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.terminate()


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


#: What a connection's role may set of the superuser-only parameters pg-mcp uses (PostgreSQL 15 can
#: grant them: GRANT SET ON PARAMETER), and the pid of the backend that answers.
CONNECTION_FACTS_SQL = (
    "SELECT has_parameter_privilege(current_user, 'temp_file_limit', 'SET') AS temp_file_limit,"
    " has_parameter_privilege(current_user, 'log_min_messages', 'SET') AS log_min_messages,"
    " pg_backend_pid() AS pid"
)
CONNECTION_FACTS_SQL_14 = (
    "SELECT current_setting('is_superuser') = 'on' AS temp_file_limit,"
    " current_setting('is_superuser') = 'on' AS log_min_messages, pg_backend_pid() AS pid"
)


async def _reset_connection(conn: asyncpg.Connection) -> None:
    """The pool's own reset: nothing left to do, `_finish` has already run FINISH_SQL."""


#: BEGINs whose durations estimate the round trip: a few fast ones among calls slowed by load suffice.
ROUND_TRIP_WINDOW = 16
#: How long a call waits for a free pooled connection before it is told the server is busy.
POOL_WAIT_SECONDS = 5.0
#: Turns kept for short calls (catalog reads, cheap statements), beside the general ones.
SHORT_TURNS = 1
#: Errors opening a connection (besides a lost one), each explained by `unavailable`.
CONNECT_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError, ssl.SSLError, ValueError)


#: How long closing waits for abandoned backends to be told to stop.
STOP_BACKENDS_SECONDS = 2.0
