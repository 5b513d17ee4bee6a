"""The uses of asyncpg beyond its public API, isolated here, each with a fallback or a test.

- A row limit on the Execute message. asyncpg's `PreparedStatement.fetchrow()` sends Execute with a
  row limit of 1; no public method takes another limit, so fetching "at most n rows" would need a
  portal (a cursor: one more round trip). The private method behind `fetchrow()` takes the limit.
  `fetch_at_most` uses it when this asyncpg has it with the expected signature, and says None
  otherwise, so that callers fall back to a cursor. It is also the way to run a statement prepared
  in an earlier turn of the same pooled connection (`Kept`), which the public methods refuse.
- A named statement that asyncpg must never close. asyncpg closes a named statement on the server
  once its Python object is gone, at the next statement it prepares on that connection: a round
  trip, and for a name used again, the close of the newer statement. The server drops pg-mcp's named
  statements itself (`DEALLOCATE ALL` ends every call), so `never_closed` tells asyncpg the statement
  is still in use.
- The connection behind a pool's proxy, which outlives each turn (`underlying`).

`tests/test_db_layer.py` checks each against the installed asyncpg, so an upgrade that changes one shows.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from asyncpg.protocol.protocol import PreparedStatementState

#: asyncpg's name-mangled `PreparedStatement.__bind_execute(args, limit, timeout)`.
_BIND_EXECUTE = "_PreparedStatement__bind_execute"


async def fetch_at_most(
    statement: asyncpg.prepared_stmt.PreparedStatement, limit: int, args: tuple[Any, ...] = ()
) -> list[Any] | None:
    """At most `limit` rows of the prepared statement, bound to `args`, in one round trip; None when
    this asyncpg cannot."""
    bind_execute = getattr(statement, _BIND_EXECUTE, None)
    if bind_execute is None:
        return None
    rows: list[Any] = await bind_execute(args, limit, None)
    return rows


#: Whether this asyncpg counts the users of a statement's state (`never_closed` can work), and has the
#: row-limited execute (`fetch_at_most`), which also runs a statement prepared in an earlier turn.
CAN_KEEP_NAMED = (
    hasattr(PreparedStatementState, "attach")
    and hasattr(PreparedStatementState, "detach")
    and hasattr(asyncpg.prepared_stmt.PreparedStatement, _BIND_EXECUTE)
)


def never_closed(
    statement: asyncpg.prepared_stmt.PreparedStatement,
) -> asyncpg.prepared_stmt.PreparedStatement:
    """`statement`, which asyncpg will now never close on the server (call only when CAN_KEEP_NAMED)."""
    statement._state.attach()
    return statement


def underlying(conn: asyncpg.Connection) -> asyncpg.Connection:
    """The connection itself, behind the pool's proxy handed out for one turn."""
    inner = getattr(conn, "_con", None)
    return inner if isinstance(inner, asyncpg.Connection) else conn
