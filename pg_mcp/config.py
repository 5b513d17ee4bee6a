"""Settings from the environment, a `.env` file and the command line, validated once at start.

Precedence, highest first: command-line flags, environment variables, `.env` in the working
directory, defaults. Every setting is an environment variable `PG_MCP_<NAME>` except the
connection string, which is the conventional `DATABASE_URL`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from dotenv import load_dotenv
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from pg_mcp.access import AccessPolicy
from pg_mcp.errors import ConfigError
from pg_mcp.guard.secrets import SECRET_NAMES

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]

#: Environment variable for each field, used in error messages and the README.
ENV_NAMES: dict[str, str] = {
    "database_url": "DATABASE_URL",
    "max_rows": "PG_MCP_MAX_ROWS",
    "max_rows_limit": "PG_MCP_MAX_ROWS_LIMIT",
    "statement_timeout": "PG_MCP_STATEMENT_TIMEOUT",
    "lock_timeout": "PG_MCP_LOCK_TIMEOUT",
    "connect_timeout": "PG_MCP_CONNECT_TIMEOUT",
    "pool_min": "PG_MCP_POOL_MIN",
    "pool_max": "PG_MCP_POOL_MAX",
    "schemas": "PG_MCP_SCHEMAS",
    "tables": "PG_MCP_TABLES",
    "hidden_columns": "PG_MCP_HIDDEN_COLUMNS",
    "allow_functions": "PG_MCP_ALLOW_FUNCTIONS",
    "max_cell_chars": "PG_MCP_MAX_CELL_CHARS",
    "max_result_bytes": "PG_MCP_MAX_RESULT_BYTES",
    "max_cost": "PG_MCP_MAX_COST",
    "max_plan_rows": "PG_MCP_MAX_PLAN_ROWS",
    "temp_file_limit": "PG_MCP_TEMP_FILE_LIMIT",
    "allow_secrets": "PG_MCP_ALLOW_SECRETS",
    "log_level": "PG_MCP_LOG_LEVEL",
    "audit_file": "PG_MCP_AUDIT_FILE",
}


class Settings(BaseSettings):
    """Everything the server can be told; immutable once validated."""

    model_config = SettingsConfigDict(env_prefix="PG_MCP_", frozen=True, extra="ignore")

    database_url: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "PG_MCP_DATABASE_URL", "database_url")
    )
    max_rows: int = Field(default=100, ge=1, le=1_000_000)
    max_rows_limit: int = Field(default=1000, ge=1, le=1_000_000)
    statement_timeout: float = Field(default=30.0, gt=0, le=86_400)
    lock_timeout: float = Field(default=5.0, gt=0, le=86_400)
    connect_timeout: float = Field(default=10.0, gt=0, le=600)
    pool_min: int = Field(default=1, ge=0, le=100)
    pool_max: int = Field(default=5, ge=1, le=100)
    schemas: Annotated[tuple[str, ...], NoDecode] = ()
    tables: Annotated[tuple[str, ...], NoDecode] = ()
    hidden_columns: Annotated[tuple[str, ...], NoDecode] = ()
    allow_functions: Annotated[tuple[str, ...], NoDecode] = ()
    max_cell_chars: int = Field(default=1000, ge=16, le=10_000_000)
    max_result_bytes: int = Field(default=1_000_000, ge=1024, le=100_000_000)
    max_cost: float = Field(default=1e9, ge=0)
    max_plan_rows: float = Field(default=1e9, ge=0)
    temp_file_limit: str = Field(default="1GB", pattern=r"^(-1|\d+\s*(kB|MB|GB|TB)?)$")
    allow_secrets: Annotated[tuple[str, ...], NoDecode] = ()
    log_level: LogLevel = "INFO"
    audit_file: str | None = None

    @field_validator("schemas", "tables", "hidden_columns", "allow_functions", "allow_secrets", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("allow_functions", "allow_secrets")
    @classmethod
    def _lower_functions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(name.lower() for name in value)

    @field_validator("allow_secrets")
    @classmethod
    def _known_secrets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - SECRET_NAMES)
        if unknown:
            raise ValueError(
                f"unknown secret group {', '.join(unknown)}; known: {', '.join(sorted(SECRET_NAMES))}"
            )
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        url = value.get_secret_value().strip()
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 -- raises ValueError for a port that is not a number in 0-65535
        except ValueError:  # the parser's message may quote part of the password: never shown
            raise ValueError(
                "is not a valid URL: expected postgresql://user:password@host:5432/db with a numeric "
                "port, and special characters in the user or password percent-encoded (@ as %40, "
                "/ as %2F, : as %3A)"
            ) from None
        if parts.netloc.count("@") > 1:
            raise ValueError(
                "has more than one '@' before the host, so the host cannot be told apart from the password: "
                "percent-encode '@' in the user name or password as %40 (p@ss becomes p%40ss)"
            )
        if parts.scheme not in ("postgres", "postgresql"):
            raise ValueError(
                "must be a URL starting with postgresql:// (e.g. postgresql://user:pass@host/db)"
            )
        return SecretStr(url)

    @model_validator(mode="after")
    def _check_ranges(self) -> Settings:
        if self.max_rows > self.max_rows_limit:
            raise ValueError(
                f"PG_MCP_MAX_ROWS ({self.max_rows}) exceeds PG_MCP_MAX_ROWS_LIMIT ({self.max_rows_limit})"
            )
        for name, parts in (("tables", 2), ("hidden_columns", 3)):
            for entry in getattr(self, name):
                pieces = [piece for piece in entry.split(".") if piece.strip()]
                if not (parts - 1 <= len(pieces) <= parts) or (name == "tables" and len(pieces) != 2):
                    shape = (
                        "schema.table or schema.*"
                        if name == "tables"
                        else "schema.table.column or table.column"
                    )
                    raise ValueError(f"{ENV_NAMES[name]}: {entry!r} is not {shape}")
        if self.pool_min > self.pool_max:
            raise ValueError(f"PG_MCP_POOL_MIN ({self.pool_min}) exceeds PG_MCP_POOL_MAX ({self.pool_max})")
        return self

    @property
    def access(self) -> AccessPolicy:
        """What the operator lets the model read (schemas, tables, hidden columns)."""
        return AccessPolicy.from_settings(self.schemas, self.tables, self.hidden_columns)

    @property
    def dsn(self) -> str:
        """The connection string; raises ConfigError when none was given."""
        if self.database_url is None:
            raise ConfigError(
                "DATABASE_URL is not set.",
                "Pass it as the first argument (pg-mcp postgresql://user@host/db), set the DATABASE_URL "
                "environment variable, or put it in a .env file in the working directory.",
            )
        return self.database_url.get_secret_value()

    @property
    def safe_dsn(self) -> str:
        """The connection string with any password replaced, for messages and logs."""
        return redact_dsn(self.dsn) if self.database_url else "(DATABASE_URL not set)"


def redact_dsn(dsn: str) -> str:
    """Replace the password in a PostgreSQL URL (userinfo or query string) with `***`."""
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return "(unparseable DATABASE_URL)"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostinfo = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{hostinfo}" if ":" in userinfo else f"{user}@{hostinfo}"
    query = "&".join(
        "password=***" if pair.lower().startswith("password=") else pair for pair in parts.query.split("&")
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def load_settings(overrides: dict[str, Any] | None = None, *, dotenv: bool = True) -> Settings:
    """Build Settings from the environment (and `.env`) plus explicit overrides, or raise ConfigError."""
    if dotenv:
        load_dotenv(".env", override=False)
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    """One line per invalid setting, naming its variable and flag and what it accepts (never the value)."""
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        message = error["msg"].removeprefix("Value error, ")
        if not error["loc"]:
            lines.append(f"Invalid settings: {message}")
            continue
        field = str(error["loc"][0])
        name = ENV_NAMES.get(field, field.upper())
        if field != "database_url":
            name += f" (--{field.replace('_', '-')})"
        accepted = _accepted(field)
        lines.append(f"Invalid setting {name}: {message}" + (f"; it accepts {accepted}" if accepted else ""))
    return "\n".join(lines)


def _accepted(field: str) -> str | None:
    """The accepted range of a numeric setting, from its declared bounds."""
    info = Settings.model_fields.get(field)
    if info is None or info.annotation not in (int, float):
        return None
    bounds = {
        key: getattr(item, key) for item in info.metadata for key in ("ge", "gt", "le") if hasattr(item, key)
    }
    kind = "a whole number" if info.annotation is int else "a number"
    low = f"from {bounds['ge']}" if "ge" in bounds else f"above {bounds.get('gt', 0)}"
    return f"{kind} {low} to {bounds['le']}" if "le" in bounds else f"{kind} {low}"
