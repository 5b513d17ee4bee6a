"""Each setting is declared once, in pg_mcp/config.py, and every place that states it agrees: its
environment variable, its flag and the flag's help, .env.example, docs/settings.md and the README's table.

Pure documentation tests: no database is needed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from mcp_helpers import ROOT
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from pg_mcp.cli import parse_args
from pg_mcp.config import (
    CONFIG_ENV,
    ENV_NAMES,
    SERVER_WIDE,
    TRANSPORT_ENV_NAMES,
    DatabaseSettings,
    ServerWideSettings,
    Settings,
    TransportSettings,
    env_default,
    flag,
    stated_default,
)

SETTINGS_PAGE = ROOT / "docs" / "settings.md"
FIELDS: dict[str, FieldInfo] = {**Settings.model_fields, **TransportSettings.model_fields}
NAMES: dict[str, str] = {**ENV_NAMES, **TRANSPORT_ENV_NAMES}
#: Every setting with a default, a flag and a row in the reference: all but the connection string.
DOCUMENTED = [field for field in NAMES if field != "database_url"]


def _default_text(value: Any) -> str:
    """A default as .env.example writes it, worked out here independently of the code's own rule."""
    if value is None or value == ():
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


def _example_values() -> dict[str, str]:
    """Each setting's value in .env.example."""
    lines = (ROOT / ".env.example").read_text().splitlines()
    return {
        name: value
        for name, _, value in (line.partition("=") for line in lines)
        if name.startswith("PG_MCP_")
    }


def _table(page: Path) -> dict[str, tuple[str, str]]:
    """A settings table's rows, `| `PG_MCP_X` | flag | default | meaning |`: (first flag, default) by variable."""
    rows = re.finditer(r"^\| `(PG_MCP_[A-Z_]+)` \| ([^|]*) \| ([^|]*) \|", page.read_text(), re.M)
    return {row[1]: (re.findall(r"`(--[a-z-]+)`", row[2])[0], row[3].strip("` ")) for row in rows}


def _help(*argv: str, capsys: pytest.CaptureFixture[str]) -> str:
    """A command's --help, with whitespace made single spaces (argparse wraps lines to the terminal)."""
    with pytest.raises(SystemExit):
        parse_args([*argv, "--help"])
    return " ".join(capsys.readouterr().out.split())


# Derived names.


def test_env_names_are_derived_from_the_fields() -> None:
    assert list(ENV_NAMES) == list(Settings.model_fields)
    assert list(TRANSPORT_ENV_NAMES) == list(TransportSettings.model_fields)
    assert ENV_NAMES["database_url"] == "DATABASE_URL"
    assert ENV_NAMES["max_rows"] == "PG_MCP_MAX_ROWS"
    assert all(name == f"PG_MCP_{field.upper()}" for field, name in NAMES.items() if field != "database_url")


def test_each_setting_is_declared_in_exactly_one_scope() -> None:
    scopes: list[type[BaseSettings]] = [DatabaseSettings, ServerWideSettings, TransportSettings]
    declared = [field for scope in scopes for field in scope.model_fields]
    assert len(declared) == len(set(declared))
    assert set(Settings.model_fields) == set(DatabaseSettings.model_fields) | SERVER_WIDE
    assert {"log_level", "audit_file", "audit_required"} == SERVER_WIDE


def test_default_texts() -> None:
    fields = Settings.model_fields
    written = {
        name: env_default(fields[name]) for name in ("max_rows", "max_cost", "audit_required", "schemas")
    }
    assert written == {"max_rows": "100", "max_cost": "1000000000", "audit_required": "false", "schemas": ""}
    assert stated_default(fields["schemas"]) == "all the role can use"
    assert stated_default(fields["hidden_columns"]) == "none"


# .env.example, docs/settings.md and the README.


def test_every_setting_is_in_env_example() -> None:
    text = (ROOT / ".env.example").read_text()
    names = [*NAMES.values(), CONFIG_ENV]
    missing = [name for name in names if f"{name}=" not in text]
    assert not missing, f".env.example does not document {missing}"


def test_env_example_groups_the_settings_by_scope() -> None:
    """Each database's settings, then the server's ([server] only in a config file), then HTTP."""
    text = (ROOT / ".env.example").read_text()
    server, transport = text.index("\n# The server as a whole"), text.index("\n# Streamable HTTP")
    position = {field: text.index(f"\n{NAMES[field]}=") for field in DOCUMENTED}
    assert all(position[field] < server for field in DatabaseSettings.model_fields if field in position)
    assert all(server < position[field] < transport for field in SERVER_WIDE)
    assert all(transport < position[field] for field in TransportSettings.model_fields)


