"""The command line: check, call and demo, and how connection problems are explained."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import DemoDatabase
from mcp import Client, StdioServerParameters
from mcp_helpers import ROOT, password_of, server_env, text_of
from mcp_helpers import run_cli as run

from pg_mcp.errors import ConfigError
from pg_mcp.local_pg import find_pg_bin, free_port


def _with(
    url: str, *, password: str | None = None, database: str | None = None, port: int | None = None
) -> str:
    parts = urlsplit(url)
    user = parts.username or ""
    netloc = f"{user}:{password or parts.password}@{parts.hostname}:{port or parts.port}"
    return parts._replace(netloc=netloc, path=f"/{database}" if database else parts.path).geturl()


def test_check_reports_a_least_privilege_role(pg: DemoDatabase) -> None:
    result = run("check", pg.url)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "PostgreSQL " in out and "Role: mcp_reader" in out
    assert "SUPERUSER" not in out
    visible = re.search(r"Visible tables and views: (\d+)", out)
    assert visible and int(visible.group(1)) >= 10, out
    assert "no risks found" in out
    assert password_of(pg.url) not in out + result.stderr


def test_check_warns_about_a_superuser(pg: DemoDatabase) -> None:
    result = run("check", pg.admin_url)
    assert result.returncode == 0
    assert "SUPERUSER" in result.stdout and "pg-mcp role-sql" in result.stdout
    assert password_of(pg.admin_url) not in result.stdout + result.stderr
    assert "  - passwords (refused): pg_authid" in result.stdout, result.stdout


def test_check_reports_the_secrets_the_role_can_read(pg: DemoDatabase) -> None:
    asyncio.run(pg.admin_execute("ALTER DATABASE demo SET app.jwt_secret = 'shh'"))
    try:
        result = run("check", pg.url)
        allowed = run("check", pg.url, "--allow-secrets", "custom_settings")
    finally:
        asyncio.run(pg.admin_execute("ALTER DATABASE demo RESET app.jwt_secret"))
    assert result.returncode == 0, result.stderr
    assert (
        "custom_settings (refused): pg_db_role_setting, 1 custom settings readable with current_setting()"
        in (result.stdout)
    )
    sessions = next(line for line in result.stdout.splitlines() if "other_sessions (refused):" in line)
    assert "pg_stat_activity.query" in sessions, sessions
    assert "passwords" not in result.stdout, "the reader cannot read pg_authid"
    assert "shh" not in result.stdout
    assert "custom_settings (ALLOWED)" in allowed.stdout


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"password": "wrong-password"}, "Authentication failed"),
        ({"database": "no_such_database"}, "does not exist"),
        ({"port": 0}, "Connection refused"),
    ],
)
def test_check_explains_connection_failures(
    pg: DemoDatabase, change: dict[str, object], message: str
) -> None:
    if change.get("port") == 0:
        change = {"port": free_port()}
    url = _with(pg.url, **change)  # type: ignore[arg-type]
    result = run("check", url, "--connect-timeout", "5")
    assert result.returncode == 1
    assert message in result.stderr, result.stderr
    assert "Hint:" in result.stderr and "Traceback" not in result.stderr
    assert password_of(url) not in result.stderr + result.stdout


def test_check_explains_an_unknown_host() -> None:
    result = run("check", "postgresql://u:pw@host.invalid:5432/db", "--connect-timeout", "5")
    assert result.returncode == 1
    assert "could not be resolved" in result.stderr or "timed out" in result.stderr, result.stderr
    assert "pw@" not in result.stderr


def test_check_explains_a_server_that_never_answers() -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does) but never speaks
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        result = run("check", f"postgresql://u:pw@127.0.0.1:{port}/db", "--connect-timeout", "1")
    assert result.returncode == 1
    assert "timed out" in result.stderr and "Hint:" in result.stderr, result.stderr
    assert "PG_MCP_CONNECT_TIMEOUT" in result.stderr or "--connect-timeout" in result.stderr, result.stderr
    assert "pw@" not in result.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"password": "wrong-password"}, "Authentication failed"),
        ({"database": "no_such_database"}, "does not exist"),
        ({"port": 0}, "Connection refused"),
    ],
)
async def test_a_wrong_url_is_explained_to_the_model_on_every_call(
    pg: DemoDatabase, change: dict[str, object], message: str
) -> None:
    if change.get("port") == 0:
        change = {"port": free_port()}
    url = _with(pg.url, **change)  # type: ignore[arg-type]
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "pg_mcp", url, "--connect-timeout", "5"],
        env=server_env(),
        cwd=str(ROOT),
    )
    async with Client(params, read_timeout_seconds=60) as client:
        first = await client.call_tool("query", {"sql": "SELECT 1"})
        second = await client.call_tool("list_tables", {})
    for result in (first, second):
        text = text_of(result)
        assert result.is_error and message in text and "Hint:" in text, text
        assert "Traceback" not in text and password_of(url) not in text


def test_result_memory_does_not_grow_with_the_table(pg: DemoDatabase) -> None:
    """Peak server memory for a million-row table, a trillion-row join or 300 MB of values equals a tiny query's."""

    def peak_rss_kib(sql: str) -> int:
        process = subprocess.Popen(
            [sys.executable, "-m", "pg_mcp", "call", "--url", pg.url, "query", f"sql={sql}", "max_rows=1000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            env=server_env(), cwd=ROOT,
        )  # fmt: skip
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        assert process.returncode == 0, sql
        return int(usage.ru_maxrss)

    baseline = peak_rss_kib("SELECT * FROM sales.products LIMIT 5")
    whole_table = peak_rss_kib("SELECT * FROM sales.order_items")
    cartesian = peak_rss_kib("SELECT * FROM sales.order_items a CROSS JOIN sales.order_items b")
    reader = urlsplit(pg.url).username
    asyncio.run(
        pg.admin_execute(
            "CREATE TABLE public.huge_values AS SELECT g, repeat('x', 100000000) AS filler "
            f"FROM generate_series(1, 3) AS g; GRANT SELECT ON public.huge_values TO {reader}"
        )
    )
    try:
        huge_values = peak_rss_kib("SELECT g, filler FROM public.huge_values")
    finally:
        asyncio.run(pg.admin_execute("DROP TABLE public.huge_values"))
    assert whole_table - baseline < 16 * 1024, (baseline, whole_table)
    assert cartesian - baseline < 16 * 1024, (baseline, cartesian)
    assert huge_values - baseline < 16 * 1024, (baseline, huge_values)


def test_settings_come_from_a_dotenv_file_in_the_working_directory(pg: DemoDatabase, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"DATABASE_URL={pg.url}\nPG_MCP_MAX_ROWS=3\n")
    result = subprocess.run(
        [sys.executable, "-m", "pg_mcp", "call", "query", "sql=SELECT generate_series(1, 10) AS n"],
        capture_output=True, text=True, timeout=120, env=server_env(), cwd=tmp_path, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:4] == ["n:integer", "1", "2", "3"]
    assert "cut at max_rows=3" in result.stdout


def test_call_prints_what_the_model_sees(pg: DemoDatabase) -> None:
    ok = run("call", "--url", pg.url, "query", "sql=SELECT 1 AS one, 'x' AS two", "max_rows=5")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines() == ["one:integer\ttwo:text", "1\tx", "(1 row)"]
    refused = run("call", "--url", pg.url, "query", "sql=DROP TABLE sales.products")
    assert refused.returncode == 1
    assert "read-only" in refused.stdout
    structured = run("call", "--url", pg.url, "--json", "describe_table", "table=hr.employees")
    assert structured.returncode == 0 and '"primary_key": [' in structured.stdout
    unknown = run("call", "--url", pg.url, "describe", "table=hr.employees")
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr, unknown.stderr
    assert (
        "Unknown tool 'describe'" in unknown.stderr
        and "Tools: column_stats, describe_table," in unknown.stderr
    )


async def test_database_restart_between_calls_recovers(tmp_path: object) -> None:
    try:
        find_pg_bin()
    except Exception as exc:
        pytest.skip(f"needs PostgreSQL binaries to restart a server: {exc}")
    from pg_mcp.local_pg import start_local_postgres

    with start_local_postgres() as cluster:
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "pg_mcp", cluster.url()], env=server_env(), cwd=str(ROOT)
        )
        async with Client(params, read_timeout_seconds=60) as client:
            before = await client.call_tool("query", {"sql": "SELECT 1 AS n"})
            cluster.stop_server()
            down = await client.call_tool("query", {"sql": "SELECT 2 AS n"})
            cluster.start_server()
            after = await client.call_tool("query", {"sql": "SELECT 3 AS n"})
    assert not before.is_error
    assert down.is_error and "Connection refused" in text_of(down), text_of(down)
    assert not after.is_error and after.structured_content["rows"] == [[3]], text_of(after)


