"""The TOML config file (several databases), its precedence and its messages (tests/test_docs.py: that
every setting is documented as declared).

Pure configuration tests: no database is needed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from factories import write_config

from pg_mcp.config import (
    SERVER_WIDE,
    ServerConfig,
    Settings,
    load_config,
    load_settings,
)
from pg_mcp.errors import ConfigError

PASSWORD = "hunter2secret"
URL = f"postgresql://reader:{PASSWORD}@db.example.com:5432/shop"

#: A valid value, different from the default, for every setting but the URL: (as written in TOML, as read).
VALUES: dict[str, tuple[Any, Any]] = {
    "max_rows": (7, 7),
    "max_rows_limit": (70, 70),
    "statement_timeout": (12.5, 12.5),
    "lock_timeout": (2, 2.0),
    "connect_timeout": (3, 3.0),
    "pool_min": (2, 2),
    "pool_max": (4, 4),
    "pool_share": (2, 2),
    "schemas": (["s1", "s2"], ("s1", "s2")),
    "tables": (["s1.t", "s2.*"], ("s1.t", "s2.*")),
    "hidden_columns": (["s1.t.c"], ("s1.t.c",)),
    "allow_functions": (["My.Fn"], ("my.fn",)),
    "max_cell_chars": (50, 50),
    "max_result_bytes": (2048, 2048),
    "max_cost": (123.5, 123.5),
    "max_plan_rows": (456, 456.0),
    "temp_file_limit": ("2GB", "2GB"),
    "allow_secrets": (["passwords", "toast"], ("passwords", "toast")),
    "insight": (True, True),
    "description": ("  The shop's orders and customers ", "The shop's orders and customers"),
    "tools": (["query", "list_tables"], ("query", "list_tables")),
    "disable_tools": (["sample_rows"], ("sample_rows",)),
    "ssh": ("deploy@bastion.example.com:2222", "deploy@bastion.example.com:2222"),
    "ssh_key": ("/etc/pg-mcp/id_ed25519", "/etc/pg-mcp/id_ed25519"),
    "ssh_key_passphrase_env": ("BASTION_PASSPHRASE", "BASTION_PASSPHRASE"),
    "ssh_known_hosts": ("/etc/pg-mcp/known_hosts", "/etc/pg-mcp/known_hosts"),
    "ssh_jump": ("jump.example.com", "jump.example.com"),
    "password_command": ("vault kv get -field=password secret/pg", "vault kv get -field=password secret/pg"),
    "password_cache": (60, 60.0),
    "aws_iam": (False, False),
    "aws_region": ("eu-west-1", "eu-west-1"),
    "log_level": ("debug", "DEBUG"),
    "audit_file": ("/var/log/pg-mcp/audit.jsonl", "/var/log/pg-mcp/audit.jsonl"),
    "audit_required": (True, True),
}
PER_DATABASE = [field for field in VALUES if field not in SERVER_WIDE]

pytestmark = pytest.mark.usefixtures("clean_environment")


def toml_table(header: str, values: dict[str, Any]) -> str:
    """A TOML table; JSON strings, numbers and arrays of strings are valid TOML values."""
    return f"[{header}]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())


def config(tmp_path: Path, text: str, overrides: dict[str, Any] | None = None) -> ServerConfig:
    return load_config(overrides, write_config(tmp_path, text), dotenv=False)


def error(tmp_path: Path, text: str, overrides: dict[str, Any] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        config(tmp_path, text, overrides)
    message = str(caught.value)
    assert PASSWORD not in message
    return message


def test_the_values_above_cover_every_setting() -> None:
    assert set(VALUES) == set(Settings.model_fields) - {"database_url"}


# Without a config file: today's single database.


def test_no_config_file_is_the_single_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", URL.replace("/shop", "/Shop"))
    monkeypatch.setenv("PG_MCP_MAX_ROWS", "9")
    result = load_config({"statement_timeout": 4.0, "pool_max": None}, dotenv=False)
    assert list(result.databases) == ["shop"] and result.default == "shop"
    assert result.source == "DATABASE_URL"
    settings = result.databases["shop"]
    expected = load_settings({"statement_timeout": 4.0}, dotenv=False)
    assert settings == expected
    assert settings.max_rows == 9 and settings.statement_timeout == 4.0
    assert result.log_level == "INFO" and result.audit_file is None


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("postgresql://u@h/sales_2024", "sales_2024"),
        ("postgresql://u@h/my-db", "default"),
        ("postgresql://u@h/9lives", "default"),
        ("postgresql://u@h", "default"),
        ("postgresql://u@h/" + "a" * 64, "default"),
        (None, "default"),
    ],
)
def test_single_database_is_named_after_the_url_path(
    monkeypatch: pytest.MonkeyPatch, url: str | None, name: str
) -> None:
    if url:
        monkeypatch.setenv("DATABASE_URL", url)
    assert list(load_config(dotenv=False).databases) == [name]


def test_no_url_at_all_is_explained_with_the_config_file() -> None:
    settings = load_config(dotenv=False).databases["default"]
    with pytest.raises(ConfigError, match="DATABASE_URL is not set") as caught:
        _ = settings.dsn
    assert "PG_MCP_CONFIG" in str(caught.value) and "[databases.NAME]" in str(caught.value)


def test_invalid_environment_without_a_file_keeps_todays_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PG_MCP_MAX_ROWS", "0")
    with pytest.raises(ConfigError, match=r"Invalid setting PG_MCP_MAX_ROWS \(--max-rows\)"):
        load_config(dotenv=False)


# Reading a config file.

TWO = """
[server]
max_rows = 100
statement_timeout = 30

