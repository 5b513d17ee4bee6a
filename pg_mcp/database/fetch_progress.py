"""How far the running call has fetched, for its progress reports (`pg_mcp.server.progress`): a module
of its own, so that the server can report without loading the driver before it must."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class FetchProgress:
    """Rows fetched so far by the running call."""

    rows: int = 0


#: The running call's progress, when its client asked for reports.
fetch_progress: ContextVar[FetchProgress | None] = ContextVar("fetch_progress", default=None)
