"""Settings from a TOML config file, the environment, a `.env` file and the command line, validated once.

One server can serve several databases. Without a config file there is one, from `DATABASE_URL`, and
precedence is, highest first: command-line flags, environment variables, `.env` in the working
directory, defaults. Every setting is an environment variable `PG_MCP_<NAME>` except the connection
string, which is the conventional `DATABASE_URL`.

With a config file (`PG_MCP_CONFIG`, or `config_file=`), each `[databases.NAME]` table is one database
and `[server]` holds defaults for all of them. Precedence, lowest first: defaults, `[server]`,
environment variables, command-line flags, the database's own table (the most specific wins).

Each setting is declared once, default, range and description together, in the model of its scope:
`DatabaseSettings` (each database), `ServerWideSettings` (the process: one log, one audit trail) and
`TransportSettings` (how the server is reached). `Settings`, the first two together, is what the code
serving one database receives. Environment variables, flags, their help and the keys a config file
accepts where are derived from these declarations.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from dotenv import load_dotenv
from pydantic import (
    AliasChoices,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, SettingsConfigDict

from pg_mcp.errors import ConfigError
from pg_mcp.names import column_setting, function_setting, table_setting
from pg_mcp.operator_notes import OperatorNotes, read_notes
from pg_mcp.operator_tools import ToolDefinition, read_tools

if TYPE_CHECKING:  # the guard is imported where it is used: start-up answers before it needs it
    from pg_mcp.guard.access import AccessPolicy

log = logging.getLogger(__name__)

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]

#: The environment variable that names the TOML config file (when no path is passed explicitly).
CONFIG_ENV = "PG_MCP_CONFIG"

#: Database names: short lowercase identifiers, safe to use as tool arguments and in logs.
DATABASE_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_NAME_RULE = (
    "a name is a lowercase letter followed by at most 62 lowercase letters, digits or underscores "
    "(^[a-z][a-z0-9_]{0,62}$)"
)

#: A tool's name, as MCP allows it (pg-mcp's own, and the config file's `[tools.NAME]`).
TOOL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")

#: pg-mcp's own tools, and its DBA insight tools, by name: what `tools` and `disable_tools` may name
#: besides the config file's own tools (tests/test_tool_filter.py holds them to the server's).
OWN_TOOL_NAMES = (
    "query", "list_schemas", "list_tables", "describe_table", "search_schema", "relationships", "sample_rows",
    "column_stats", "explain",
)  # fmt: skip
INSIGHT_TOOL_NAMES = ("slow_queries", "index_health", "table_health", "database_health", "explain_analyze")

#: The name of an environment variable, as `url_env` gives it.
_ENV_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _comma_separated(value: Any) -> Any:
    """A list setting given as text (environment, flags): comma-separated, blanks dropped."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


#: A list setting: a TOML array, or comma-separated text from the environment or a flag.
CommaList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_comma_separated)]


class _Scope(BaseSettings):
    """How every settings model reads the environment: `PG_MCP_<NAME>`, immutable once validated."""

    model_config = SettingsConfigDict(env_prefix="PG_MCP_", frozen=True, extra="ignore")


#: Seconds a call's transaction may sit idle beyond its statement timeout: see DatabaseSettings.
IDLE_GRACE = 5.0


