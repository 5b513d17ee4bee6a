"""Secrets a role can read but an analyst never needs: refused by default, allowed per group.

PostgreSQL lets any role read some of these (custom settings set with `ALTER DATABASE ... SET`,
server addresses, other sessions' SQL in `pg_stat_activity`), and a superuser all of them. They are
refused in the statement's text (however spelled: PostgreSQL's own parser has folded and unquoted
the names) and again in its plan (a view over `pg_authid` shows `pg_authid` there).
An operator can allow a group with PG_MCP_ALLOW_SECRETS.
"""

from __future__ import annotations

from dataclasses import dataclass

from pg_mcp.errors import GuardError
from pg_mcp.guard.rules import Rule


@dataclass(frozen=True)
class SecretGroup:
    """Relations and functions that expose one kind of secret, and why it is refused."""

    relations: frozenset[str]
    functions: frozenset[str]
    reason: str


def _group(relations: str, functions: str, reason: str) -> SecretGroup:
    return SecretGroup(frozenset(relations.split()), frozenset(functions.split()), reason)


SECRET_GROUPS: dict[str, SecretGroup] = {
    "passwords": _group("pg_authid pg_shadow", "", "it holds password hashes"),
    "user_mappings": _group(
        "pg_user_mapping pg_user_mappings", "", "it holds the passwords of foreign-server user mappings"
    ),
    "other_sessions": _group(
        "",
        "pg_stat_get_backend_activity",
        "it shows the SQL other sessions are running",
    ),
    "server_files": _group(
        "pg_hba_file_rules pg_ident_file_mappings pg_file_settings pg_config",
        "pg_hba_file_rules pg_ident_file_mappings pg_show_all_file_settings pg_config pg_read_file "
        "pg_read_binary_file pg_stat_file pg_current_logfile pg_tablespace_location pg_relation_filepath",
        "it reads the server's files or their paths",
    ),
    "server_config": _group(
        "pg_settings",
        "pg_show_all_settings inet_server_addr inet_server_port",
        "it shows the server's configuration and addresses",
    ),
    "custom_settings": _group(
        "pg_db_role_setting", "", "it holds per-database and per-role settings, where secrets are often kept"
    ),
    "large_objects": _group(
        "pg_largeobject",
        "lo_get loread",
        "it holds the contents of large objects, outside every table's limits",
    ),
    "subscriptions": _group(
        "pg_subscription", "", "it holds logical-replication subscriptions' connection strings and passwords"
    ),
}
"""Group name (what PG_MCP_ALLOW_SECRETS takes) -> what it covers."""

#: Catalogs that system views read with the secret column masked or left out (`pg_roles` over
#: `pg_authid`): in a plan they are refused only when the secret column or whole rows are read.
SECRET_COLUMNS: dict[str, tuple[str, str]] = {
    "pg_authid": ("rolpassword", "passwords"),
    "pg_user_mapping": ("umoptions", "user_mappings"),
}

#: Built-in set-returning functions with one secret column: whatever reads that column (or whole
#: rows) is refused, every other column is readable (`pg_stat_activity` reads pg_stat_get_activity).
#: Judged on PostgreSQL's analysis of the statement (pg_mcp.guard.analysed).
SECRET_FUNCTION_COLUMNS: dict[str, tuple[str, str]] = {
    "pg_stat_get_activity": ("query", "other_sessions"),
}

TOAST = "toast"
"""The group name that allows reading `pg_toast.*` directly."""

SECRET_NAMES = frozenset({*SECRET_GROUPS, TOAST})

