"""Tools the operator defines in the config file: a fixed read-only statement with typed parameters.

```toml
[tools.orders_by_status]
description = "Orders in one status, newest first."
database = "shop"                      # default: the first database
sql = "SELECT id, total FROM sales.orders WHERE status = $1 ORDER BY created_at DESC"
max_rows = 50                          # default: the database's max_rows
[[tools.orders_by_status.parameters]]
name = "status"
type = "text"
description = "The order's status."
allowed = ["paid", "shipped", "delivered"]
```

The statement's values are bound to `$1`, `$2` …, never spliced into its text, and the statement
passes the same guard as a caller's SQL (checked at start-up, so a definition the guard refuses never
loads), the same read-only transaction, limits and audit. This module reads and validates the
definitions (pure); the server lists and runs them.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import Field

#: A tool's name: what MCP allows, and short enough for every client.
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
#: Keys of a definition and of a parameter.
TOOL_KEYS = frozenset({"description", "database", "sql", "parameters", "max_rows"})
PARAMETER_KEYS = frozenset({"name", "type", "description", "default", "allowed", "minimum", "maximum"})


@dataclass(frozen=True)
class _Type:
    """A parameter type: the Python type a client's JSON value becomes, PostgreSQL's names for it, and
    how a value is made from the JSON (None when the JSON value is refused)."""

    python: type
    postgres: frozenset[str]
    convert: Callable[[Any], Any]


def _text(value: Any) -> Any:
    return value if isinstance(value, str) else None


def _integer(value: Any) -> Any:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(value: Any) -> Any:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _decimal(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _boolean(value: Any) -> Any:
    return value if isinstance(value, bool) else None


def _parsed(parse: Callable[[str], Any]) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        try:
            return parse(value) if isinstance(value, str) else None
        except ValueError:
            return None

    return convert


TYPES: dict[str, _Type] = {
    "text": _Type(str, frozenset({"text", "varchar", "bpchar", "name"}), _text),
    "integer": _Type(int, frozenset({"int2", "int4", "int8"}), _integer),
    "bigint": _Type(int, frozenset({"int8", "int4", "int2"}), _integer),
    "numeric": _Type(str, frozenset({"numeric"}), _decimal),
    "double precision": _Type(float, frozenset({"float8", "float4"}), _number),
    "boolean": _Type(bool, frozenset({"bool"}), _boolean),
    "date": _Type(str, frozenset({"date"}), _parsed(dt.date.fromisoformat)),
    "timestamp": _Type(str, frozenset({"timestamp"}), _parsed(dt.datetime.fromisoformat)),
    "timestamptz": _Type(str, frozenset({"timestamptz"}), _parsed(dt.datetime.fromisoformat)),
    "uuid": _Type(str, frozenset({"uuid"}), _parsed(uuid.UUID)),
}
#: Other spellings an operator may write.
TYPE_ALIASES = {
    "varchar": "text", "character varying": "text", "int": "integer", "int4": "integer", "smallint": "integer",
    "int2": "integer", "int8": "bigint", "decimal": "numeric", "float8": "double precision", "float": "double precision",
    "real": "double precision", "bool": "boolean", "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
}  # fmt: skip


@dataclass(frozen=True)
class Parameter:
    """One `$n` of an operator's tool, as the client sees it (an argument) and as it is bound."""

    name: str
    type: str
    description: str
    required: bool = True
    default: Any = None
    allowed: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None

    def annotation(self) -> Any:
        """The argument's type for the tool's input schema: the allowed values, or the type and range."""
        field = Field(description=self.description, ge=self.minimum, le=self.maximum)
        base: Any = Literal[self.allowed] if self.allowed is not None else TYPES[self.type].python
        return Annotated[base if self.required else base | None, field]

    def bound(self, value: Any) -> Any:
        """The value bound to the parameter, or ValueError saying what was wrong with it."""
        if value is None:
            if self.required:
                raise ValueError(f"{self.name} is required")
            value = self.default
            if value is None:
                return None
        converted = TYPES[self.type].convert(value)
        if converted is None:
            raise ValueError(f"{self.name} must be a {self.type} value, not {value!r}")
        if self.allowed is not None and value not in self.allowed:
            raise ValueError(f"{self.name} must be one of {', '.join(map(str, self.allowed))}")
        below = self.minimum is not None and converted < self.minimum
        if below or (self.maximum is not None and converted > self.maximum):
            raise ValueError(f"{self.name} must be between {self.minimum} and {self.maximum}")
        return converted


