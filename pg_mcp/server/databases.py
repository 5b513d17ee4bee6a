"""The databases one server serves, and which of them the current caller may use and has chosen."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from pg_mcp import explore
from pg_mcp.errors import NotFoundError, PgMcpError
from pg_mcp.server.principal import current_principal

if TYPE_CHECKING:  # the contexts load the driver: made after `initialize` is answered
    from pg_mcp.explore import DatabaseContext


class Databases:
    """The configured databases by name, the first being the default; resolves a caller's choice."""

    def __init__(self, contexts: Mapping[str, DatabaseContext]) -> None:
        self.contexts = dict(contexts)
        self.default = next(iter(self.contexts))

    @property
    def several(self) -> bool:
        return len(self.contexts) > 1

    def visible(self) -> dict[str, DatabaseContext]:
        """The databases the current caller may use: all of them, or its principal's."""
        principal = current_principal.get()
        if principal is None or principal.databases is None:
            return self.contexts
        return {name: context for name, context in self.contexts.items() if principal.may_use(name)}

    def get(self, name: str | None) -> DatabaseContext:
        """The named database, or the caller's default; NotFoundError listing the valid names.

        A database the caller may not use is answered exactly like one that does not exist."""
        visible = self.visible()
        if not visible:
            raise NotFoundError("This caller may use no database.", "Ask the operator for access.")
        if name is None or name == "":
            return next(iter(visible.values()))
        context = visible.get(name) or visible.get(name.strip().lower())
        if context is None:
            raise NotFoundError(
                f"There is no database {name[:100]!r}.",
                f"Databases: {', '.join(visible)} (default {next(iter(visible))}).",
            )
        return context

    async def overview(self) -> str:
        """The overview resource: the caller's database, or each database it may use, naming the default
        and saying first what each is for (the operator's descriptions)."""
        if not self.several:
            return await explore.overview(self.get(None))
        visible = self.visible()
        default = next(iter(visible), "none")
        head = f"Databases: {', '.join(visible)} (default {default}). Pass database=NAME to any tool."
        head += "".join(
            f"\n- {name}: {' '.join(context.settings.description.split())}"
            for name, context in visible.items()
            if context.settings.description
        )
        parts = [head]
        for name, context in visible.items():
            try:
                parts.append(f"## {name}\n" + await explore.overview(context, described=False))
            except PgMcpError as exc:
                parts.append(f"## {name}\nUnavailable: {exc.message}")
        return "\n\n".join(parts)

    def with_glossary(self) -> dict[str, DatabaseContext]:
        """The caller's databases whose operator wrote a glossary."""
        return {name: context for name, context in self.visible().items() if context.notes.glossary}

    async def glossary(self) -> str:
        """The glossary resource: the caller's database's, or each of its databases' by name."""
        described = self.with_glossary()
        if not described:
            raise NotFoundError("There is no glossary here.", "search_schema finds tables and columns.")
        if not self.several:
            return await explore.glossary(next(iter(described.values())))
        parts = []
        for name, context in described.items():
            try:
                parts.append(f"## {name}\n" + await explore.glossary(context))
            except PgMcpError as exc:
                parts.append(f"## {name}\nUnavailable: {exc.message}")
        return "\n\n".join(parts)

    async def complete(self, argument: str, value: str, known: dict[str, str]) -> list[str]:
        """Completions for the table template: database names, schemas, then tables in that schema."""
        if argument == "database":
            return [name for name in self.visible() if name.startswith(value.lower())]
        return await explore.complete(self.get(known.get("database")), argument, value, known.get("schema"))