class DatabaseSettings(_Scope):
    """What each database is served with (connection, pool, limits, access lists, allowances): a config
    file's `[server]` sets defaults for every database, and its `[databases.NAME]` overrides them."""

    database_url: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "PG_MCP_DATABASE_URL", "database_url")
    )
    max_rows: int = Field(
        default=100, ge=1, le=1_000_000, description="rows returned when the caller does not ask"
    )
    max_rows_limit: int = Field(
        default=1000, ge=1, le=1_000_000, description="the most rows a caller may ask for"
    )
    statement_timeout: float = Field(
        default=30.0, gt=0, le=86_400, description="seconds before a statement is cancelled"
    )
    lock_timeout: float = Field(default=5.0, gt=0, le=86_400, description="seconds to wait for a lock")
    connect_timeout: float = Field(default=10.0, gt=0, le=600, description="seconds to wait for a connection")
    pool_min: int = Field(default=1, ge=0, le=100, description="connections kept open")
    pool_max: int = Field(default=5, ge=1, le=100, description="most connections opened")
    pool_share: int = Field(
        default=0,
        ge=0,
        le=100,
        description="most connections one HTTP caller holds at once; 0 for half the pool (one is kept for short calls)",
    )
    schemas: CommaList = Field(
        default=(),
        description="comma-separated schemas to expose",
        json_schema_extra={"unset": "all the role can use"},
    )
    tables: CommaList = Field(
        default=(),
        description="comma-separated schema.table or schema.* the model may read",
        json_schema_extra={"unset": "all"},
    )
    hidden_columns: CommaList = Field(
        default=(), description="comma-separated schema.table.column (or table.column) to hide everywhere"
    )
    allow_functions: CommaList = Field(
        default=(), description="comma-separated extra functions queries may call"
    )
    max_cell_chars: int = Field(
        default=1000, ge=16, le=10_000_000, description="characters shown per value before it is cut"
    )
    max_result_bytes: int = Field(
        default=1_000_000, ge=1024, le=100_000_000, description="bytes of text per result before rows are cut"
    )
    max_cost: float = Field(
        default=1e9, ge=0, description="planner cost above which a query is refused; 0 for no budget"
    )
    max_plan_rows: float = Field(
        default=1e9, ge=0, description="planner row estimate above which a query is refused; 0 for no budget"
    )
    temp_file_limit: str = Field(
        default="1GB",
        pattern=r"^(-1|\d+\s*(kB|MB|GB|TB)?)$",
        description="temporary file space per statement, e.g. 1GB",
    )
    allow_secrets: CommaList = Field(
        default=(), description="comma-separated secrets queries may read after all"
    )
    insight: bool = Field(
        default=False,
        description="offer the DBA insight tools: slow_queries, index_health, table_health, database_health, "
        "explain_analyze",
    )
    description: str | None = Field(
        default=None, description="what the database holds and what to use it for, shown to the model"
    )
    tools: CommaList = Field(
        default=(),
        description="comma-separated tools offered on the database",
        json_schema_extra={"unset": "all"},
    )
    disable_tools: CommaList = Field(
        default=(), description="comma-separated tools not offered on the database"
    )
    ssh: str | None = Field(
        default=None, description="reach the database through this SSH bastion: user@host[:port]"
    )
    ssh_key: str | None = Field(default=None, description="SSH: the private key file")
    ssh_key_passphrase_env: str | None = Field(
        default=None, description="SSH: the environment variable holding the key's passphrase"
    )
    ssh_known_hosts: str | None = Field(
        default=None,
        description="SSH: the known_hosts file the bastion's host key is checked against (~/.ssh/known_hosts)",
    )
    ssh_jump: str | None = Field(
        default=None, description="SSH: a jump host before the bastion: user@host[:port]"
    )
    password_command: str | None = Field(
        default=None,
        description="a command that prints the password, run for new connections (output cached)",
    )
    password_cache: float = Field(
        default=300.0, gt=0, le=86_400, description="seconds a password_command's output is reused"
    )
    aws_iam: bool = Field(
        default=False, description="sign in with an AWS RDS IAM token (needs the aws extra)"
    )
    aws_region: str | None = Field(
        default=None, description="AWS: the region of the RDS database (default: from its host name)"
    )

    @field_validator("allow_functions")
    @classmethod
    def _one_spelling(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """The guard and the reach model compare function names as text: one spelling for both."""
        return tuple(function_setting(name) for name in value)

    @field_validator("tables", "hidden_columns")
    @classmethod
    def _dotted_names(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        """Refused at start-up, naming where it was set, rather than when the access policy is built."""
        parse = table_setting if info.field_name == "tables" else column_setting
        for entry in value:
            parse(entry)
        return value

    @field_validator("tools", "disable_tools")
    @classmethod
    def _tool_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """Names only here: whether each is a tool is known once the config file's own tools are read
        (`unknown_tools`)."""
        for name in value:
            if not TOOL_NAME.fullmatch(name):
                raise ValueError(f"{name[:80]!r} is not a tool name")
        return tuple(dict.fromkeys(value))

    @field_validator("description")
    @classmethod
    def _no_blank_description(cls, value: str | None) -> str | None:
        return (value.strip() or None) if value is not None else None

    @field_validator("allow_secrets")
    @classmethod
    def _known_secrets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        value = tuple(name.lower() for name in value)
        if not value:  # the default, validated too: no need to import the guard for it
            return value
        from pg_mcp.guard.secrets import SECRET_NAMES

        unknown = sorted(set(value) - SECRET_NAMES)
        if unknown:
            raise ValueError(
                f"unknown secret group {', '.join(unknown)}; known: {', '.join(sorted(SECRET_NAMES))}"
            )
        return value

    @field_validator("temp_file_limit", mode="before")
    @classmethod
    def _size_as_text(cls, value: Any) -> Any:
        """A config file may write `temp_file_limit = -1` or `= 1024` (kB) as a TOML integer."""
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        url = value.get_secret_value().strip()
        _check_url_text(url)
        return SecretStr(url)

    @model_validator(mode="after")
    def _check_ranges(self) -> DatabaseSettings:
        for low, high in (("max_rows", "max_rows_limit"), ("pool_min", "pool_max")):
            if getattr(self, low) > getattr(self, high):
                raise ValueError(
                    f"{ENV_NAMES[low]} ({getattr(self, low)}) exceeds {ENV_NAMES[high]} ({getattr(self, high)})"
                )
        return self

    @model_validator(mode="after")
    def _check_reach(self) -> DatabaseSettings:
        """An SSH tunnel needs its key; a password comes from one source at most."""
        if self.ssh and not self.ssh_key:
            raise ValueError(
                f"{ENV_NAMES['ssh']} needs {ENV_NAMES['ssh_key']}: the private key to sign in with"
            )
        if self.password_command and self.aws_iam:
            raise ValueError(
                f"{ENV_NAMES['password_command']} and {ENV_NAMES['aws_iam']} both give the password: choose one"
            )
        return self

    def offers(self, tool: str) -> bool:
        """Whether `tool` is offered on this database: named by `tools` (when set), not by `disable_tools`."""
        return (not self.tools or tool in self.tools) and tool not in self.disable_tools

    @property
    def idle_in_transaction_timeout(self) -> float:
        """Seconds PostgreSQL lets a call's transaction sit idle (`idle_in_transaction_session_timeout`).

        A call waits on the client only between statements, so a transaction idle for longer than a
        statement may run, plus IDLE_GRACE, has lost its client (a network partition, a ROLLBACK that
        never arrives): PostgreSQL ends it and frees its locks.
        """
        return self.statement_timeout + IDLE_GRACE

    @property
    def access(self) -> AccessPolicy:
        """What the operator lets the model read (schemas, tables, hidden columns)."""
        from pg_mcp.guard.access import AccessPolicy

        return AccessPolicy.from_settings(self.schemas, self.tables, self.hidden_columns)

    @property
    def dsn(self) -> str:
        """The connection string; raises ConfigError when none was given."""
        if self.database_url is None:
            raise ConfigError(
                "DATABASE_URL is not set.",
                "Pass it as the first argument (pg-mcp postgresql://user@host/db; for call: pg-mcp call "
                "--url postgresql://user@host/db TOOL), set the DATABASE_URL environment variable, put it in "
                "a .env file in the working directory, or list databases as [databases.NAME] tables in a "
                "TOML config file named by PG_MCP_CONFIG.",
            )
        return self.database_url.get_secret_value()

    @property
    def safe_dsn(self) -> str:
        """The connection string with any password replaced, for messages and logs."""
        return redact_dsn(self.dsn) if self.database_url else "(DATABASE_URL not set)"


class ServerWideSettings(_Scope):
    """What one process has once (one log, one audit trail): a config file sets these in `[server]`
    only, never per database."""

    log_level: LogLevel = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")
    audit_file: str | None = Field(
        default=None, description="also append the audit log (one JSON object per line) to this file"
    )
    audit_required: bool = Field(
        default=False, description="refuse calls while the audit file cannot be written"
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class Settings(ServerWideSettings, DatabaseSettings):  # bases in this order list the database's first
    """What the code serving one database receives: its own settings and the server's."""


class TransportSettings(_Scope):
    """How the server is reached: stdio (the default) or Streamable HTTP, and the HTTP limits. Set by
    the environment and `serve`'s flags only, never by a config file."""

    transport: Literal["stdio", "http"] = Field(default="stdio", description="stdio or http")
    host: str = Field(default="127.0.0.1", description="address the HTTP transport binds")
    port: int = Field(default=8000, ge=0, le=65_535, description="port the HTTP transport listens on")
    auth_tokens_file: str | None = Field(
        default=None, description="the static bearer tokens file (see pg-mcp token add)"
    )
    allow_unauthenticated: bool = Field(
        default=False, description="serve a non-loopback address without authentication"
    )
    allowed_hosts: CommaList = Field(
        default=(), description="comma-separated extra Host values accepted over HTTP (host or host:*)"
    )
    allowed_origins: CommaList = Field(
        default=(), description="comma-separated extra Origin values accepted over HTTP"
    )
    max_request_bytes: int = Field(
        default=1_000_000, ge=1024, le=100_000_000, description="largest HTTP request body, in bytes"
    )
    principal_concurrency: int = Field(
        default=8, ge=1, le=1000, description="HTTP requests one caller may have in flight"
    )
    principal_rate: float = Field(
        default=200.0,
        gt=0,
        le=100_000,
        description="HTTP requests per second one caller may make, burst twice that",
    )
    max_concurrent_calls: int = Field(
        default=32, ge=1, le=10_000, description="calls in flight across the HTTP server"
    )
    trusted_proxies: CommaList = Field(
        default=(), description="comma-separated proxy addresses whose X-Forwarded-For names the client"
    )
    max_connections: int = Field(
        default=512,
        ge=1,
        le=100_000,
        description="open HTTP connections; at the cap the oldest idle one is closed",
    )
    request_timeout: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="seconds an HTTP request's headers and body may take to arrive",
    )
    max_header_bytes: int = Field(
        default=32_768, ge=1024, le=1_048_576, description="largest HTTP request head, in bytes"
    )
    oauth_issuer: str | None = Field(
        default=None, description="OAuth: the issuer whose JWT access tokens are accepted"
    )
    oauth_audience: str | None = Field(
        default=None,
        description="OAuth: this server's resource URL, the tokens' audience (e.g. https://db.example.com/mcp)",
    )
    oauth_jwks_url: str | None = Field(
        default=None, description="OAuth: the issuer's JWKS URL", json_schema_extra={"unset": "discovered"}
    )
    oauth_scopes: str = Field(default="", description="OAuth: scopes every token must carry, comma-separated")
    oauth_databases_claim: str = Field(
        default="pg_mcp_databases",
        description="OAuth: the claim listing the databases a token may use; empty for all",
    )
    oauth_algorithms: str = Field(default="RS256,ES256", description="OAuth: accepted signing algorithms")
    log_format: Literal["text", "json"] = Field(
        default="text", description="stderr log lines as text, or json (one JSON object each)"
    )
    metrics: Literal["auto", "on", "off"] = Field(
        default="auto", description="serve /metrics: auto (on loopback binds only), on or off"
    )
    shutdown_grace: float = Field(
        default=10.0, ge=0, le=600, description="seconds calls in flight get to finish at SIGTERM"
    )


def _check_url_text(url: str) -> None:
    """Refuse a URL libpq would misread, with a message that never quotes it (it may hold a password)."""
    try:
        parts = urlsplit(url)
        hosts = parts.netloc.rpartition("@")[2]
        for host in hosts.split(",") if "," in hosts else [hosts]:  # libpq's h1:p1,h2:p2 form
            _port = urlsplit(f"//{host}").port  # ValueError for a port that is not a number in 0-65535
    except ValueError:  # the parser's message may quote part of the password: never shown
        raise ValueError(
            "is not a valid URL: expected postgresql://user:password@host:5432/db with a numeric "
            "port, and special characters in the user or password percent-encoded (@ as %40, "
            "/ as %2F, : as %3A)"
        ) from None
    if "@" in parts.path:
        raise ValueError(
            "has an '@' after the first '/', so a '/' in the password ended the host part early: "
            "percent-encode '/' in the user name or password as %2F and '@' as %40 (s3cr@t/pw becomes "
            "s3cr%40t%2Fpw)"
        )
    if parts.netloc.count("@") > 1:
        raise ValueError(
            "has more than one '@' before the host, so the host cannot be told apart from the password: "
            "percent-encode '@' in the user name or password as %40 (p@ss becomes p%40ss)"
        )
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError("must be a URL starting with postgresql:// (e.g. postgresql://user:pass@host/db)")


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


# What follows is derived from the declarations above: environment variables, flags, their help, the
# keys a config file accepts where, and the defaults as the documentation writes them (a test holds
# .env.example, docs/settings.md and the README to these).


def env_name(field: str, model: type[BaseSettings] = Settings) -> str:
    """A field's environment variable: its first declared alias (DATABASE_URL), else PG_MCP_<NAME>."""
    alias = model.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0]
    if isinstance(alias, str):
        return alias
    return f"{model.model_config.get('env_prefix', '')}{field}".upper()


#: Environment variable for each setting, used in error messages and the flags' help.
ENV_NAMES: dict[str, str] = {field: env_name(field) for field in Settings.model_fields}

#: Environment variable for each transport setting.
TRANSPORT_ENV_NAMES: dict[str, str] = {
    field: env_name(field, TransportSettings) for field in TransportSettings.model_fields
}

#: Settings of the server as a whole (one log, one audit trail): only `[server]` may set them.
SERVER_WIDE: frozenset[str] = frozenset(ServerWideSettings.model_fields)


def flag(field: str) -> str:
    """A setting's command-line flag: `--max-rows` for max_rows."""
    return "--" + field.replace("_", "-")


def env_default(info: FieldInfo) -> str:
    """A default as the environment writes it (.env.example): empty when the setting has none."""
    value = info.default
    if value is None or value == ():
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


def stated_default(info: FieldInfo) -> str:
    """A default as people read it (flags' help, settings tables): the value, else what none means."""
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    return env_default(info) or str(extra.get("unset", "none"))


def flag_help(field: str, model: type[BaseSettings] = Settings) -> str:
    """A flag's help: what the setting means, its default and its environment variable."""
    info = model.model_fields[field]
    return f"{info.description} (default: {stated_default(info)}) [{env_name(field, model)}]"


# Every spelling under which a field can reach the model (aliases of database_url), lowercased.
_FIELD_BY_KEY: dict[str, str] = {field: field for field in Settings.model_fields} | {
    choice.lower(): field
    for field, info in Settings.model_fields.items()
    if isinstance(info.validation_alias, AliasChoices)
    for choice in info.validation_alias.choices
    if isinstance(choice, str)
}
_SETTING_KEYS = tuple(field for field in Settings.model_fields if field != "database_url")
_DATABASE_KEYS = (*(key for key in DatabaseSettings.model_fields if key != "database_url"), "url", "url_env")
_SERVER_SPECIAL = dict.fromkeys(
    ("database_url", "url", "url_env"),
    "belongs in a [databases.NAME] table: each database has its own url or url_env "
    "(or leave [databases] out and use DATABASE_URL)",
) | {
    key: f"is a table of each database: [databases.NAME.{key}], or [{key}] at the top of the file for "
    "the single database"
    for key in ("descriptions", "glossary")
}
#: Tables of their own in a database's table, and at the top of a file without [databases].
_NOTE_TABLES = ("descriptions", "glossary")
_DATABASE_SPECIAL = dict.fromkeys(SERVER_WIDE, "is server-wide: set it in [server], not per database")


@dataclass(frozen=True)
class ServerConfig:
    """Every database one server serves, by name, and where the configuration came from (`source`,
    for messages).

    `databases` keeps the config file's order; the first is the default, used when a caller names none.
    Every database carries the same server-wide settings (only `[server]`, the environment and flags
    set them), so `server` reads them from the default one.
    """

    databases: dict[str, Settings]
    source: str
    #: The operator's own tools (`[tools.NAME]` in the config file), each checked by the guard.
    tools: tuple[ToolDefinition, ...] = ()
    #: What the operator wrote about each database (descriptions, glossary), by database name.
    notes: Mapping[str, OperatorNotes] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.databases:
            raise ConfigError("A server configuration needs at least one database.")

    @property
    def default(self) -> str:
        """The name of the database used when a caller does not name one: the first configured."""
        return next(iter(self.databases))

    @property
    def server(self) -> ServerWideSettings:
        """The settings of the process as a whole: its log and audit trail."""
        return self.databases[self.default]

    @property
    def log_level(self) -> LogLevel:
        return self.server.log_level

    @property
    def audit_file(self) -> str | None:
        return self.server.audit_file


def _given(overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The overrides actually given: a flag left out is None, and leaves the environment's value."""
    return {key: value for key, value in (overrides or {}).items() if value is not None}


def load_settings(overrides: dict[str, Any] | None = None, *, dotenv: bool = True) -> Settings:
    """Build Settings from the environment (and `.env`) plus explicit overrides, or raise ConfigError."""
    if dotenv:
        load_dotenv(".env", override=False)
    try:
        return Settings(**_given(overrides))
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def unknown_tools(settings: DatabaseSettings, known: Iterable[str]) -> list[tuple[str, str]]:
    """(field, problem) for each name in `tools` or `disable_tools` that is not a tool of the server:
    pg-mcp's own (`OWN_TOOL_NAMES`, `INSIGHT_TOOL_NAMES`) or the config file's."""
    known = tuple(dict.fromkeys(known))
    found = []
    for field in ("tools", "disable_tools"):
        for name in getattr(settings, field):
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
                guess = f" (did you mean {close[0]}?)" if close else ""
                found.append((field, f"unknown tool {name!r}{guess}; the tools are {', '.join(known)}"))
    return found


def load_transport(overrides: dict[str, Any] | None = None) -> TransportSettings:
    """Transport settings from the environment (and `.env`, already loaded) plus flags, or ConfigError."""
    try:
        return TransportSettings(**_given(overrides))
    except ValidationError as exc:
        raise ConfigError(_describe(exc, TransportSettings)) from None


def load_config(
    overrides: dict[str, Any] | None = None, config_file: str | None = None, *, dotenv: bool = True
) -> ServerConfig:
    """Every database to serve, from a TOML config file if one is named, else the single DATABASE_URL.

    `config_file` falls back to the PG_MCP_CONFIG environment variable (which `.env` may set). Without
    a file this is exactly `load_settings`, as one database named after the database in its URL. With
    one, precedence is, lowest first: defaults, `[server]`, environment variables, `overrides` (the
    command line), the database's own `[databases.NAME]` table. When the file lists databases,
    DATABASE_URL is not used; when it has no `[databases]`, DATABASE_URL (or the overrides) gives the
    one database and `[server]` only defaults. Raises ConfigError with one line per problem, never
    quoting a URL or a password.
    """
    if dotenv:
        load_dotenv(".env", override=False)
    warn_unknown_environment()
    from_env = not config_file
    path = (config_file or os.environ.get(CONFIG_ENV, "")).strip()
    if not path:
        settings = load_settings(overrides, dotenv=False)
        problems = unknown_tools(settings, (*OWN_TOOL_NAMES, *INSIGHT_TOOL_NAMES))
        if problems:
            raise ConfigError(
                "\n".join(f"Invalid setting {_env_label(field)}: {text}" for field, text in problems)
            )
        return single_database(settings, "DATABASE_URL")
    return _from_document(_read_toml(path, from_env), path, overrides)


#: PG_MCP_ variables read outside the settings (the demo's cache, the tests' own).
OTHER_ENV_NAMES = frozenset(
    {"PG_MCP_DATABASE_URL", "PG_MCP_DEMO_CACHE", "PG_MCP_TEST_DATABASE_URL", "PG_MCP_EXPECT_SQLGLOT_BUILD"}
)


def warn_unknown_environment() -> None:
    """A misspelt PG_MCP_ variable (in the environment or `.env`) would be ignored in silence, while the
    same typo in a config file is refused: say so on stderr, with the setting it was probably meant as."""
    known = {CONFIG_ENV, *ENV_NAMES.values(), *TRANSPORT_ENV_NAMES.values(), *OTHER_ENV_NAMES}
    for name in sorted(key for key in os.environ if key.upper().startswith("PG_MCP_")):
        if name.upper() not in known:
            close = difflib.get_close_matches(name.upper(), sorted(known), n=1, cutoff=0.7)
            guess = f"; did you mean {close[0]}?" if close else ""
            log.warning("%s is not a pg-mcp setting and is ignored%s", name, guess)


def single_database(settings: Settings, source: str = "DATABASE_URL") -> ServerConfig:
    """One database, named after the database in its URL so that messages and tools say something useful."""
    url = settings.database_url.get_secret_value() if settings.database_url else None
    return ServerConfig({_name_from_url(url): settings}, source)


def _name_from_url(url: str | None) -> str:
    """The URL's database name when it is a valid database name (lowercased), else "default"."""
    try:
        name = unquote(urlsplit(url or "").path.lstrip("/")).lower()
    except ValueError:
        return "default"
    return name if DATABASE_NAME.fullmatch(name) else "default"


def _read_toml(path: str, from_env: bool) -> dict[str, Any]:
    """The parsed file, or a ConfigError naming it (and the line, for a syntax error)."""
    import tomllib  # only with a config file: most servers have none

    where = f"config file {path}" + (f" (named by {CONFIG_ENV})" if from_env else "")
    try:
        with Path(path).expanduser().open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        unset = f", or unset {CONFIG_ENV}" if from_env else ""
        raise ConfigError(f"The {where} does not exist.", f"Give the path of a TOML file{unset}.") from None
    except OSError as exc:
        raise ConfigError(f"Cannot read the {where}: {exc.strerror}.") from None
    except UnicodeDecodeError:
        raise ConfigError(f"The {where} is not UTF-8 text.") from None
    except tomllib.TOMLDecodeError as exc:  # the message ends "(at line N, column M)"
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def _from_document(document: dict[str, Any], path: str, overrides: dict[str, Any] | None) -> ServerConfig:
    """Check the file's tables and keys, then build and validate each database's settings."""
    problems: list[str] = []  # file problems carry the path; every one is reported at once
    file_problem = _in_file(path, problems)
    _check_top_level(document, file_problem)
    server = document.get("server", {})
    server_values = _known_keys("[server]", server if isinstance(server, dict) else {}, _SETTING_KEYS,
                                _SERVER_SPECIAL, file_problem)  # fmt: skip
    given = _given(overrides)
    declared = document.get("tools")
    known_tools = (*OWN_TOOL_NAMES, *INSIGHT_TOOL_NAMES, *(declared if isinstance(declared, dict) else ()))
    databases = document.get("databases")
    if not isinstance(databases, dict):  # no [databases]: one database, from DATABASE_URL or the flags
        layers = [("server", server_values), ("env", _environment()), ("override", given)]
        settings = _build(layers, None, "", path, problems, known_tools)
        notes = read_notes(document.get("descriptions"), document.get("glossary"), "", file_problem)
        if problems or settings is None:
            raise ConfigError("\n".join(dict.fromkeys(problems)))
        single = single_database(settings, path)
        tools = _operator_tools(document, path, single.databases)
        return replace(single, tools=tools, notes={single.default: notes})
    built, notes_of = _listed_databases(databases, server_values, given, path, problems, known_tools)
    if problems or not built:
        raise ConfigError("\n".join(dict.fromkeys(problems)))
    return ServerConfig(built, path, _operator_tools(document, path, built), notes_of)


def _operator_tools(
    document: dict[str, Any], path: str, databases: dict[str, Settings]
) -> tuple[ToolDefinition, ...]:
    """The `[tools.NAME]` tables, each statement checked by the guard as it will run (its parameters as
    parameters): a definition the guard refuses stops the server, naming its line."""
    tables = document.get("tools", {})
    if not tables:
        return ()
    from pg_mcp.errors import GuardError
    from pg_mcp.guard import GuardPolicy
    from pg_mcp.guard.checking import verdict
    from pg_mcp.guard.postgres_reading import parameter_numbers

    text = Path(path).expanduser().read_text(encoding="utf-8")

    def where(name: str) -> str:
        return f"{path} line {_line_of(text, name)} ([tools.{name}])"

    try:
        tools = read_tools(tables, list(databases), (), where)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    for tool in tools:
        settings = databases[tool.database]
        policy = GuardPolicy(
            allowed_functions=frozenset(settings.allow_functions),
            allowed_secrets=frozenset(settings.allow_secrets),
            parameters=len(tool.parameters),
        )
        try:
            verdict(tool.sql, tool.max_rows or settings.max_rows, policy)
        except GuardError as refusal:
            raise ConfigError(
                f"{where(tool.name)}: the guard refuses its sql: {refusal.message}", refusal.hint
            ) from None
        unused = set(range(1, len(tool.parameters) + 1)) - parameter_numbers(tool.sql)
        if unused:
            names = ", ".join(tool.parameters[n - 1].name for n in sorted(unused))
            raise ConfigError(
                f"{where(tool.name)}: its sql does not use the parameter {names} "
                f"(${', $'.join(map(str, sorted(unused)))}).",
                "Use each declared parameter in the sql, or remove it from the tool.",
            )
    return tools


def _line_of(text: str, name: str) -> int | str:
    """The line of `[tools.NAME]` in the file (`?` when it is written another way)."""
    header = re.compile(rf'^\s*\[\s*tools\s*\.\s*"?{re.escape(name)}"?\s*\]', re.MULTILINE)
    found = header.search(text)
    return text.count("\n", 0, found.start()) + 1 if found else "?"


def _in_file(path: str, problems: list[str]) -> Callable[[str], None]:
    """Report a problem of the config file at `path` (its messages start with the path)."""
    return lambda text: problems.append(f"{path}: {text}")


def _check_top_level(document: dict[str, Any], file_problem: Callable[[str], None]) -> None:
    """Only `[server]`, `[databases.NAME]` and `[tools.NAME]` tables at the top (and, for the single
    database, `[descriptions]` and `[glossary.TERM]`): a setting there is in no table."""
    tables = ("server", "databases", "tools", *_NOTE_TABLES)
    for key, value in document.items():
        if key in ("server", "databases", "tools"):
            if not isinstance(value, dict):
                file_problem(f"{key} must be a table ([{'server' if key == 'server' else key + '.NAME'}])")
        elif key in _NOTE_TABLES:
            if "databases" in document:
                file_problem(
                    f"[{key}] is for the single database of a file without [databases]: "
                    f"put it in [databases.NAME.{key}]"
                )
        elif key in _SETTING_KEYS or key in ("url", "url_env"):
            file_problem(f"{key} is outside any table: put it in [server] or a [databases.NAME] table")
        else:
            file_problem(f"unknown top-level key {_shown(key)}{_guess(key, tables)}")


def _listed_databases(
    databases: dict[str, Any],
    server: dict[str, Any],
    given: dict[str, Any],
    path: str,
    problems: list[str],
    known_tools: Iterable[str],
) -> tuple[dict[str, Settings], dict[str, OperatorNotes]]:
    """Each `[databases.NAME]` table over `[server]`, the environment and the flags: the most specific
    wins. DATABASE_URL is not used, and a URL on the command line is refused."""
    if not databases and not problems:
        raise ConfigError(
            f"{path}: [databases] lists no databases, and DATABASE_URL is not used when it is present.",
            "Add a [databases.NAME] table with url or url_env for each database, or remove [databases] "
            "to serve DATABASE_URL.",
        )
    if "database_url" in given:
        problems.append(
            f"A database URL was given on the command line, but the config file {path} lists its "
            "databases in [databases]: give one or the other."
        )
    environment = _environment()
    environment.pop("database_url", None)
    built: dict[str, Settings] = {}
    notes: dict[str, OperatorNotes] = {}
    for name, table in databases.items():
        own = _database_table(name, table, _in_file(path, problems))
        if own is None:
            continue
        layers = [("server", server), ("env", environment), ("override", given), ("database", own[0])]
        settings = _build(layers, (name, own[1]), f" for [databases.{name}]", path, problems, known_tools)
        notes[name] = read_notes(table.get("descriptions"), table.get("glossary"), f"databases.{name}.",
                                 _in_file(path, problems))  # fmt: skip
        if settings is not None:
            built[name] = settings
    return built, notes


def _database_table(
    name: str, table: Any, file_problem: Callable[[str], None]
) -> tuple[dict[str, Any], str] | None:
    """A database's own settings, its URL among them, and the key that gave the URL (for messages)."""
    where = f"[databases.{_shown(name, quoted=False)}]"
    if not DATABASE_NAME.fullmatch(name):
        file_problem(f"{where} invalid database name: {_NAME_RULE}")
        return None
    if not isinstance(table, dict):
        file_problem(f"{where} must be a table with url or url_env, not a single value")
        return None
    settings = {key: value for key, value in table.items() if key not in _NOTE_TABLES}
    values = _known_keys(where, settings, _DATABASE_KEYS, _DATABASE_SPECIAL, file_problem)
    url = _database_url(where, values.pop("url", None), values.pop("url_env", None), table, file_problem)
    if url is None:
        return None
    values["database_url"] = url[0]
    return values, url[1]


def _shown(text: str, *, quoted: bool = True) -> str:
    """A key or table name for a message, unless it looks like it could hold a URL or password."""
    if not re.fullmatch(r"[\w\-. ]{1,64}", text):
        return "<a name not shown>"
    return repr(text) if quoted else text


def _guess(key: str, known: Iterable[str]) -> str:
    """' (did you mean X?)' for the closest known key, or ''."""
    close = difflib.get_close_matches(key.lower().replace("-", "_"), list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _known_keys(
    where: str,
    table: dict[str, Any],
    known: Iterable[str],
    special: Mapping[str, str],
    problem: Callable[[str], None],
) -> dict[str, Any]:
    """The table's known keys and values; each other key is reported (with a suggestion) and dropped."""
    known = tuple(known)
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key in known:
            values[key] = value
        elif key in special:
            problem(f"{where} {key} {special[key]}")
        elif key == "database_url":
            problem(f"{where} unknown key 'database_url' (did you mean url or url_env?)")
        else:
            problem(f"{where} unknown key {_shown(key)}{_guess(key, known)}")
    return values


def _database_url(
    where: str, url: Any, url_env: Any, table: dict[str, Any], problem: Callable[[str], None]
) -> tuple[str, str] | None:
    """The database's URL and the key that gave it (for messages), from exactly one of url and url_env."""
    if ("url" in table) == ("url_env" in table):
        problem(
            f"{where} sets both url and url_env: give exactly one"
            if "url" in table
            else f'{where} needs url or url_env (exactly one), e.g. url_env = "SALES_DATABASE_URL"'
        )
        return None
    if "url" in table:
        if not isinstance(url, str) or not url.strip():
            problem(f"{where} url must be a non-empty string postgresql://user@host:5432/db")
            return None
        return url, "url"
    if not isinstance(url_env, str) or not _ENV_VAR.fullmatch(url_env):
        problem(
            f"{where} url_env must be the name of an environment variable (letters, digits, underscores) "
            "that holds the URL; to write the URL itself, use url"
        )
        return None
    value = os.environ.get(url_env)
    if value is None:
        problem(f"{where} url_env {url_env} is not set in the environment")
        return None
    if not value.strip():
        problem(f"{where} url_env {url_env} is empty in the environment")
        return None
    return value, f"url_env ({url_env})"


def _environment() -> dict[str, Any]:
    """The settings the environment gives (as text, keyed by field), read as Settings itself reads them."""
    found = EnvSettingsSource(Settings)()
    return {_FIELD_BY_KEY.get(key.lower(), key): value for key, value in found.items()}


def _build(
    layers: list[tuple[str, dict[str, Any]]],
    database: tuple[str, str] | None,
    scope: str,
    path: str,
    problems: list[str],
    known_tools: Iterable[str],
) -> Settings | None:
    """Settings from the layers (later wins), or None with each invalid value reported under its source
    (a tool that `tools` or `disable_tools` names must be one of `known_tools`)."""
    data: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for layer, values in layers:
        data.update(values)
        origin.update(dict.fromkeys(values, layer))

    def label(field: str) -> tuple[str, bool]:
        layer = origin.get(field)
        if layer == "server":
            return f"server.{field}", True
        if layer == "database" and database is not None:
            key = database[1] if field == "database_url" else field
            return f"databases.{database[0]}.{key}", True
        return _env_label(field), False

    try:
        settings = Settings(**data)
    except ValidationError as exc:
        problems.extend(_problems(exc, label, scope, path))
        return None
    unknown = unknown_tools(settings, known_tools)
    for field_name, text in unknown:
        name, in_file = label(field_name)
        problems.append(
            f"{path}: Invalid setting {name}: {text}" if in_file else f"Invalid setting {name}: {text}"
        )
    return None if unknown else settings


def _describe(exc: ValidationError, model: type[BaseSettings] = Settings) -> str:
    """One line per invalid setting, naming its variable and flag and what it accepts (never the value)."""
    return "\n".join(_problems(exc, lambda field: (_env_label(field, model), False), "", None, model))


def _env_label(field: str, model: type[BaseSettings] = Settings) -> str:
    """How the environment and the command line name a setting: `PG_MCP_MAX_ROWS (--max-rows)`."""
    if field not in model.model_fields:
        return field.upper()
    name = env_name(field, model)
    return name if field == "database_url" else f"{name} ({flag(field)})"


def _problems(
    exc: ValidationError,
    label: Callable[[str], tuple[str, bool]],
    scope: str,
    path: str | None,
    model: type[BaseSettings] = Settings,
) -> list[str]:
    """One line per error, naming the setting where it was given (`label`: its name, and whether the
    name is in the config file at `path`) and what it accepts; never the value."""
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        message = error["msg"].removeprefix("Value error, ")
        if not error["loc"]:
            line, in_file = f"Invalid settings{scope}: {message}", bool(scope)
        else:
            field = _FIELD_BY_KEY.get(str(error["loc"][0]).lower(), str(error["loc"][0]))
            name, in_file = label(field)
            accepted = _accepted(field, model)
            line = f"Invalid setting {name}: {message}" + (f"; it accepts {accepted}" if accepted else "")
        lines.append(f"{path}: {line}" if in_file and path else line)
    return lines


def _accepted(field: str, model: type[BaseSettings] = Settings) -> str | None:
    """The accepted range of a numeric setting, from its declared bounds."""
    info = model.model_fields.get(field)
    if info is None or info.annotation not in (int, float):
        return None
    bounds = {
        key: getattr(item, key) for item in info.metadata for key in ("ge", "gt", "le") if hasattr(item, key)
    }
    kind = "a whole number" if info.annotation is int else "a number"
    low = f"from {bounds['ge']}" if "ge" in bounds else f"above {bounds.get('gt', 0)}"
    return f"{kind} {low} to {bounds['le']}" if "le" in bounds else f"{kind} {low}"
