"""What the operator writes about a database for the model, beside PostgreSQL's own comments.

```toml
[databases.shop]
url_env = "SHOP_DATABASE_URL"
description = "The web shop: customers, orders, products. Revenue questions start here."

[databases.shop.descriptions]          # schema, schema.table or schema.table.column = text
sales = "Everything a customer buys"
"sales.orders" = "One row per checkout; the amounts are in sales.order_items"
"sales.orders.status" = "Revenue counts paid, shipped and delivered"

[databases.shop.glossary."active customer"]
meaning = "A customer whose account is open and who ordered in the last 90 days"
sql = "c.is_active AND c.id IN (SELECT customer_id FROM sales.orders WHERE ordered_at > now() - interval '90 days')"
tables = ["sales.customers", "sales.orders"]
columns = ["sales.customers.is_active"]
```

With one database and no `[databases]`, `[descriptions]` and `[glossary.TERM]` are tables at the top of
the file. Names are written as the catalog spells them (case kept), as in the access settings.

A description is shown only with an object the catalog shows, so it never reveals a hidden column or a
table out of the operator's limits; a glossary term that names one is left out as a whole. A term's
`sql` is text for the model, never run. This module reads and validates (pure); the catalog attaches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pg_mcp.names import setting_parts

if TYPE_CHECKING:
    from pg_mcp.guard.access import AccessPolicy

#: Keys of a glossary term.
TERM_KEYS = ("meaning", "sql", "tables", "columns")
_FORMS = "schema, schema.table or schema.table.column"


@dataclass(frozen=True)
class GlossaryTerm:
    """A business term: what it means, optionally how to write it in SQL, and what it is about."""

    term: str
    meaning: str
    sql: str | None = None
    tables: tuple[tuple[str, str], ...] = ()
    columns: tuple[tuple[str, str, str], ...] = ()

    def rank(self, pattern: str) -> int | None:
        """How well the term matches a search pattern (lower is better), None when it does not."""
        wanted, term = pattern.strip().lower(), self.term.lower()
        if term == wanted:
            return 0
        if wanted in term:
            return 1
        if wanted in self.meaning.lower() or (self.sql is not None and wanted in self.sql.lower()):
            return 4
        return None

    def within(self, access: AccessPolicy) -> bool:
        """Whether every table and column the term names is one the model may read."""
        return all(access.table_allowed(*table) for table in self.tables) and all(
            access.table_allowed(schema, table) and column not in access.hidden(schema, table)
            for schema, table, column in self.columns
        )

    @property
    def related(self) -> list[str]:
        """Its tables and columns as dotted names."""
        return [".".join(name) for name in (*self.tables, *self.columns)]


@dataclass(frozen=True)
class OperatorNotes:
    """A database's descriptions by object, and its glossary."""

    schemas: Mapping[str, str] = field(default_factory=dict, hash=False)
    tables: Mapping[tuple[str, str], str] = field(default_factory=dict, hash=False)
    columns: Mapping[tuple[str, str, str], str] = field(default_factory=dict, hash=False)
    glossary: tuple[GlossaryTerm, ...] = ()

    def schema(self, name: str) -> str | None:
        return self.schemas.get(name)

    def table(self, schema: str, name: str) -> str | None:
        return self.tables.get((schema, name))

    def column(self, schema: str, table: str, name: str) -> str | None:
        return self.columns.get((schema, table, name))

    def described(self, pattern: str) -> list[tuple[str, str, str | None]]:
        """Tables (column None) and columns whose description contains `pattern` (case-insensitive)."""
        wanted = pattern.strip().lower()
        found: list[tuple[str, str, str | None]] = [
            (schema, table, None) for (schema, table), text in self.tables.items() if wanted in text.lower()
        ]
        found += [key for key, text in self.columns.items() if wanted in text.lower()]
        return found

    def described_schemas(self, pattern: str) -> list[str]:
        wanted = pattern.strip().lower()
        return [name for name, text in self.schemas.items() if wanted in text.lower()]

    def terms(self, access: AccessPolicy) -> tuple[GlossaryTerm, ...]:
        """The glossary without the terms that name a table or column out of the model's reach."""
        return tuple(term for term in self.glossary if term.within(access))


NO_NOTES = OperatorNotes()


