"""PostgreSQL's own analysis of a statement, read the way the executor reads it, for tests of the verdict."""

from __future__ import annotations

import contextlib

import asyncpg

from pg_mcp.database.executor import ANALYSIS_SETTINGS
from pg_mcp.database.session import ANALYSIS_MESSAGE


async def analysis_of(url: str, sql: str) -> str:
    """The rewritten parse tree the server sends when `sql` is prepared (nothing is planned or run)."""
    conn = await asyncpg.connect(url)
    trees: list[str] = []
    conn.add_log_listener(
        lambda _, message: (
            trees.append(str(message.detail)) if str(message.message).startswith(ANALYSIS_MESSAGE) else None
        )
    )
    try:
        await conn.execute("BEGIN TRANSACTION READ ONLY;" + ANALYSIS_SETTINGS)
        trees.clear()
        with contextlib.suppress(asyncpg.InternalClientError):  # a pseudo-type result (anyarray): analysed
            await conn.prepare(sql)
        await conn.execute("ROLLBACK")
    finally:
        await conn.close()
    assert trees, "the server sent no analysis"
    return trees[0]
