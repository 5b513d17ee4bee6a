"""The audit log (`pg_mcp.audit`): one JSON line per tool call and resource read, written at the edge."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from opentelemetry import trace

from pg_mcp.errors import GuardError, PgMcpError
from pg_mcp.server.audit_file import check_writable
from pg_mcp.server.metrics import observe_call
from pg_mcp.server.principal import current_principal

audit = logging.getLogger("pg_mcp.audit")
T = TypeVar("T")

#: Characters of a statement an audit line holds (with the full length when cut), for every outcome.
AUDIT_SQL_CHARS = 20_000


async def audited(
    tool: str,
    database: str,
    arguments: dict[str, Any],
    call: Callable[[], Awaitable[T]],
    rows: Callable[[T], tuple[int | None, bool]] = lambda _: (None, False),
) -> T:
    """Run `call`, then write its line (the caller's SQL or other arguments, duration, how it ended)
    and count it in the metrics; `rows` reads a result's row count and whether it was cut."""
    started = time.perf_counter()
    try:
        check_writable()
        result = await call()
    except PgMcpError as exc:
        _done(tool, database, arguments, started, _outcome(exc), reason=exc.message)
        raise
    except asyncio.CancelledError:  # the client cancelled it or went away: its statement was stopped
        _done(tool, database, arguments, started, "cancelled")
        raise
    except Exception as exc:
        _done(tool, database, arguments, started, f"error:{type(exc).__name__}")
        raise
    count, cut = rows(result)
    _done(tool, database, arguments, started, "ok", rows=count, cut=cut)
    return result


def audit_refusal(tool: str, database: str | None, arguments: dict[str, Any], exc: PgMcpError) -> None:
    """The line of a call refused before it could start (a database the caller may not use)."""
    _done(tool, database or "", arguments, time.perf_counter(), _outcome(exc), reason=exc.message)


def _outcome(exc: PgMcpError) -> str:
    return f"refused:{exc.rule}" if isinstance(exc, GuardError) else f"error:{type(exc).__name__}"


def _done(
    tool: str,
    database: str,
    arguments: dict[str, Any],
    started: float,
    outcome: str,
    *,
    rows: int | None = None,
    cut: bool = False,
    reason: str = "",
) -> None:
    """Record one finished call: its audit line, its metrics and the attributes of its trace span."""
    seconds = time.perf_counter() - started
    observe_call(tool, database, outcome, seconds, rows, cut)
    span = trace.get_current_span()  # the SDK's span of this request; a no-op without an exporter
    if span.is_recording():
        span.set_attributes({
            "db.system.name": "postgresql", "db.namespace": database,
            "db.operation.name": "SELECT" if "sql" in arguments else tool, "pg_mcp.outcome": outcome,
            **({"db.response.returned_rows": rows} if rows is not None else {}),
        })  # fmt: skip
    if not audit.isEnabledFor(logging.INFO):
        return
    others = {key: value for key, value in arguments.items() if key != "sql" and value is not None}
    sql = arguments.get("sql")
    if sql is not None and not isinstance(sql, str):
        sql = str(sql)
    principal = current_principal.get()
    entry: dict[str, Any] = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "tool": tool,
        "database": database,
        "sql": sql if sql is None or len(sql) <= AUDIT_SQL_CHARS else sql[:AUDIT_SQL_CHARS] + "…",
        "ms": round(seconds * 1000, 2),
        "outcome": outcome,
        "rows": rows,
        "reason": reason or None,
    }
    if sql is not None and len(sql) > AUDIT_SQL_CHARS:
        entry["sql_length"] = len(sql)
    if sql is None or others:
        entry["arguments"] = others
    if principal is not None:
        entry["principal"] = principal.name
        entry["issuer"] = principal.issuer
        entry["client"] = principal.address
    audit.info("%s", json.dumps(entry, ensure_ascii=False, default=str))
