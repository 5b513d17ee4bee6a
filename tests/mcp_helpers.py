"""Helpers for driving `pg-mcp` the way clients do: the official MCP client, in process or over stdio."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from factories import server_for
from mcp import Client, StdioServerParameters

ROOT = Path(__file__).resolve().parent.parent


def server_env(**extra: str) -> dict[str, str]:
    """Environment for a `pg-mcp` subprocess: no inherited settings, no .env surprises."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PG_MCP_") and key != "DATABASE_URL"
    }
    env.update(extra)
    return env


@asynccontextmanager
async def stdio_client(url: str, *args: str, **env: str) -> AsyncIterator[Client]:
    """The official MCP client talking to `python -m pg_mcp URL ARGS` over stdio, as hosts run it."""
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "pg_mcp", url, *args], env=server_env(**env), cwd=str(ROOT)
    )
    async with Client(params, read_timeout_seconds=60) as client:
        yield client


@asynccontextmanager
async def mcp_client(url: str, **overrides: Any) -> AsyncIterator[Client]:
    """The official MCP client, in process (the transport in memory), on the server `pg-mcp URL --flag value …`
    builds, with `overrides` as the flags (`statement_timeout=2`) and no environment: see `server_for`."""
    async with Client(server_for(url, **overrides), read_timeout_seconds=60) as client:
        yield client


async def fetchval(url: str, sql: str) -> Any:
    """One value from a direct connection, bypassing pg-mcp (to see what the server really did)."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def password_of(url: str) -> str:
    """The password in a URL, to prove it never shows up anywhere."""
    password = urlsplit(url).password
    assert password, "the test URLs carry a password"
    return password


def text_of(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def run_cli(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    """`pg-mcp ARGS` as a subprocess with stdin closed, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "pg_mcp", *args],
        capture_output=True, text=True, timeout=timeout, env=server_env(**env), cwd=ROOT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
