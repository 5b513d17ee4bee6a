"""Who is calling: set per HTTP request by the auth layer, read by database selection and the audit log.

Over stdio there is no principal (the spec leaves stdio unauthenticated): every database is visible.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """A caller: its name (token name or JWT subject), the databases it may use (None: all), its address,
    how it authenticated (`issuer`: "token" for the tokens file, the issuer's URL for OAuth), and the
    tools it may call (None: all)."""

    name: str
    databases: frozenset[str] | None = None
    address: str | None = None
    issuer: str = "none"
    tools: frozenset[str] | None = None

    def may_use(self, database: str) -> bool:
        return self.databases is None or database in self.databases

    def may_call(self, tool: str) -> bool:
        return self.tools is None or tool in self.tools

    @property
    def key(self) -> str:
        """Who this is, never confused with a caller of another kind: a token named like an OAuth
        subject, or the same subject from another issuer, is somebody else (rates, shares, audit)."""
        return f"{self.issuer}|{self.name}"


current_principal: ContextVar[Principal | None] = ContextVar("pg_mcp_principal", default=None)