def test_ranges_in_env_example_are_the_declared_bounds() -> None:
    """A comment's `(low..high)` above a variable is the setting's declared range."""
    ranges = re.findall(
        r"\((\d+)\.\.(\d+)\)[^\n]*\n(?:#[^\n]*\n)*(PG_MCP_[A-Z_]+)=", (ROOT / ".env.example").read_text()
    )
    assert ranges, "the example states no range any more: remove this test"
    by_name = {name: field for field, name in NAMES.items()}
    for low, high, name in ranges:
        bounds = {
            key: getattr(item, key)
            for item in FIELDS[by_name[name]].metadata
            for key in ("ge", "le")
            if hasattr(item, key)
        }
        assert (int(low), int(high)) == (bounds["ge"], bounds["le"]), name


def test_every_setting_is_in_the_settings_reference() -> None:
    text = SETTINGS_PAGE.read_text()
    missing = [name for name in NAMES.values() if f"`{name}`" not in text]
    assert not missing, f"docs/settings.md does not document {missing}"


def test_the_config_file_is_in_the_settings_reference() -> None:
    text = SETTINGS_PAGE.read_text()
    assert f"`{CONFIG_ENV}`" in text and "[databases." in text


def test_the_reference_names_the_server_wide_and_the_list_settings() -> None:
    """The config file's rules: which keys only `[server]` may set, and which take a list."""
    text = " ".join(SETTINGS_PAGE.read_text().split())
    server_wide = re.search(r"[^.]*belong to the server as a whole[^.]*\.", text)
    assert server_wide, "docs/settings.md no longer says which settings are server-wide"
    assert {field for field in FIELDS if f"`{field}`" in server_wide[0]} == SERVER_WIDE
    lists = re.search(r"A list \(([^)]*)\)", text)
    assert lists, "docs/settings.md no longer says which settings are lists"
    declared = {field for field, info in Settings.model_fields.items() if info.annotation == tuple[str, ...]}
    assert set(re.findall(r"`([a-z_]+)`", lists[1])) == declared


def test_the_reference_marks_the_transport_settings() -> None:
    """Its flags marked "(serve)" are the transport's: a config file cannot set those."""
    text = SETTINGS_PAGE.read_text()
    marked = set(re.findall(r"^\| `(PG_MCP_[A-Z_]+)` \| `--[a-z-]+` \(serve\)", text, re.M))
    assert marked == set(TRANSPORT_ENV_NAMES.values())


def test_defaults_agree_between_the_code_the_example_and_the_reference() -> None:
    """One fact, four places: each default in .env.example is the code's, and the tables of
    docs/settings.md (every setting) and of the README (the main ones) state it, or what having none
    means as the field declares it."""
    example = _example_values()
    tables = {"docs/settings.md": _table(SETTINGS_PAGE), "README.md": _table(ROOT / "README.md")}
    disagreements = []
    for field in DOCUMENTED:
        env, expected = NAMES[field], _default_text(FIELDS[field].default)
        if example.get(env) != expected or env_default(FIELDS[field]) != expected:
            disagreements.append(f".env.example {env}={example.get(env)!r}, the code says {expected!r}")
        for page, table in tables.items():
            stated = table.get(env, (None, None))[1]
            if stated is None and page == "README.md":
                continue  # the README lists the main settings only
            if stated is None or not stated.startswith(stated_default(FIELDS[field])):
                disagreements.append(
                    f"{page} {env}: {stated!r}, the code says {stated_default(FIELDS[field])!r}"
                )
    assert not disagreements, "\n".join(disagreements)


def test_the_readme_rows_are_the_references() -> None:
    reference, readme = _table(SETTINGS_PAGE), _table(ROOT / "README.md")
    assert readme and {name: reference.get(name) for name in readme} == readme


def test_the_readme_links_only_to_files_that_exist() -> None:
    for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" not in target:
                assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"


# The flags.


def test_every_documented_flag_exists_and_every_flag_is_documented(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The reference's flag for each variable is the one the parser has, and the parser has no other."""
    rows = _table(SETTINGS_PAGE)
    serve = _help("serve", capsys=capsys)
    options = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", serve)) - {"--help"}
    assert {documented for documented, _ in rows.values()} == options
    assert rows[CONFIG_ENV][0] == "--config"
    for field in DOCUMENTED:
        assert rows[NAMES[field]][0] == flag(field), NAMES[field]


@pytest.mark.parametrize("command", ["serve", "check", "demo", "call"])
def test_each_flag_states_its_meaning_default_and_variable(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """As the field declares them, in the help of every command that takes it (transport: serve only)."""
    text = _help(command, capsys=capsys)
    fields = DOCUMENTED if command == "serve" else [field for field in DOCUMENTED if field in ENV_NAMES]
    for field in fields:
        info = FIELDS[field]
        described = f"{info.description} (default: {stated_default(info)}) [{NAMES[field]}]"
        assert re.search(rf"{flag(field)}(?: [A-Z_]+)? {re.escape(described)}", text), (command, field)
    assert ("--port" in text) == (command == "serve")


def test_the_overview_names_real_flags(capsys: pytest.CaptureFixture[str]) -> None:
    overview = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", _help(capsys=capsys)))
    serve = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", _help("serve", capsys=capsys)))
    assert overview - {"--help", "--version"} <= serve
