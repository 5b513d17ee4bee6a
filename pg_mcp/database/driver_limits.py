"""The one use of asyncpg beyond its public API, isolated: a row limit on the Execute message.

asyncpg's `PreparedStatement.fetchrow()` sends Execute with a row limit of 1; no public method takes
another limit, so fetching "at most n rows" would need a portal (a cursor: one more round trip). The
private method behind `fetchrow()` takes the limit. `fetch_at_most` uses it when this asyncpg has it
with the expected signature, and says None otherwise, so that callers fall back to a cursor.
`tests/test_db_layer.py` checks it against the installed asyncpg, so an upgrade that changes it shows.
"""

from __future__ import annotations

from typing import Any

import asyncpg

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