@dataclass(frozen=True)
class ToolDefinition:
    """An operator's tool: its statement, its database and its parameters."""

    name: str
    description: str
    database: str
    sql: str
    parameters: tuple[Parameter, ...]
    max_rows: int | None = None

    def values(self, arguments: Mapping[str, Any]) -> tuple[Any, ...]:
        """The values bound to `$1`, `$2` …, from the client's arguments (ValueError when one is wrong)."""
        return tuple(parameter.bound(arguments.get(parameter.name)) for parameter in self.parameters)


def read_tools(
    tables: Mapping[str, Any], databases: Sequence[str], reserved: Sequence[str], where: Callable[[str], str]
) -> tuple[ToolDefinition, ...]:
    """The `[tools.NAME]` tables of a config file; raises ValueError naming the definition's place
    (`where(name)`: the file and line) and what is wrong."""
    tools = []
    for name, table in tables.items():
        try:
            tools.append(_tool(name, table, databases, reserved))
        except ValueError as exc:
            raise ValueError(f"{where(name)}: {exc}") from None
    return tuple(tools)


def _tool(name: str, table: Any, databases: Sequence[str], reserved: Sequence[str]) -> ToolDefinition:
    if not _NAME.match(name):
        raise ValueError(
            f"the tool name {name!r} must be letters, digits and _ (at most 64), starting with a letter"
        )
    if name in reserved:
        raise ValueError(f"{name} is one of pg-mcp's own tools: choose another name")
    if not isinstance(table, dict):
        raise ValueError("a tool is a table: [tools.NAME] with description, sql and parameters")
    unknown = sorted(set(table) - TOOL_KEYS)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r}; a tool takes {', '.join(sorted(TOOL_KEYS))}")
    sql, description = table.get("sql"), table.get("description")
    if not isinstance(sql, str) or not sql.strip():
        raise ValueError("sql is missing: the statement the tool runs, with $1, $2 … for its parameters")
    if not isinstance(description, str) or not description.strip():
        raise ValueError("description is missing: the model chooses tools by it")
    database = table.get("database", databases[0] if databases else "")
    if database not in databases:
        raise ValueError(f"database {database!r} is not configured; databases: {', '.join(databases)}")
    max_rows = table.get("max_rows")
    if max_rows is not None and (not isinstance(max_rows, int) or isinstance(max_rows, bool) or max_rows < 1):
        raise ValueError("max_rows must be a positive integer")
    raw = table.get("parameters", [])
    if not isinstance(raw, list):
        raise ValueError("parameters is an array of tables: [[tools.NAME.parameters]]")
    parameters = tuple(_parameter(item, position) for position, item in enumerate(raw, 1))
    names = [p.name for p in parameters]
    if len(set(names)) != len(names):
        raise ValueError("two parameters have the same name")
    return ToolDefinition(name, description.strip(), database, sql.strip(), parameters, max_rows)


def _parameter(item: Any, position: int) -> Parameter:
    if not isinstance(item, dict):
        raise ValueError(f"parameter {position} is not a table")
    unknown = sorted(set(item) - PARAMETER_KEYS)
    if unknown:
        raise ValueError(
            f"parameter {position}: unknown key {unknown[0]!r}; one takes {', '.join(sorted(PARAMETER_KEYS))}"
        )
    name, kind = item.get("name"), str(item.get("type", "")).strip().lower()
    if not isinstance(name, str) or not name.isidentifier() or name in ("database", "ctx"):
        raise ValueError(f"parameter {position} needs a name (letters, digits and _)")
    kind = TYPE_ALIASES.get(kind, kind)
    if kind not in TYPES:
        raise ValueError(f"parameter {name}: type {item.get('type')!r} is not one of {', '.join(TYPES)}")
    description = item.get("description")
    if not isinstance(description, str) or not description.strip():
        raise ValueError(f"parameter {name} needs a description: the model reads it")
    allowed = item.get("allowed")
    if allowed is not None and (not isinstance(allowed, list) or not allowed):
        raise ValueError(f"parameter {name}: allowed is a non-empty array of values")
    bounds = [item.get(key) for key in ("minimum", "maximum")]
    if any(b is not None and (isinstance(b, bool) or not isinstance(b, int | float)) for b in bounds):
        raise ValueError(f"parameter {name}: minimum and maximum are numbers")
    if any(b is not None for b in bounds) and TYPES[kind].convert(0) is None:
        raise ValueError(f"parameter {name}: minimum and maximum apply to numbers, not {kind}")
    parameter = Parameter(
        name, kind, description.strip(), "default" not in item, item.get("default"),
        tuple(allowed) if allowed is not None else None, bounds[0], bounds[1],
    )  # fmt: skip
    for value in [*(parameter.allowed or ()), *([parameter.default] if "default" in item else [])]:
        try:
            Parameter(name, kind, "", True, None, parameter.allowed, bounds[0], bounds[1]).bound(value)
        except ValueError as exc:
            raise ValueError(f"parameter {name}: {exc}") from None
    return parameter
