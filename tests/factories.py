"""One way to build what tests need from a database URL: settings, a Database, a DatabaseContext, a server;
and statements for the database layer on its own.

Every setting is given explicitly, so none comes from the process environment (or .env); nothing here changes it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mcp import Client

from pg_mcp.config import Settings, load_config, single_database
from pg_mcp.database.executor import Database
from pg_mcp.explore import DatabaseContext
from pg_mcp.guard import CheckedQuery
from pg_mcp.server import build_server
from pg_mcp.server.app import PgMcpServer

#: Every setting at its default, passed explicitly so that no PG_MCP_* variable of the test run counts.
_DEFAULTS: dict[str, Any] = {name: field.default for name, field in Settings.model_fields.items()}


def settings_for(url: str, **overrides: Any) -> Settings:
    """The settings `pg-mcp URL --flag value …` would have, without the environment or a .env file."""
    if unknown := overrides.keys() - _DEFAULTS.keys():
        raise TypeError(f"not settings: {', '.join(sorted(unknown))}")  # Settings would ignore them
    return Settings(**{**_DEFAULTS, "database_url": url, **overrides})


def database_for(url: str, **overrides: Any) -> Database:
    """A Database (its pool made at first use); close it with `await database.close()`."""
    return Database(settings_for(url, **overrides))


def context_for(url: str, name: str = "test", **overrides: Any) -> DatabaseContext:
    """What the tools run on; close its database with `await context.db.close()`."""
    settings = settings_for(url, **overrides)
    return DatabaseContext(name, settings, Database(settings))


def server_for(url: str, **overrides: Any) -> PgMcpServer:
    """The server `pg-mcp URL --flag value …` builds (one database, named after the URL's), without the
    environment or a .env file; its pool opens when a client connects and closes when it leaves."""
    return build_server(single_database(settings_for(url, **overrides)))


def unguarded(sql: str, max_rows: int = 10) -> CheckedQuery:
    """`sql` as it is, as if the guard had passed it: for `Database.run_query` tested without the guard."""
    return CheckedQuery(statement=sql, sql=sql, max_rows=max_rows)


def write_config(directory: Path, text: str) -> str:
    """A config file `pg-mcp.toml` with `text` in `directory`; its path."""
    path = directory / "pg-mcp.toml"
    path.write_text(text)
    return str(path)


@asynccontextmanager
async def config_client(path: str | Path) -> AsyncIterator[Client]:
    """The official MCP client, in process, on the server a config file describes (no environment)."""
    server = build_server(load_config(None, str(path), dotenv=False))
    async with Client(server, read_timeout_seconds=60) as client:
        yield client


def relayed(url: str, port: int, *, query: str = "") -> str:
    """`url` with its host and port replaced by a local relay's (and its query by `query`)."""
    parts = urlsplit(url)
    userinfo, _, _ = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{userinfo}@127.0.0.1:{port}", query=query or parts.query))
