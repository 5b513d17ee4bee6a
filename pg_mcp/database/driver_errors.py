"""Driver and server errors mapped to what a caller is told: a table of connection failures, and
PostgreSQL's own message for a failed statement with its position in the caller's text."""

from __future__ import annotations

import difflib
import re
import socket
import ssl
from collections.abc import Callable
from urllib.parse import parse_qs, unquote, urlsplit

import asyncpg

from pg_mcp.errors import DatabaseUnavailableError, QueryError
from pg_mcp.guard import CheckedQuery

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


def query_error(
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
    if is_recovery_conflict(exc):
        detail = getattr(exc, "detail", None)
        return QueryError(
            "The replica cancelled the query to apply changes from the primary (a recovery conflict). "
            "Nothing was changed." + (f"\nDetail: {detail}" if detail else ""),
            "Retry, or run long queries on the primary (or raise max_standby_streaming_delay on the replica).",
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


def is_recovery_conflict(exc: BaseException) -> bool:
    """A hot standby cancelled the statement to replay the primary's changes (rows a VACUUM removed,
    a lock, a dropped tablespace): SQLSTATE 40001 (40P01 for a buffer deadlock) with PostgreSQL's
    "canceling statement due to conflict with recovery", or the connection ended with "terminating
    connection due to conflict with recovery" (what PostgreSQL does when the statement runs inside a
    savepoint, as every call does)."""
    if not isinstance(exc, (asyncpg.SerializationError, asyncpg.DeadlockDetectedError, *LOST_DURING_QUERY)):
        return False
    message = getattr(exc, "message", None) or str(exc)
    return RECOVERY_CONFLICT_TEXT in message


#: The English text of every recovery-conflict cancellation; SQLSTATE 40001 alone also means a
#: serialization failure of a SERIALIZABLE transaction, which a primary can raise too.
RECOVERY_CONFLICT_TEXT = "due to conflict with recovery"


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
    """`user@host:port/db` for messages (`user@h1:p1,h2:p2/db` for a list of hosts, given in the URL's
    host part or its `host` and `port` parameters, as asyncpg reads them): never the password."""
    try:
        parts = urlsplit(dsn)
        user = unquote(parts.username or "") or "(default user)"
        database = unquote(parts.path.lstrip("/")) or user
        query = parse_qs(parts.query)
        hostspec = unquote(parts.netloc.rpartition("@")[2])
        ports = [""]  # asyncpg reads the `port` parameter only for hosts given as the `host` parameter
        if not hostspec:
            hostspec = query.get("host", ["localhost"])[-1]
            ports = query.get("port", [""])[-1].split(",")
        hosts = [
            _host_and_port(spec, ports[min(i, len(ports) - 1)] or "5432")
            for i, spec in enumerate(hostspec.split(","))
        ]
    except ValueError:
        return "(unparseable DATABASE_URL)"
    return f"{user}@{','.join(hosts)}/{database}"


def _host_and_port(spec: str, default_port: str) -> str:
    """`host:port` for one entry of a host list: `host`, `host:port`, `[v6]` or `[v6]:port`."""
    if spec.startswith("["):
        host, _, rest = spec.partition("]")
        host, port = f"{host}]", rest.removeprefix(":")
    else:
        host, _, port = spec.partition(":")
    port = port or default_port
    if not port.isdigit():
        raise ValueError("not a port")
    return f"{host.lower() or 'localhost'}:{port}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else "no details"


def _refused(exc: BaseException, target: str) -> tuple[str, str]:
    text = str(exc)
    hint = "Check that the role exists and that pg_hba.conf allows it to connect from here."
    if "no encryption" in text or "SSL off" in text:
        hint = "The server requires SSL: add ?sslmode=require to DATABASE_URL."
    return f"The server refused {target}: {text}", hint


#: The connection parameters a DATABASE_URL may carry (asyncpg's, as libpq names them): any other
#: parameter is sent to the server as a setting, so a misspelt one is refused by the server.
URL_PARAMETERS = (
    "host", "port", "user", "password", "passfile", "dbname", "database", "options", "sslmode",
    "sslrootcert", "sslcert", "sslkey", "sslpassword", "sslcrl", "sslnegotiation", "ssl_min_protocol_version",
    "ssl_max_protocol_version", "target_session_attrs", "krbsrvname", "gsslib", "application_name",
    "connect_timeout", "service",
)  # fmt: skip


def _unknown_parameter(exc: BaseException, target: str) -> tuple[str, str]:
    """A URL parameter the driver does not know reaches the server as a setting, which refuses it."""
    text = _first_line(exc)
    match = re.search(r'unrecognized configuration parameter "([^"]+)"', text)
    name = match.group(1) if match else ""
    close = difflib.get_close_matches(name, URL_PARAMETERS, n=1, cutoff=0.6)
    if close:
        return (
            f"DATABASE_URL for {target} has the parameter {name}, which is not a connection parameter.",
            f"Did you mean {close[0]}? (A parameter of the URL that is not one is sent to the server as a setting.)",
        )
    return (
        f"The server at {target} refused a setting in DATABASE_URL: {text}.",
        "Remove that parameter from DATABASE_URL, or check its spelling against the server's settings.",
    )


#: Why a connection could not be made, first match wins: (exception types, message and hint for `target`).
CONNECT_FAILURES: tuple[tuple[tuple[type[BaseException], ...], Callable[[BaseException, str], tuple[str, str]]], ...] = (
    ((asyncpg.InvalidPasswordError,), lambda _, target: (
        f"Authentication failed for {target}.", "Check the user name and password in DATABASE_URL.")),
    ((asyncpg.InvalidCatalogNameError,), lambda _, target: (
        f"The database in {target} does not exist.", "Check the database name at the end of DATABASE_URL.")),
    ((asyncpg.InvalidAuthorizationSpecificationError,), _refused),
    ((asyncpg.UndefinedObjectError,), _unknown_parameter),
    ((asyncpg.TooManyConnectionsError,), lambda _, target: (
        f"The server has no free connection slots for {target}.",
        "Lower PG_MCP_POOL_MAX, close other clients, or connect through PgBouncer.")),
    ((asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError), lambda _, target: (
        f"The server at {target} is starting up or shutting down.", "Try again in a few seconds.")),
    ((socket.gaierror,), lambda _, target: (
        f"The host in {target} could not be resolved.", "Check the host name in DATABASE_URL and the network.")),
    ((ConnectionRefusedError,), lambda _, target: (
        f"Connection refused by {target}.",
        "Is PostgreSQL running and listening on that host and port? Check the port in DATABASE_URL.")),
    ((TimeoutError,), lambda _, target: (
        f"Connecting to {target} timed out.",
        "Check the host, the port, firewalls and VPNs; raise PG_MCP_CONNECT_TIMEOUT for slow networks.")),
    ((asyncpg.ClientConfigurationError,), lambda exc, target: (
        f"DATABASE_URL for {target} has an invalid parameter: {_first_line(exc)}.", "Fix that parameter in DATABASE_URL.")),
    ((ssl.SSLCertVerificationError,), lambda exc, target: (  # also a ValueError: before that rule
        f"TLS: the server's certificate at {target} was not accepted ({getattr(exc, 'verify_message', None) or _first_line(exc)}).",
        "Check sslrootcert (the CA that signed the server's certificate), and with sslmode=verify-full that the "
        "host in DATABASE_URL is a name the certificate carries.")),
    ((ssl.SSLError,), lambda exc, target: (
        f"TLS: the connection to {target} failed ({_first_line(exc)}).",
        "Check sslmode in DATABASE_URL (require, verify-ca, verify-full), sslrootcert, and the client "
        "certificate and key (sslcert, sslkey) if the server asks for one.")),
    ((ValueError, OverflowError), lambda _, target: (  # the driver's message may quote the URL: not shown
        f"DATABASE_URL for {target} cannot be used: its host, port or parameters are malformed.",
        "Check the URL's form: postgresql://user:password@host:5432/db?sslmode=require, with special "
        "characters in the password percent-encoded.")),
)  # fmt: skip


def unavailable(exc: BaseException, dsn: str) -> DatabaseUnavailableError:
    """Explain a connection failure by its cause, with what to check next."""
    target = describe_target(dsn)
    for kinds, explain in CONNECT_FAILURES:
        if isinstance(exc, kinds):
            return DatabaseUnavailableError(*explain(exc, target))
    if "SSL" in str(exc):
        return DatabaseUnavailableError(*dict(CONNECT_FAILURES)[(ssl.SSLError,)](exc, target))
    return DatabaseUnavailableError(
        f"Cannot reach the database at {target} ({type(exc).__name__}: {_first_line(exc)}).",
        "Check DATABASE_URL and that the server is running; the next call will try again.",
    )
