"""Which tools each database offers (`tools`, `disable_tools`) and which a token may call: a tool offered
on none of the caller's databases is absent from tools/list, and a call on a database that does not offer
it is refused naming the ones that do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import DemoDatabase
from factories import config_client, write_config
from mcp_helpers import mcp_client, text_of
from test_http import http_server, mcp_over_http

from pg_mcp.cli import main
from pg_mcp.config import INSIGHT_TOOL_NAMES, OWN_TOOL_NAMES, load_config
from pg_mcp.errors import ConfigError
from pg_mcp.server.insight_tools import INSIGHT_TOOLS
from pg_mcp.server.tokens import TokenStore
from pg_mcp.server.tools import TOOLS

OPERATOR_TOOL = """
[tools.order_count]
description = "How many orders there are."
database = "shop"
sql = "SELECT count(*) AS n FROM sales.orders"
"""

pytestmark = pytest.mark.usefixtures("clean_environment")


def _names(listing: object) -> set[str]:
    return {tool.name for tool in getattr(listing, "tools", [])}


def test_the_names_a_setting_may_use_are_the_servers_tools() -> None:
    assert tuple(tool.name for tool in TOOLS) == OWN_TOOL_NAMES
    assert tuple(tool.name for tool in INSIGHT_TOOLS) == INSIGHT_TOOL_NAMES


# Start-up: an unknown name is refused where it was set, with the tool probably meant.


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[databases.shop]\nurl = "postgresql://h/shop"\ntools = ["query", "lst_tables"]\n',
            "Invalid setting databases.shop.tools: unknown tool 'lst_tables' (did you mean list_tables?)",
        ),
        (
            '[server]\ndisable_tools = ["sample_row"]\n[databases.shop]\nurl = "postgresql://h/shop"\n',
            "Invalid setting server.disable_tools: unknown tool 'sample_row' (did you mean sample_rows?)",
        ),
        (
            '[server]\ntools = ["ordr_count"]\n' + OPERATOR_TOOL.replace('database = "shop"\n', ""),
            "Invalid setting server.tools: unknown tool 'ordr_count' (did you mean order_count?)",
        ),
        (
            '[databases.shop]\nurl = "postgresql://h/shop"\ntools = ["two words"]\n',
            "Invalid setting databases.shop.tools: 'two words' is not a tool name",
        ),
    ],
)
def test_an_unknown_tool_name_stops_start_up_naming_where_it_was_set(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as refused:
        load_config(None, path, dotenv=False)
    assert f"{path}: {expected}" in str(refused.value), refused.value


def test_an_unknown_tool_in_the_environment_is_named_with_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://h/shop")
    monkeypatch.setenv("PG_MCP_DISABLE_TOOLS", "sample_rows,explian")
    with pytest.raises(ConfigError) as refused:
        load_config(dotenv=False)
    assert "PG_MCP_DISABLE_TOOLS (--disable-tools): unknown tool 'explian' (did you mean explain?)" in str(
        refused.value
    )
    monkeypatch.setenv("PG_MCP_DISABLE_TOOLS", "sample_rows")
    monkeypatch.setenv("PG_MCP_TOOLS", "query,sample_rows,column_stats")
    settings = load_config(dotenv=False).databases["shop"]
    assert settings.tools == ("query", "sample_rows", "column_stats") and settings.disable_tools == (
        "sample_rows",
    )
    assert [tool for tool in OWN_TOOL_NAMES if settings.offers(tool)] == ["query", "column_stats"]


def test_the_operators_tools_may_be_named(tmp_path: Path) -> None:
    text = '[server]\ndisable_tools = ["explain"]\n[databases.shop]\nurl = "postgresql://h/shop"\n'
    text += (
        'tools = ["query", "order_count"]\n[databases.copy]\nurl = "postgresql://h/copy"\n' + OPERATOR_TOOL
    )
    config = load_config(None, write_config(tmp_path, text), dotenv=False)
    shop, copy = config.databases["shop"], config.databases["copy"]
    assert shop.offers("order_count") and not shop.offers("list_tables") and not shop.offers("explain")
    assert copy.offers("list_tables") and not copy.offers("explain")


# One database.


async def test_a_disabled_tool_is_absent_and_answers_as_unknown(pg: DemoDatabase) -> None:
    async with mcp_client(pg.url, disable_tools=("sample_rows", "query")) as client:
        listed = _names(await client.list_tools())
        sampled = await client.call_tool("sample_rows", {"table": "sales.orders"})
        described = await client.call_tool("describe_table", {"table": "sales.orders"})
    assert listed == set(OWN_TOOL_NAMES) - {"sample_rows", "query"}
    assert sampled.is_error and text_of(sampled) == "Unknown tool: sample_rows"
    assert not described.is_error, text_of(described)


async def test_an_allowlist_offers_exactly_its_tools(pg: DemoDatabase) -> None:
    async with mcp_client(pg.url, tools=("list_tables", "describe_table")) as client:
        listed = _names(await client.list_tools())
        tables = await client.call_tool("list_tables", {"schema": "hr"})
        query = await client.call_tool("query", {"sql": "SELECT 1"})
    assert listed == {"list_tables", "describe_table"}
    assert not tables.is_error and "hr.employees" in text_of(tables)
    assert query.is_error and "Unknown tool: query" in text_of(query)


# Several databases.


async def test_a_tool_off_on_one_database_is_refused_there_naming_where_it_is_offered(
    pg: DemoDatabase, tmp_path: Path
) -> None:
    text = (
        f'[server]\ndisable_tools = ["explain"]\n'
        f'[databases.shop]\nurl = "{pg.url}"\ntools = ["list_schemas", "describe_table"]\n'
        f'[databases.copy]\nurl = "{pg.url}"\ndisable_tools = ["explain", "order_count"]\n'
        f"[databases.spare]\nurl = \"{pg.url}\"\ndisable_tools = ['query', 'explain']\n" + OPERATOR_TOOL
    )
    async with config_client(write_config(tmp_path, text)) as client:
        listed = _names(await client.list_tools())
        on_shop = await client.call_tool("query", {"sql": "SELECT 1 AS one"})  # shop is the default
        on_spare = await client.call_tool("query", {"sql": "SELECT 1 AS one", "database": "spare"})
        on_copy = await client.call_tool("query", {"sql": "SELECT 1 AS one", "database": "copy"})
        described = await client.call_tool("describe_table", {"table": "hr.departments", "database": "shop"})
        explained = await client.call_tool("explain", {"sql": "SELECT 1"})
        counted = await client.call_tool("order_count", {})
    assert "explain" not in listed and "order_count" not in listed, "offered on no database"
    assert {"query", "describe_table", "list_tables", "sample_rows"} <= listed
    assert on_shop.is_error and on_spare.is_error
    assert "The tool query is not offered on the database shop." in text_of(on_shop), text_of(on_shop)
    assert "Databases that offer it: copy; pass database=copy." in text_of(on_shop)
    assert "not offered on the database spare" in text_of(on_spare)
    assert not on_copy.is_error and on_copy.structured_content["rows"] == [[1]], text_of(on_copy)
    assert not described.is_error, text_of(described)
    assert explained.is_error and text_of(explained) == "Unknown tool: explain"
    assert counted.is_error and text_of(counted) == "Unknown tool: order_count"


async def test_an_operators_tool_offered_on_its_database_is_listed(pg: DemoDatabase, tmp_path: Path) -> None:
    text = f'[databases.shop]\nurl = "{pg.url}"\ntools = ["order_count", "list_tables"]\n' + OPERATOR_TOOL
    async with config_client(write_config(tmp_path, text)) as client:
        listed = _names(await client.list_tools())
        counted = await client.call_tool("order_count", {})
    assert listed == {"order_count", "list_tables"}
    assert not counted.is_error and counted.structured_content["rows"][0][0] > 0, text_of(counted)


# Tokens over HTTP.


def test_token_add_stores_the_tools_a_token_may_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tokens = str(tmp_path / "t.json")
    created = main(
        ["token", "add", "ana", "--tools", "list_tables,describe_table,my_report", "--file", tokens]
    )
    err = capsys.readouterr().err
    main(["token", "add", "bo", "--file", tokens])
    capsys.readouterr()
    main(["token", "list", "--file", tokens])
    listing = capsys.readouterr().out.splitlines()
    empty = main(["token", "add", "cy", "--tools", " , ", "--file", tokens])
    wrong = main(["token", "add", "cy", "--tools", "drop table", "--file", tokens])
    refusals = capsys.readouterr().err
    stored = json.loads(Path(tokens).read_text())["tokens"]
    assert created == 0 and "my_report is not one of pg-mcp's tools" in err
    assert stored[0]["tools"] == ["list_tables", "describe_table", "my_report"] and "tools" not in stored[1]
    assert listing[0].endswith("\tlist_tables, describe_table, my_report") and listing[1].endswith(
        "\tall tools"
    )
    assert empty == 2 and wrong == 2 and "names no tool" in refusals and "not a tool name" in refusals
    assert TokenStore(tokens).tokens()[0].tools == ("list_tables", "describe_table", "my_report")


async def test_a_token_sees_and_calls_only_its_tools(pg: DemoDatabase, tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        f'[databases.shop]\nurl = "{pg.url}"\ndisable_tools = ["describe_table"]\n'
        f'[databases.copy]\nurl = "{pg.url}"\n',
    )
    tokens = tmp_path / "tokens.json"
    store = TokenStore(tokens)
    narrow = store.add("narrow", None, ("list_tables", "describe_table"))
    shop_only = store.add("shop_only", ("shop",), ("list_tables", "describe_table"))
    everything = store.add("everything", None)
    with http_server(
        tmp_path, "--config", config, "--auth-tokens-file", str(tokens), "--log-format", "json"
    ) as server:
        async with mcp_over_http(server.url, narrow) as client:
            narrow_tools = _names(await client.list_tools())
            refused = await client.call_tool("query", {"sql": "SELECT 1", "database": "copy"})
            on_shop = await client.call_tool("describe_table", {"table": "hr.departments"})
            on_copy = await client.call_tool(
                "describe_table", {"table": "hr.departments", "database": "copy"}
            )
        async with mcp_over_http(server.url, shop_only) as client:
            shop_tools = _names(await client.list_tools())
            hidden = await client.call_tool("describe_table", {"table": "hr.departments"})
        async with mcp_over_http(server.url, everything) as client:
            all_tools = _names(await client.list_tools())
        log = server.log.read_text()
    assert narrow_tools == {"list_tables", "describe_table"}
    assert refused.is_error and text_of(refused) == "Unknown tool: query"
    assert on_shop.is_error and "Databases that offer it: copy" in text_of(on_shop), text_of(on_shop)
    assert not on_copy.is_error, text_of(on_copy)
    assert shop_tools == {"list_tables"}, "describe_table is off on the one database this token may use"
    assert hidden.is_error and text_of(hidden) == "Unknown tool: describe_table"
    assert all_tools == set(OWN_TOOL_NAMES)
    audit = [json.loads(line)["audit"] for line in log.splitlines() if '"pg_mcp.audit"' in line]
    refusal = [e for e in audit if e["principal"] == "narrow" and e["tool"] == "query"]
    assert refusal and refusal[-1]["outcome"] == "error:NotFoundError", audit