#: Settings any analyst may read with current_setting(): formats, limits, versions, locale.
HARMLESS_SETTINGS = frozenset(
    [
        "timezone",
        "datestyle",
        "intervalstyle",
        "search_path",
        "server_version",
        "server_version_num",
        "server_encoding",
        "client_encoding",
        "lc_collate",
        "lc_ctype",
        "lc_messages",
        "lc_monetary",
        "lc_numeric",
        "lc_time",
        "standard_conforming_strings",
        "statement_timeout",
        "lock_timeout",
        "idle_in_transaction_session_timeout",
        "default_transaction_read_only",
        "transaction_read_only",
        "transaction_isolation",
        "default_transaction_isolation",
        "work_mem",
        "maintenance_work_mem",
        "max_connections",
        "extra_float_digits",
        "bytea_output",
        "integer_datetimes",
        "block_size",
        "max_identifier_length",
        "max_index_keys",
        "max_function_args",
        "default_text_search_config",
        "is_superuser",
        "timezone_abbreviations",
        "shared_buffers",
        "effective_cache_size",
        "random_page_cost",
        "seq_page_cost",
        "cpu_tuple_cost",
        "default_statistics_target",
        "jit",
        "max_parallel_workers_per_gather",
        "application_name",
        "temp_file_limit",
        "xmlbinary",
        "xmloption",
        "array_nulls",
        "enable_seqscan",
        "enable_indexscan",
        "enable_hashjoin",
        "enable_mergejoin",
        "enable_nestloop",
        "geqo",
        "row_security",
        "role",
        "min_parallel_index_scan_size",
        "max_prepared_transactions",
    ]
)

_HINT = "This is refused by default; an operator can allow it with PG_MCP_ALLOW_SECRETS={group}."


def check_relation(schema: str | None, name: str, allowed: frozenset[str]) -> None:
    """Refuse a secret relation read by its catalog name (unqualified names resolve to pg_catalog)."""
    if schema == "pg_toast" and TOAST not in allowed:
        raise GuardError(
            Rule.SECRET,
            f"pg_toast.{name} is a TOAST table: it holds the raw stored values of other tables, outside "
            "their column limits.",
            "Read the table the values belong to. " + _HINT.format(group=TOAST),
        )
    if schema not in (None, "pg_catalog"):
        return
    for group_name, group in SECRET_GROUPS.items():
        if name in group.relations and group_name not in allowed:
            raise GuardError(
                Rule.SECRET,
                f"The query reads pg_catalog.{name}, which is refused: {group.reason}.",
                _HINT.format(group=group_name),
            )


#: System views over those functions: a read of the secret column by name is refused before anything
#: reaches the server (whole-row reads are judged on PostgreSQL's analysis).
SECRET_VIEWS_READING = frozenset({"pg_stat_activity"})


def check_function_column(name: str, column: str, allowed: frozenset[str]) -> None:
    """Refuse reading the secret column of a set-returning function (SECRET_FUNCTION_COLUMNS)."""
    secret_column, group_name = SECRET_FUNCTION_COLUMNS[name]
    if column == secret_column and group_name not in allowed:
        raise GuardError(
            Rule.SECRET,
            f"The query reads the {column} column of {name}() (pg_stat_activity), which is refused: "
            f"{SECRET_GROUPS[group_name].reason}.",
            "Select the other columns by name. " + _HINT.format(group=group_name),
        )


def check_function(name: str, allowed: frozenset[str]) -> None:
    """Refuse a built-in function that returns a secret."""
    for group_name, group in SECRET_GROUPS.items():
        if name in group.functions and group_name not in allowed:
            raise GuardError(
                Rule.SECRET,
                f"The function {name}() is refused: {group.reason}.",
                _HINT.format(group=group_name),
            )


def check_setting(setting: str | None, allowed: frozenset[str]) -> None:
    """current_setting() of a constant, harmless built-in setting only: custom `x.y` ones may be secrets."""
    if "custom_settings" in allowed and "server_config" in allowed:
        return
    if setting is None:
        raise GuardError(
            Rule.SETTING,
            "current_setting() is accepted only with a constant setting name.",
            "Write the setting's name as a string literal, e.g. current_setting('TimeZone').",
        )
    if setting.lower() not in HARMLESS_SETTINGS:
        group = "custom_settings" if "." in setting else "server_config"
        if group in allowed:
            return
        raise GuardError(
            Rule.SETTING,
            f"The setting {setting!r} is not on the list of settings queries may read: custom and "
            "server settings can hold secrets and file paths.",
            "Read formats and limits such as TimeZone, DateStyle or server_version. "
            + _HINT.format(group=group),
        )