def read_notes(descriptions: Any, glossary: Any, scope: str, problem: Callable[[str], None]) -> OperatorNotes:
    """The `descriptions` and `glossary` tables of a database (`scope` "databases.NAME." or "" for the
    top of the file); each problem is reported through `problem`, naming the table and key."""
    notes = OperatorNotes()
    if descriptions is not None:
        notes = _descriptions(descriptions, f"[{scope}descriptions]", problem)
    if glossary is not None:
        notes = OperatorNotes(notes.schemas, notes.tables, notes.columns, _glossary(glossary, scope, problem))
    return notes


def _flattened(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`sales.orders = "…"` without quotes is a nested table in TOML: its keys, dotted again."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flattened(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def _descriptions(table: Any, where: str, problem: Callable[[str], None]) -> OperatorNotes:
    if not isinstance(table, dict):
        problem(f"{where} must be a table of {_FORMS} = text")
        return OperatorNotes()
    schemas: dict[str, str] = {}
    tables: dict[tuple[str, str], str] = {}
    columns: dict[tuple[str, str, str], str] = {}
    for key, text in _flattened(table).items():
        parts = setting_parts(key)
        if not 1 <= len(parts) <= 3 or not all(parts):
            problem(f"{where} {_shown(key)} is not {_FORMS}")
        elif not isinstance(text, str) or not text.strip():
            problem(f"{where} {_shown(key)} must be a non-empty string: its description")
        elif len(parts) == 1:
            schemas[parts[0]] = _one_line(text)
        elif len(parts) == 2:
            tables[(parts[0], parts[1])] = _one_line(text)
        else:
            columns[(parts[0], parts[1], parts[2])] = _one_line(text)
    return OperatorNotes(schemas, tables, columns)


def _glossary(table: Any, scope: str, problem: Callable[[str], None]) -> tuple[GlossaryTerm, ...]:
    if not isinstance(table, dict):
        problem(f'[{scope}glossary] must hold a table per term: [{scope}glossary."active customer"]')
        return ()
    terms = []
    for name, entry in table.items():
        where = f"[{scope}glossary.{_shown(name)}]"
        term = _term(name, entry, where, problem)
        if term is not None:
            terms.append(term)
    return tuple(terms)


def _term(name: str, entry: Any, where: str, problem: Callable[[str], None]) -> GlossaryTerm | None:
    if not name.strip():
        problem(f"{where} a term needs a name")
        return None
    if not isinstance(entry, dict):
        problem(f"{where} must be a table with meaning (and optionally sql, tables, columns)")
        return None
    unknown = [key for key in entry if key not in TERM_KEYS]
    for key in unknown:
        problem(f"{where} unknown key {_shown(key)}; a term takes {', '.join(TERM_KEYS)}")
    meaning, sql = entry.get("meaning"), entry.get("sql")
    if not isinstance(meaning, str) or not meaning.strip():
        problem(f"{where} needs meaning: what the term means, in words")
        return None
    if sql is not None and (not isinstance(sql, str) or not sql.strip()):
        problem(f"{where} sql must be a non-empty string (an expression or condition, never run)")
        return None
    tables = _names(entry.get("tables", []), 2, "tables", "schema.table", where, problem)
    columns = _names(entry.get("columns", []), 3, "columns", "schema.table.column", where, problem)
    if tables is None or columns is None or unknown:
        return None
    return GlossaryTerm(
        " ".join(name.split()),
        _one_line(meaning),
        sql.strip() if sql is not None else None,
        tuple((t[0], t[1]) for t in tables),
        tuple((c[0], c[1], c[2]) for c in columns),
    )


def _names(
    value: Any, size: int, key: str, form: str, where: str, problem: Callable[[str], None]
) -> list[tuple[str, ...]] | None:
    """A term's `tables` or `columns`: an array of dotted names of `size` parts each."""
    if not isinstance(value, list):
        problem(f"{where} {key} must be an array of {form}")
        return None
    names = []
    for item in value:
        parts = setting_parts(item) if isinstance(item, str) else ()
        if len(parts) != size or not all(parts):
            problem(f"{where} {key}: {_shown(str(item))} is not {form}")
            return None
        names.append(parts)
    return names


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _shown(text: str) -> str:
    """A key for a message, cut short."""
    return repr(text if len(text) <= 80 else text[:79] + "…")
