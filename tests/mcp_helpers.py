"""Helpers for driving `pg-mcp` the way clients do: the official MCP client over stdio."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
async def mcp_client(url: str, *args: str, **env: str) -> AsyncIterator[Client]:
    """The official MCP client talking to `python -m pg_mcp URL` over stdio."""
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "pg_mcp", url, *args], env=server_env(**env), cwd=str(ROOT)
    )
    async with Client(params, read_timeout_seconds=60) as client:
        yield client


def password_of(url: str) -> str:
    """The password in a URL, to prove it never shows up anywhere."""
    password = urlsplit(url).password
    assert password, "the test URLs carry a password"
    return password


def text_of(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)
