"""The DBA insight tools as a client sees them: absent unless the operator turns them on, and then
listed with their schemas and answering through the same edge as every tool."""

from __future__ import annotations

import jsonschema
from conftest import DemoDatabase
from mcp_helpers import mcp_client, text_of

INSIGHT = {"slow_queries", "index_health", "table_health", "database_health", "explain_analyze"}


async def test_the_insight_tools_are_listed_only_when_turned_on(pg: DemoDatabase) -> None:
    async with mcp_client(pg.url) as client:
        off = {tool.name for tool in (await client.list_tools()).tools}
    assert not off & INSIGHT
    async with mcp_client(pg.url, insight=True) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        health = await client.call_tool("database_health", {})
        slow = await client.call_tool("slow_queries", {})
        analysed = await client.call_tool(
            "explain_analyze", {"sql": "SELECT count(*) FROM sales.orders WHERE status = 'paid'"}
        )
        write = await client.call_tool("explain_analyze", {"sql": "DELETE FROM sales.orders"})
    assert set(tools) >= INSIGHT
    for result, name in ((health, "database_health"), (analysed, "explain_analyze")):
        assert not result.is_error, text_of(result)
        jsonschema.validate(result.structured_content, tools[name].output_schema or {})
    assert "pg_stat_statements" in text_of(slow), text_of(slow)
    assert write.is_error and "Refused" in text_of(write), text_of(write)
