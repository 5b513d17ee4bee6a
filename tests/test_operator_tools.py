"""Tools the operator defines in the config file: listed with a schema from their parameters, run with
the values bound (never spliced), through the same guard and limits; a bad definition stops start-up
naming its line."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
from conftest import DemoDatabase
from factories import config_client
from mcp_helpers import text_of

from pg_mcp.config import load_config
from pg_mcp.errors import ConfigError
from pg_mcp.server import build_server

TOOLS = """
[tools.orders_in_status]
description = "Orders in one status, newest first."
sql = "SELECT id, status FROM sales.orders WHERE status = $1 ORDER BY id DESC"
max_rows = 5
[[tools.orders_in_status.parameters]]
name = "status"
type = "text"
description = "The order's status."
allowed = ["paid", "shipped", "delivered", "cancelled", "pending", "refunded"]

[tools.order_by_id]
description = "One order by its id."
sql = "SELECT id, status FROM sales.orders WHERE id = $1"
[[tools.order_by_id.parameters]]
name = "id"
type = "integer"
description = "The order's id."
minimum = 1

[tools.customer_named]
description = "Customers whose name contains a text."
sql = "SELECT count(*) AS n FROM sales.customers WHERE full_name LIKE '%' || $1 || '%'"
[[tools.customer_named.parameters]]
name = "part"
type = "text"
description = "Part of the name."
"""


def _config(tmp_path: Path, url: str, tools: str) -> Path:
    path = tmp_path / "pg-mcp.toml"
    path.write_text(f'[databases.shop]\nurl = "{url}"\n{tools}')
    return path


async def test_operator_tools_are_listed_and_run_with_their_values_bound(
    pg: DemoDatabase, tmp_path: Path
) -> None:
    async with config_client(_config(tmp_path, pg.url, TOOLS)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        paid = await client.call_tool("orders_in_status", {"status": "paid"})
        one = await client.call_tool("order_by_id", {"id": 1})
        odd = await client.call_tool("orders_in_status", {"status": "lost"})
        negative = await client.call_tool("order_by_id", {"id": -3})
        injected = await client.call_tool(
            "customer_named", {"part": "x' OR 1=1; DROP TABLE sales.orders; --"}
        )
    schema = tools["orders_in_status"].input_schema
    assert schema["properties"]["status"]["enum"][:2] == ["paid", "shipped"], schema
    assert "database" not in schema["properties"] and schema["required"] == ["status"]
    assert tools["order_by_id"].input_schema["properties"]["id"]["minimum"] == 1
    assert tools["orders_in_status"].description == "Orders in one status, newest first."
    assert not paid.is_error, text_of(paid)
    assert paid.structured_content["row_count"] == 5 and paid.structured_content["truncated"] is True
    assert {row[1] for row in paid.structured_content["rows"]} == {"paid"}
    jsonschema.validate(paid.structured_content, tools["orders_in_status"].output_schema or {})
    assert not one.is_error and one.structured_content["rows"][0][0] == 1, text_of(one)
    assert odd.is_error and negative.is_error
    assert not injected.is_error and injected.structured_content["rows"] == [[0]], text_of(injected)


@pytest.mark.parametrize(
    ("tools", "message"),
    [
        (
            '\n[tools.wipe]\ndescription = "x"\nsql = "DELETE FROM sales.orders"\n',
            "line 3 ([tools.wipe]): the guard refuses its sql",
        ),
        (
            '\n[tools.two]\ndescription = "x"\nsql = "SELECT $2::int AS n"\n[[tools.two.parameters]]\n'
            'name = "n"\ntype = "integer"\ndescription = "n"\n',
            "the guard refuses its sql: The statement uses $2, but the tool declares 1 parameters",
        ),
        (
            '\n[tools.bad]\ndescription = "x"\nsql = "SELECT 1"\n[[tools.bad.parameters]]\nname = "n"\n'
            'type = "geometry"\ndescription = "n"\n',
            "type 'geometry' is not one of",
        ),
        ('\n[tools.query]\ndescription = "x"\nsql = "SELECT 1"\n', "pg-mcp's own tools"),
        (
            '\n[tools.unused]\ndescription = "x"\nsql = "SELECT $1::int AS n"\n[[tools.unused.parameters]]\n'
            'name = "n"\ntype = "integer"\ndescription = "n"\n[[tools.unused.parameters]]\nname = "m"\n'
            'type = "integer"\ndescription = "m"\n',
            "its sql does not use the parameter m ($2)",
        ),
        ('\n[tools.nodesc]\nsql = "SELECT 1"\n', "description is missing"),
    ],
)
def test_a_definition_that_cannot_be_served_stops_start_up(
    pg: DemoDatabase, tmp_path: Path, tools: str, message: str
) -> None:
    path = _config(tmp_path, pg.url, tools)
    with pytest.raises(ConfigError) as refused:
        build_server(load_config(None, str(path), dotenv=False))
    assert message in str(refused.value), refused.value
    assert str(path) in str(refused.value)


async def test_a_parameter_postgresql_reads_as_another_type_says_how_to_cast(
    pg: DemoDatabase, tmp_path: Path
) -> None:
    tools = (
        '\n[tools.by_id]\ndescription = "x"\nsql = "SELECT id FROM sales.orders WHERE id = $1"\n'
        '[[tools.by_id.parameters]]\nname = "id"\ntype = "text"\ndescription = "the id"\n'
    )
    async with config_client(_config(tmp_path, pg.url, tools)) as client:
        result = await client.call_tool("by_id", {"id": "1"})
    assert result.is_error and "declares its parameter id as text" in text_of(result), text_of(result)
    assert "$1::text" in text_of(result)
