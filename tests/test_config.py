"""Settings: sources, validation messages, and that passwords never leak."""

from __future__ import annotations

import subprocess
import sys

import pytest
from mcp_helpers import ROOT, server_env

from pg_mcp.config import load_settings, redact_dsn
from pg_mcp.errors import ConfigError

URL = "postgresql://reader:s3cr%40t@db.example.com:5433/shop"


def test_defaults_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", URL)
    monkeypatch.setenv("PG_MCP_MAX_ROWS", "50")
    monkeypatch.setenv("PG_MCP_SCHEMAS", "sales, hr ,")
    settings = load_settings({"statement_timeout": 5.0}, dotenv=False)
    assert settings.dsn == URL
    assert settings.max_rows == 50 and settings.max_rows_limit == 1000
    assert settings.statement_timeout == 5.0
    assert settings.schemas == ("sales", "hr")
    assert "s3cr" not in settings.safe_dsn and "reader:***@db.example.com" in settings.safe_dsn
    assert "s3cr" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PG_MCP_MAX_ROWS": "lots"}, "PG_MCP_MAX_ROWS"),
        ({"PG_MCP_MAX_ROWS": "0"}, "greater than or equal to 1"),
        ({"PG_MCP_STATEMENT_TIMEOUT": "-1"}, "PG_MCP_STATEMENT_TIMEOUT"),
        ({"PG_MCP_LOG_LEVEL": "chatty"}, "PG_MCP_LOG_LEVEL"),
        ({"PG_MCP_MAX_ROWS": "5000"}, "exceeds PG_MCP_MAX_ROWS_LIMIT"),
        ({"DATABASE_URL": "mysql://root:pw@host/db"}, "postgresql://"),
    ],
)
def test_invalid_settings_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(dotenv=False)
    assert message in str(caught.value)
    assert "pw" not in str(caught.value)


def test_missing_url_is_explained() -> None:
    settings = load_settings({}, dotenv=False)
    with pytest.raises(ConfigError, match="DATABASE_URL is not set"):
        _ = settings.dsn


@pytest.mark.parametrize(
    ("dsn", "redacted"),
    [
        ("postgresql://u:pw@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        (
            "postgresql://h/db?user=u&password=pw&sslmode=require",
            "postgresql://h/db?user=u&***&sslmode=require",
        ),
    ],
)
def test_redact_dsn(dsn: str, redacted: str) -> None:
    assert redact_dsn(dsn).replace("password=***", "***") == redacted


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pg_mcp", *args],
        capture_output=True, text=True, timeout=60, env=server_env(**env), cwd=ROOT, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_cli_invalid_setting_exits_2_with_one_line() -> None:
    result = _run("serve", "postgresql://u:topsecret@localhost/db", "--max-rows", "0")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert "PG_MCP_MAX_ROWS (--max-rows)" in result.stderr
    assert "it accepts a whole number from 1 to" in result.stderr
    assert "topsecret" not in result.stderr


def test_cli_missing_url_exits_2() -> None:
    result = _run()
    assert result.returncode == 2
    assert "DATABASE_URL is not set" in result.stderr
    assert result.stdout == ""


def test_cli_help_for_every_command() -> None:
    for command in ([], ["serve"], ["check"], ["demo"], ["call"]):
        result = _run(*command, "--help")
        assert result.returncode == 0, result.stderr
        assert "usage: pg-mcp" in result.stdout