[databases.sales]
url_env = "SALES_DATABASE_URL"
schemas = ["sales", "inventory"]
hidden_columns = ["sales.customers.email"]

[databases.hr]
url_env = "HR_DATABASE_URL"
statement_timeout = 10
"""


def test_the_example_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALES_DATABASE_URL", URL)
    monkeypatch.setenv("HR_DATABASE_URL", "postgresql://hr@hr.example.com/hr")
    monkeypatch.setenv("DATABASE_URL", "postgresql://ignored@elsewhere/other")
    path = write_config(tmp_path, TWO)
    monkeypatch.setenv("PG_MCP_CONFIG", path)
    result = load_config(dotenv=False)
    assert list(result.databases) == ["sales", "hr"] and result.default == "sales"
    assert result.source == path
    sales, hr = result.databases["sales"], result.databases["hr"]
    assert sales.dsn == URL and hr.dsn == "postgresql://hr@hr.example.com/hr"
    assert sales.schemas == ("sales", "inventory") and hr.schemas == ()
    assert sales.hidden_columns == ("sales.customers.email",)
    assert sales.statement_timeout == 30 and hr.statement_timeout == 10
    assert PASSWORD not in repr(result)


def test_file_order_decides_the_default(tmp_path: Path) -> None:
    result = config(
        tmp_path, '[databases.zeta]\nurl = "postgresql://h/z"\n[databases.alpha]\nurl = "postgresql://h/a"\n'
    )
    assert list(result.databases) == ["zeta", "alpha"] and result.default == "zeta"


def test_explicit_path_beats_pg_mcp_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PG_MCP_CONFIG", str(tmp_path / "absent.toml"))
    assert config(tmp_path, '[databases.a]\nurl = "postgresql://h/a"\n').default == "a"


def test_every_setting_can_be_set_in_server(tmp_path: Path) -> None:
    text = toml_table("server", {field: written for field, (written, _) in VALUES.items()})
    text += '[databases.one]\nurl = "postgresql://h/one"\n[databases.two]\nurl = "postgresql://h/two"\n'
    result = config(tmp_path, text)
    for settings in result.databases.values():
        for field, (_, read) in VALUES.items():
            assert getattr(settings, field) == read, field
    assert result.log_level == "DEBUG" and result.audit_file == VALUES["audit_file"][1]


def test_every_database_setting_can_be_set_per_database(tmp_path: Path) -> None:
    values = {field: VALUES[field][0] for field in PER_DATABASE}
    text = toml_table("databases.custom", {"url": "postgresql://h/c", **values})
    text += '[databases.plain]\nurl = "postgresql://h/p"\n'
    result = config(tmp_path, text)
    custom, plain = result.databases["custom"], result.databases["plain"]
    defaults = Settings()
    for field in PER_DATABASE:
        assert getattr(custom, field) == VALUES[field][1], field
        assert getattr(plain, field) == getattr(defaults, field), field


def test_lists_may_be_comma_strings(tmp_path: Path) -> None:
    result = config(
        tmp_path,
        '[server]\nschemas = "a, b ,"\n[databases.x]\nurl = "postgresql://h/x"\ntables = "a.t,b.*"\n',
    )
    assert result.databases["x"].schemas == ("a", "b")
    assert result.databases["x"].tables == ("a.t", "b.*")


def test_temp_file_limit_may_be_a_number(tmp_path: Path) -> None:
    result = config(tmp_path, '[databases.x]\nurl = "postgresql://h/x"\ntemp_file_limit = -1\n')
    assert result.databases["x"].temp_file_limit == "-1"


# Precedence: defaults < [server] < environment < overrides (command line) < the database's table.


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PG_MCP_STATEMENT_TIMEOUT", "21")
    monkeypatch.setenv("PG_MCP_LOCK_TIMEOUT", "22")
    monkeypatch.setenv("PG_MCP_CONNECT_TIMEOUT", "23")
    monkeypatch.setenv("PG_MCP_POOL_MAX", "24")
    text = """
