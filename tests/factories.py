"""One way to build what tests need from a database URL: settings, a Database, a DatabaseContext."""

from __future__ import annotations

from typing import Any

from pg_mcp.config import Settings, load_settings
from pg_mcp.database.executor import Database
from pg_mcp.explore import DatabaseContext


def settings_for(url: str, **overrides: Any) -> Settings:
    """The settings `pg-mcp URL --flag value …` would have, without the environment or a .env file."""
    return load_settings({"database_url": url, **overrides}, dotenv=False)


def database_for(url: str, **overrides: Any) -> Database:
    """A Database (its pool made at first use); close it with `await database.close()`."""
    return Database(settings_for(url, **overrides))


def context_for(url: str, name: str = "test", **overrides: Any) -> DatabaseContext:
    """What the tools run on; close its database with `await context.db.close()`."""
    settings = settings_for(url, **overrides)
    return DatabaseContext(name, settings, Database(settings))
