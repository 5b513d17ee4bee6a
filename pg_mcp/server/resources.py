"""Resource URIs and the paged resource list (its cursors), for one database or several.

URI scheme. With one database (as pg-mcp always had): `postgres://database` is the overview and
`postgres://{schema}/{table}` one table. With several: `postgres://database` is the overview of every
database, `postgres://{database}/{schema}/{table}` one table in a named database. Path segments are
percent-encoded, so any schema or table name fits. `postgres://glossary`, when the operator wrote one,
is the glossary (of every database the caller may use, by database, when there are several).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from urllib.parse import quote

from pg_mcp import explore
from pg_mcp.database.records import TableSummary
from pg_mcp.errors import DatabaseUnavailableError, NotFoundError, PgMcpError
from pg_mcp.server.databases import Databases

URI_SCHEME = "postgres"
OVERVIEW_URI = f"{URI_SCHEME}://database"
#: The operator's glossary: of the database, or of every database the caller may use, by database.
GLOSSARY_URI = f"{URI_SCHEME}://glossary"
SINGLE_TABLE_TEMPLATE = f"{URI_SCHEME}://{{schema}}/{{table}}"
MULTI_TABLE_TEMPLATE = f"{URI_SCHEME}://{{database}}/{{schema}}/{{table}}"
RESOURCE_PAGE_SIZE = 200


@dataclass(frozen=True)
class ResourceEntry:
    uri: str
    name: str
    description: str | None


def table_uri(databases: Databases, database: str, schema: str, name: str) -> str:
    path = f"{_segment(schema)}/{_segment(name)}"
    return f"{URI_SCHEME}://{_segment(database)}/{path}" if databases.several else f"{URI_SCHEME}://{path}"


async def resource_page(databases: Databases, cursor: str | None) -> tuple[list[ResourceEntry], str | None]:
    """One page of table resources in (database, schema, name) order; the cursor is the last key seen.

    With several databases, one that cannot be reached is skipped, so the others stay listed; when
    none can be, the error is raised.
    """
    visible = databases.visible()
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
            if not databases.several:
                raise
            unavailable = exc
            continue
        for t in tables:
            if len(entries) == RESOURCE_PAGE_SIZE:
                return entries, _encode_cursor(*last)
            last = (name, t.schema_, t.name)
            entries.append(
                ResourceEntry(
                    uri=table_uri(databases, name, t.schema_, t.name),
                    name=f"{name}:{t.schema_}.{t.name}" if databases.several else f"{t.schema_}.{t.name}",
                    description=_resource_description(t),
                )
            )
    if not entries and unavailable is not None and cursor is None:
        raise unavailable
    return entries, None


def quoted(name: str) -> str:
    """A name from a URI is exact: quote it so it is not case-folded or split on dots."""
    return '"' + name.replace('"', '""') + '"'


#: What `quote(text, safe="")` leaves as it is: most names, which then skip it (a page quotes 400 of them).
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


def _segment(text: str) -> str:
    """`text` percent-encoded as one URI path segment."""
    return text if _UNRESERVED.fullmatch(text) else quote(text, safe="")


def _resource_description(table: TableSummary) -> str:
    parts = [table.kind]
    if table.estimated_rows is not None:
        parts.append(f"~{table.estimated_rows:,} rows")
    return ". ".join([", ".join(parts), *(note for note in (table.comment, table.description) if note)])


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
