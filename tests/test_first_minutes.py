"""What a new user meets in the first minutes: messages that say what to fix, and nothing alarming
after calls that went well."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import DemoDatabase
from mcp_helpers import mcp_client, password_of, text_of
from mcp_helpers import run_cli as run


def test_a_misspelt_url_parameter_is_named_with_the_one_meant(pg: DemoDatabase) -> None:
    result = run("check", f"{pg.url}?sslmod=require", "--connect-timeout", "5")
    assert result.returncode == 1
    assert "has the parameter sslmod" in result.stderr and "Did you mean sslmode?" in result.stderr, (
        result.stderr
    )
    assert password_of(pg.url) not in result.stderr + result.stdout


@pytest.mark.parametrize("tool", ["list_tables", "describe_table"])
def test_a_call_that_went_well_logs_no_abandoned_backend(pg: DemoDatabase, tool: str) -> None:
    """`pg-mcp call` exits right after its answer, while the start-up role check may still be reading:
    its backend ends with its connection, which is not worth a warning."""
    arguments = ["table=sales.orders"] if tool == "describe_table" else []
    result = run("call", "--url", pg.url, tool, *arguments)
    assert result.returncode == 0, result.stderr
    assert "abandoned backend" not in result.stderr, result.stderr


async def test_tool_descriptions_are_paragraphs_and_prompt_arguments_are_described(pg: DemoDatabase) -> None:
    async with mcp_client(pg.url) as client:
        tools = (await client.list_tools()).tools
        prompts = (await client.list_prompts()).prompts
    for tool in tools:
        for paragraph in (tool.description or "").split("\n\n"):
            assert "\n" not in paragraph and "  " not in paragraph, (tool.name, paragraph)
    for prompt in prompts:
        for argument in prompt.arguments or []:
            assert argument.description, (prompt.name, argument.name)


async def test_a_missing_name_is_shown_in_double_quotes_once(pg: DemoDatabase) -> None:
    async with mcp_client(pg.url) as client:
        quoted = await client.call_tool("describe_table", {"table": '"nosuch"'})
        plain = await client.call_tool("describe_table", {"table": "nosuch"})
        column = await client.call_tool("column_stats", {"table": "sales.orders", "column": "stauts"})
    assert text_of(quoted).startswith('Table "nosuch" does not exist'), text_of(quoted)
    assert text_of(plain).startswith('Table "nosuch" does not exist'), text_of(plain)
    assert text_of(column).startswith('Column "stauts" does not exist'), text_of(column)


def test_call_takes_the_url_first_as_serving_does(pg: DemoDatabase) -> None:
    result = run("call", pg.url, "query", "sql=SELECT 41 + 1 AS answer")
    assert result.returncode == 0, result.stderr
    assert "42" in result.stdout


def test_call_without_a_url_says_how_to_give_one() -> None:
    result = run("call", "list_tables")
    assert result.returncode != 0
    assert "--url" in result.stderr, result.stderr


def test_a_slash_in_a_password_is_explained_with_its_encoding() -> None:
    result = run("call", "--url", "postgresql://u:s3cr@t/pw@localhost/db", "list_tables")
    assert result.returncode != 0
    assert "percent-encode '/'" in result.stderr and "%2F" in result.stderr, result.stderr
    assert "s3cr@t/pw@" not in result.stderr


def test_a_misspelt_setting_in_the_environment_is_named(pg: DemoDatabase) -> None:
    result = run("check", pg.url, PG_MCP_MAX_ROW="5", PG_MCP_STATEMENT_TIMEOUT="30")
    assert "PG_MCP_MAX_ROW is not a pg-mcp setting" in result.stderr, result.stderr
    assert "did you mean PG_MCP_MAX_ROWS?" in result.stderr
    assert "PG_MCP_STATEMENT_TIMEOUT is not" not in result.stderr


def test_the_demo_entry_names_the_command_by_its_absolute_path() -> None:
    from pg_mcp.cli import _this_command

    entry = _this_command("demo")
    assert Path(entry["command"]).is_absolute(), entry


def test_a_reader_that_stops_early_is_not_an_error(pg: DemoDatabase) -> None:
    """`pg-mcp call … | grep -q …`: the reader may go away before the answer is written."""
    import subprocess
    import sys

    from mcp_helpers import ROOT, server_env

    proc = subprocess.Popen(
        [sys.executable, "-m", "pg_mcp", "call", "--url", pg.url, "query", "sql=SELECT 1 AS one"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=server_env(PYTHONUNBUFFERED="1"), cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the answer is written: every write fails
    error = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, error
    assert "Traceback" not in error and "BrokenPipe" not in error, error