[server]
max_rows = 10
statement_timeout = 11
lock_timeout = 12
connect_timeout = 13
pool_max = 14

[databases.a]
url = "postgresql://h/a"
connect_timeout = 43
pool_max = 44

[databases.b]
url = "postgresql://h/b"
"""
    result = config(tmp_path, text, {"lock_timeout": 32.0, "connect_timeout": 33.0, "max_rows_limit": None})
    a, b = result.databases["a"], result.databases["b"]
    assert a.max_rows == b.max_rows == 10  # [server] beats the default
    assert a.statement_timeout == b.statement_timeout == 21  # the environment beats [server]
    assert a.lock_timeout == b.lock_timeout == 32  # overrides beat the environment
    assert a.connect_timeout == 43 and b.connect_timeout == 33  # the database's table beats overrides
    assert a.pool_max == 44 and b.pool_max == 24  # ... and the environment
    assert a.max_rows_limit == 1000  # an override of None is no override


def test_server_wide_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = '[server]\nlog_level = "error"\naudit_file = "/a.jsonl"\n[databases.a]\nurl = "postgresql://h/a"\n'
    assert config(tmp_path, text).log_level == "ERROR"
    monkeypatch.setenv("PG_MCP_LOG_LEVEL", "warning")
    assert config(tmp_path, text).log_level == "WARNING"
    result = config(tmp_path, text, {"log_level": "debug", "audit_file": "/b.jsonl"})
    assert result.log_level == "DEBUG" and result.audit_file == "/b.jsonl"
    assert result.databases["a"].log_level == "DEBUG" and result.databases["a"].audit_file == "/b.jsonl"


def test_server_wide_settings_are_the_servers(tmp_path: Path) -> None:
    text = '[server]\naudit_required = true\n[databases.a]\nurl = "postgresql://h/a"\n[databases.b]\nurl = "postgresql://h/b"\n'
    result = config(tmp_path, text)
    assert result.server.audit_required and all(s.audit_required for s in result.databases.values())


def test_file_without_databases_uses_database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", URL)
    monkeypatch.setenv("PG_MCP_LOCK_TIMEOUT", "7")
    path = write_config(tmp_path, "[server]\nmax_rows = 10\nlock_timeout = 3\n")
    result = load_config({"max_rows_limit": 20}, path, dotenv=False)
    assert list(result.databases) == ["shop"] and result.source == path
    shop = result.databases["shop"]
    assert shop.dsn == URL and shop.max_rows == 10 and shop.lock_timeout == 7 and shop.max_rows_limit == 20
    cli = load_config({"database_url": "postgresql://h/cli"}, path, dotenv=False)
    assert list(cli.databases) == ["cli"]


def test_database_url_on_the_command_line_conflicts_with_databases(tmp_path: Path) -> None:
    message = error(tmp_path, '[databases.a]\nurl = "postgresql://h/a"\n', {"database_url": URL})
    assert "command line" in message and "[databases]" in message


def test_empty_databases_table_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", URL)
    message = error(tmp_path, "[server]\nmax_rows = 5\n[databases]\n")
    assert "lists no databases" in message and "DATABASE_URL is not used" in message


# Refusals, one line each, naming the key and its table.


def test_url_env_not_set(tmp_path: Path) -> None:
    message = error(tmp_path, '[databases.sales]\nurl_env = "SALES_DATABASE_URL"\n')
    assert message.endswith("[databases.sales] url_env SALES_DATABASE_URL is not set in the environment")


def test_url_env_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALES_DATABASE_URL", " ")
    assert "is empty in the environment" in error(
        tmp_path, '[databases.sales]\nurl_env = "SALES_DATABASE_URL"\n'
    )


def test_url_env_holding_a_url_is_refused_without_showing_it(tmp_path: Path) -> None:
    message = error(tmp_path, f'[databases.sales]\nurl_env = "{URL}"\n')
    assert "url_env must be the name of an environment variable" in message


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (f'url = "{URL}"\nurl_env = "X_URL"\n', "[databases.a] sets both url and url_env: give exactly one"),
        ("max_rows = 5\n", "[databases.a] needs url or url_env (exactly one)"),
        ('url = ""\n', "[databases.a] url must be a non-empty string"),
    ],
)
def test_exactly_one_of_url_and_url_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: str, expected: str
) -> None:
    monkeypatch.setenv("X_URL", URL)
    assert expected in error(tmp_path, "[databases.a]\n" + table)


def test_unknown_key_in_a_database_table(tmp_path: Path) -> None:
    message = error(tmp_path, '[databases.hr]\nurl = "postgresql://h/hr"\nstatment_timeout = 5\n')
    assert message == (
        f"{tmp_path / 'pg-mcp.toml'}: [databases.hr] unknown key 'statment_timeout' "
        "(did you mean statement_timeout?)"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[server]\nmax_row = 5\n", "[server] unknown key 'max_row' (did you mean max_rows?)"),
        ("[server]\nMAX-ROWS = 5\n", "[server] unknown key 'MAX-ROWS' (did you mean max_rows?)"),
        ("[server]\ncolour = 5\n", "[server] unknown key 'colour'"),
        (f'[server]\nurl = "{URL}"\n', "[server] url belongs in a [databases.NAME] table"),
        ("[server]\ndatabase_url = 'x'\n", "[server] database_url belongs in a [databases.NAME] table"),
        ("[database.a]\nurl = 'x'\n", "unknown top-level key 'database' (did you mean databases?)"),
        ("max_rows = 5\n", "max_rows is outside any table"),
        ("server = 5\n", "server must be a table ([server])"),
        (f'[databases]\na = "{URL}"\n', "[databases.a] must be a table with url or url_env"),
        (
            f"[databases.a]\ndatabase_url = '{URL}'\n",
            "[databases.a] unknown key 'database_url' (did you mean url or url_env?)",
        ),
    ],
)
def test_unknown_or_misplaced_keys(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in error(tmp_path, text + '[databases.ok]\nurl = "postgresql://h/ok"\n')


def test_databases_must_be_a_table(tmp_path: Path) -> None:
    assert "databases must be a table ([databases.NAME])" in error(tmp_path, "databases = 5\n")


@pytest.mark.parametrize("key", ["log_level", "audit_file", "audit_required"])
def test_server_wide_settings_are_refused_per_database(tmp_path: Path, key: str) -> None:
    message = error(tmp_path, f'[databases.hr]\nurl = "postgresql://h/hr"\n{key} = "x"\n')
    assert f"[databases.hr] {key} is server-wide: set it in [server]" in message


@pytest.mark.parametrize("name", ["Sales", "1sales", "sales-eu", '"sales eu"', "a" * 64, '"é"'])
def test_bad_database_names(tmp_path: Path, name: str) -> None:
    message = error(tmp_path, f'[databases.{name}]\nurl = "postgresql://h/x"\n')
    assert "invalid database name" in message and "^[a-z][a-z0-9_]{0,62}$" in message


def test_longest_database_name_is_accepted(tmp_path: Path) -> None:
    assert config(tmp_path, f'[databases.{"a" * 63}]\nurl = "postgresql://h/x"\n').default == "a" * 63


def test_malformed_file_names_the_line(tmp_path: Path) -> None:
    message = error(tmp_path, f'[server]\nmax_rows = 5\nstatement_timeout 30\n[databases.a]\nurl = "{URL}"\n')
    assert "invalid TOML" in message and "line 3" in message and "pg-mcp.toml" in message


def test_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(config_file=str(tmp_path / "absent.toml"), dotenv=False)
    monkeypatch.setenv("PG_MCP_CONFIG", str(tmp_path / "absent.toml"))
    with pytest.raises(ConfigError, match=r"absent.toml \(named by PG_MCP_CONFIG\) does not exist"):
        load_config(dotenv=False)


def test_invalid_value_names_where_it_was_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = '[databases.sales]\nurl = "postgresql://h/s"\n[databases.hr]\nurl = "postgresql://h/hr"\n'
    message = error(tmp_path, base + "statement_timeout = -1\n")
    assert message.endswith(
        "Invalid setting databases.hr.statement_timeout: Input should be greater than 0; "
        "it accepts a number above 0 to 86400"
    )
    message = error(tmp_path, "[server]\nmax_rows = 'lots'\n" + base)
    assert message.count("\n") == 0, message  # the same [server] mistake is reported once, not per database
    assert "Invalid setting server.max_rows: " in message and "it accepts a whole number from 1" in message
    monkeypatch.setenv("PG_MCP_POOL_MAX", "0")
    assert "Invalid setting PG_MCP_POOL_MAX (--pool-max)" in error(tmp_path, base)


def test_malformed_dotted_names_are_refused_where_they_were_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = '[databases.hr]\nurl = "postgresql://h/hr"\n'
    message = error(tmp_path, base + 'tables = ["hr.employees", "employees"]\n')
    assert message.endswith(
        "Invalid setting databases.hr.tables: 'employees' is not schema.table or schema.*"
    )
    message = error(tmp_path, "[server]\nhidden_columns = ['hr..salary']\n" + base)
    assert (
        "Invalid setting server.hidden_columns: 'hr..salary' is not schema.table.column or table.column"
        in message
    )
    monkeypatch.setenv("PG_MCP_TABLES", "a.b.c")
    assert "Invalid setting PG_MCP_TABLES (--tables): 'a.b.c' is not schema.table or schema.*" in error(
        tmp_path, base
    )


def test_allowed_functions_have_one_spelling(tmp_path: Path) -> None:
    text = '[databases.a]\nurl = "postgresql://h/a"\nallow_functions = ["Safe_Fn", \'"My_Schema" . "Fn"\']\n'
    assert config(tmp_path, text).databases["a"].allow_functions == ("safe_fn", "my_schema.fn")


def test_idle_transactions_end_five_seconds_after_the_statement_timeout() -> None:
    assert load_settings({"statement_timeout": 12.5}, dotenv=False).idle_in_transaction_timeout == 17.5


def test_invalid_combination_names_the_database(tmp_path: Path) -> None:
    message = error(tmp_path, '[databases.hr]\nurl = "postgresql://h/hr"\nmax_rows = 5000\n')
    assert "Invalid settings for [databases.hr]: PG_MCP_MAX_ROWS (5000) exceeds" in message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    message = error(
        tmp_path,
        '[server]\nmax_row = 1\n[databases.a]\nurl_env = "A_URL"\n[databases.b]\nurl = "postgresql://h/b"\npool_max = 0\n',
    )
    lines = message.splitlines()
    assert len(lines) == 3, message
    assert "max_row" in lines[0] and "A_URL" in lines[1] and "databases.b.pool_max" in lines[2]


@pytest.mark.parametrize(
    "text",
    [
        '[databases.a]\nurl = "mysql://root:{pw}@h/db"\n',
        '[databases.a]\nurl = "postgresql://u:{pw}@h:99999/db"\n',
        '[databases.a]\nurl = "postgresql://u:p@{pw}@h/db"\n',
        '[databases.a]\nurl = "postgresql://u:{pw}@h/db"\nbogus = 1\nmax_rows = 0\n',
        '[databases.a]\nurl = "postgresql://u:{pw}@h/db"\nurl_env = "{pw}"\n',
        '[databases.a]\nurl_env = "postgresql://u:{pw}@h/db"\n',
        '[databases.a]\nurl = "postgresql://u:{pw}@h/db\n',
        '[databases.a]\nurl = ["postgresql://u:{pw}@h/db"]\n',
        '[databases."postgresql://u:{pw}@h/db"]\nurl = "x"\n',
        '[server]\n"postgresql://u:{pw}@h/db" = 1\n',
        '[server]\nmax_rows = "{pw}"\n[databases.a]\nurl = "postgresql://h/a"\n',
        '[databases.a]\nurl_env = "A_URL"\n',
    ],
)
def test_secrets_are_never_in_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv("A_URL", f"postgres://u:{PASSWORD}@h:port/db")
    error(tmp_path, text.replace("{pw}", PASSWORD))  # asserts the password is absent


def test_server_config_needs_a_database() -> None:
    with pytest.raises(ConfigError):
        ServerConfig({}, "test")
