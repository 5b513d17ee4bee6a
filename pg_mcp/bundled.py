"""The SQL files shipped with pg-mcp (`sql/` in a checkout, `<prefix>/share/pg-mcp` when installed)."""

from __future__ import annotations

import sys
from pathlib import Path

from pg_mcp.errors import ConfigError


def sql_file(name: str) -> Path:
    """`sql/<name>` from a source checkout, or the copy pip installed under `<prefix>/share/pg-mcp`."""
    for candidate in (
        Path(__file__).resolve().parent.parent / "sql" / name,
        Path(sys.prefix) / "share" / "pg-mcp" / name,
    ):
        if candidate.exists():
            return candidate
    raise ConfigError(f"sql/{name} is missing from this installation.", "Reinstall pg-mcp.")
