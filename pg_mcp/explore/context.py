"""One database as the tools see it: its settings, pool, catalog, limits and the policies read from it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from pg_mcp.config import Settings
from pg_mcp.database.catalog import Catalog
from pg_mcp.database.executor import Database
from pg_mcp.database.lineage import LineagePolicy
from pg_mcp.database.reach import ReachModel
from pg_mcp.errors import InvalidArgumentError
from pg_mcp.guard import GuardPolicy
from pg_mcp.guard.access import AccessPolicy
from pg_mcp.guard.analysed import CatalogReach
from pg_mcp.guard.plan import Budget
from pg_mcp.operator_notes import NO_NOTES, OperatorNotes
from pg_mcp.render.values import Limits

#: Seconds before the database's function names (used by the guard) are read again.
FUNCTION_NAMES_TTL = 300.0


@dataclass(frozen=True)
class ToolOutput:
    text: str
    structured: dict[str, Any]


@dataclass
class DatabaseContext:
    """Everything a tool needs for one configured database; one per database, for the server's life."""

    name: str
    settings: Settings
    db: Database
    #: What the operator wrote about the database's objects: descriptions and glossary.
    notes: OperatorNotes = NO_NOTES
    catalog: Catalog = field(init=False)
    lineage: LineagePolicy = field(init=False)
    reach_model: ReachModel = field(init=False)
    limits: Limits = field(init=False)
    budget: Budget = field(init=False)
    _policy: GuardPolicy = field(init=False)
    _policy_loaded_at: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        s = self.settings
        self.catalog = Catalog(self.db, s.access, self.notes)
        self.lineage = LineagePolicy(s.access)
        self.reach_model = ReachModel(s.allow_functions, s.allow_secrets)
        self.limits = Limits(s.max_cell_chars, s.max_result_bytes)
        self.budget = Budget(max_cost=s.max_cost, max_rows=s.max_plan_rows)
        self._policy = GuardPolicy(
            allowed_functions=frozenset(s.allow_functions), allowed_secrets=frozenset(s.allow_secrets)
        )

    @classmethod
    def connect_later(cls, name: str, settings: Settings, notes: OperatorNotes = NO_NOTES) -> DatabaseContext:
        """A context whose pool is created at the first call (or by the server's warm-up)."""
        return cls(name, settings, Database(settings), notes)

    @property
    def access(self) -> AccessPolicy:
        return self.catalog.access

    async def guard_policy(self) -> GuardPolicy:
        """The guard policy with the database's own function names, refreshed every few minutes."""
        now = time.monotonic()
        if self._policy_loaded_at is None or now - self._policy_loaded_at > FUNCTION_NAMES_TTL:
            one_arg, row = await self.catalog.field_callable_functions()
            self._policy = replace(
                self._policy,
                one_arg_functions=one_arg,
                row_functions=row,
            )
            self._policy_loaded_at = now
        return self._policy

    async def reach(self, *, fresh: bool = False) -> CatalogReach:
        """What this database's catalog makes reachable (pg_mcp.database.reach), under the current limits."""
        return await self.reach_model.get(self.db, self.access, fresh=fresh)

    async def access_policy(self) -> AccessPolicy:
        """The operator's limits carried onto partitions, children and derived views (pg_mcp.database.lineage)."""
        self.catalog.access = await self.lineage.get(self.db)
        return self.catalog.access

    def rows_cap(self, max_rows: int | None) -> int:
        """The row cap of one call: the caller's, within the operator's bounds, or the default."""
        if max_rows is None:
            return self.settings.max_rows
        if not 1 <= max_rows <= self.settings.max_rows_limit:
            raise InvalidArgumentError(
                f"max_rows must be between 1 and {self.settings.max_rows_limit}, not {max_rows}.",
                "Leave it out for the default, or aggregate in SQL instead of fetching many rows.",
            )
        return max_rows
