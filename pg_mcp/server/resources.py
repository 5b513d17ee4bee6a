"""Resource URIs, list cursors and completions, for one database or several.

URI scheme. With one database (as pg-mcp always had): `postgres://database` is the overview and
`postgres://{schema}/{table}` one table. With several: `postgres://database` is the overview of every
database, `postgres://{database}/{schema}/{table}` one table in a named database. Path segments are
percent-encoded, so any schema or table name fits.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from pg_mcp import explore
from pg_mcp.errors import DatabaseUnavailableError, NotFoundError, PgMcpError
from pg_mcp.explore import DatabaseContext
from pg_mcp.server.principal import current_principal

URI_SCHEME = "postgres"
OVERVIEW_URI = f"{URI_SCHEME}://database"
SINGLE_TABLE_TEMPLATE = f"{URI_SCHEME}://{{schema}}/{{table}}"
MULTI_TABLE_TEMPLATE = f"{URI_SCHEME}://{{database}}/{{schema}}/{{table}}"
RESOURCE_PAGE_SIZE = 200


@dataclass(frozen=True)
class ResourceEntry:
    uri: str
    name: str
    description: str | None


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

    def table_template(self) -> str:
        return MULTI_TABLE_TEMPLATE if self.several else SINGLE_TABLE_TEMPLATE

    def table_uri(self, database: str, schema: str, name: str) -> str:
        path = f"{_segment(schema)}/{_segment(name)}"
        return f"{URI_SCHEME}://{_segment(database)}/{path}" if self.several else f"{URI_SCHEME}://{path}"

    async def resource_page(self, cursor: str | None) -> tuple[list[ResourceEntry], str | None]:
        """One page of table resources in (database, schema, name) order; the cursor is the last key seen.

        With several databases, one that cannot be reached is skipped, so the others stay listed; when
        none can be, the error is raised.
        """
        visible = self.visible()
        names = list(visible)
        database, schema, table = _decode_cursor(cursor) if cursor else (names[0] if names else "", "", "")
        if database not in visible:
            raise NotFoundError("Invalid resource list cursor.", "Start again without a cursor.")
        entries: list[ResourceEntry] = []
        last = (database, schema, table)
        unavailable: PgMcpError | None = None
        for name in names[names.index(database) :]:
            after = (schema, table) if name == database else ("", "")
            try:
                tables = await explore.table_page(visible[name], after, RESOURCE_PAGE_SIZE - len(entries) + 1)
            except DatabaseUnavailableError as exc:
                if not self.several:
                    raise
                unavailable = exc
                continue
            for t in tables:
                if len(entries) == RESOURCE_PAGE_SIZE:
                    return entries, _encode_cursor(*last)
                last = (name, t["schema"], t["name"])
                entries.append(
                    ResourceEntry(
                        uri=self.table_uri(name, t["schema"], t["name"]),
                        name=f"{name}:{t['schema']}.{t['name']}"
                        if self.several
                        else f"{t['schema']}.{t['name']}",
                        description=_resource_description(t),
                    )
                )
        if not entries and unavailable is not None and cursor is None:
            raise unavailable
        return entries, None

    async def overview(self) -> str:
        """The overview resource: the caller's database, or each database it may use, naming the default."""
        if not self.several:
            return await explore.overview(self.get(None))
        visible = self.visible()
        default = next(iter(visible), "none")
        parts = [f"Databases: {', '.join(visible)} (default {default}). Pass database=NAME to any tool."]
        for name, context in visible.items():
            try:
                parts.append(f"## {name}\n" + await explore.overview(context))
            except PgMcpError as exc:
                parts.append(f"## {name}\nUnavailable: {exc.message}")
        return "\n\n".join(parts)

    async def complete(self, argument: str, value: str, known: dict[str, str]) -> list[str]:
        """Completions for the table template: database names, schemas, then tables in that schema."""
        if argument == "database":
            return [name for name in self.visible() if name.startswith(value.lower())]
        return await explore.complete(self.get(known.get("database")), argument, value, known.get("schema"))


def quoted(name: str) -> str:
    """A name from a URI is exact: quote it so it is not case-folded or split on dots."""
    return '"' + name.replace('"', '""') + '"'


#: What `quote(text, safe="")` leaves as it is: most names, which then skip it (a page quotes 400 of them).
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


def _segment(text: str) -> str:
    """`text` percent-encoded as one URI path segment."""
    return text if _UNRESERVED.fullmatch(text) else quote(text, safe="")


def _resource_description(table: dict[str, Any]) -> str:
    parts = [table["kind"]]
    if table["estimated_rows"] is not None:
        parts.append(f"~{table['estimated_rows']:,} rows")
    text = ", ".join(parts)
    return f"{text}. {table['comment']}" if table["comment"] else text


def _encode_cursor(database: str, schema: str, name: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([database, schema, name]).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[str, str, str]:
    try:
        database, schema, name = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if isinstance(database, str) and isinstance(schema, str) and isinstance(name, str):
            return database, schema, name
    except (ValueError, TypeError, binascii.Error):
        pass
    raise NotFoundError("Invalid resource list cursor.", "Start again without a cursor.")