def test_serve_warns_at_start_when_the_role_is_over_privileged(pg: DemoDatabase) -> None:
    initialize = {
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
    }  # fmt: skip
    with subprocess.Popen(
        [sys.executable, "-m", "pg_mcp", pg.admin_url],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=server_env(), cwd=ROOT,
    ) as proc:  # fmt: skip
        assert proc.stdin and proc.stdout and proc.stderr
        proc.stdin.write(json.dumps(initialize) + "\n")
        proc.stdin.flush()
        response = json.loads(proc.stdout.readline())
        deadline = time.monotonic() + 20
        lines: list[str] = []
        while time.monotonic() < deadline and not any("SUPERUSER" in line for line in lines):
            lines.append(proc.stderr.readline())
        proc.stdin.close()
        proc.wait(timeout=20)
    assert response["result"]["serverInfo"]["name"] == "pg-mcp"
    warning = next(line for line in lines if "SUPERUSER" in line)
    assert " WARNING " in warning and "pg-mcp role-sql" in warning
    assert password_of(pg.admin_url) not in "".join(lines)


def test_demo_without_binaries_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import pg_mcp.local_pg as local_pg

    monkeypatch.setattr(local_pg, "SEARCH_DIRS", ())
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("PG_BIN", raising=False)
    with pytest.raises(ConfigError) as caught:
        local_pg.find_pg_bin()
    assert "initdb" in str(caught.value) and "apt-get install postgresql" in str(caught.value)


def test_a_mistyped_command_is_not_read_as_a_url() -> None:
    result = run("chek")
    assert result.returncode == 2
    assert "unknown command 'chek' (did you mean check?)" in result.stderr


def test_help_shows_the_url_the_commands_and_the_main_flags() -> None:
    out = run("--help").stdout
    assert "DATABASE_URL" in out and "postgresql://" in out
    for word in ("serve", "check", "demo", "call", "role-sql", "--max-rows", "--statement-timeout"):
        assert word in out, word


def test_role_sql_prints_the_installed_script() -> None:
    result = run("role-sql")
    assert result.returncode == 0
    assert result.stdout == (ROOT / "sql" / "readonly_role.sql").read_text()


def test_an_unencoded_at_in_the_password_is_explained() -> None:
    result = run("check", "postgresql://reader:s3cr@t@db.example.com/shop")
    assert result.returncode == 2
    assert "%40" in result.stderr and "s3cr" not in result.stderr
