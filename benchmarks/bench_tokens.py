"""Bytes a model reads per tool call, on the demo database and on a generated catalog of 5,000 tables.

Also compares the text of a 100-row result of a wide table with the same rows as pretty-printed JSON.
Starts a throwaway PostgreSQL (needs the PostgreSQL server binaries).

Usage: python benchmarks/bench_tokens.py
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters

from pg_mcp.local_pg import load_catalog, load_demo, start_local_postgres

DEMO_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("list_schemas", {}),
    ("list_tables", {}),
    ("describe_table", {"table": "sales.orders"}),
    ("describe_table", {"table": "analytics.page_views"}),
    ("search_schema", {"pattern": "customer"}),
    ("relationships", {"table": "sales.orders"}),
    ("sample_rows", {"table": "sales.order_items", "n": 10}),
    ("column_stats", {"table": "sales.orders"}),
    ("explain", {"sql": "SELECT * FROM sales.orders WHERE customer_id = 42"}),
    ("query", {"sql": "SELECT status, count(*) FROM sales.orders GROUP BY 1"}),
]
WIDE_QUERIES = {
    "14-column join with jsonb": (
        "SELECT c.*, o.id AS order_id, o.status, o.ordered_at, o.shipping_address, o.total, o.note "
        "FROM sales.orders o JOIN sales.customers c ON c.id = o.customer_id ORDER BY o.id"
    ),
    "hr.employees (10 columns)": "SELECT * FROM hr.employees ORDER BY id",
    "sales.order_items (5 columns)": "SELECT * FROM sales.order_items",
}


def text_bytes(result: Any) -> int:
    return sum(len(getattr(block, "text", "").encode()) for block in result.content)


def params(url: str) -> StdioServerParameters:
    """The server on `url` alone: no PG_MCP_* settings or .env file from the caller change the numbers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG_MCP_") and k != "DATABASE_URL"}
    return StdioServerParameters(
        command=sys.executable, args=["-m", "pg_mcp", url], env=env, cwd=str(Path(__file__).parent)
    )


async def main() -> None:
    with start_local_postgres() as cluster:
        url = await load_demo(cluster.url(), cluster.password)
        async with Client(params(url)) as client:
            print("demo database: bytes of text per tool call")
            for tool, arguments in DEMO_CALLS:
                result = await client.call_tool(tool, arguments)
                label = f"{tool}({', '.join(f'{k}={v!r}' for k, v in arguments.items())})"
                print(f"  {text_bytes(result):7,d}  {label[:90]}")
            print("\n100-row results: text the model reads vs the same rows as pretty-printed JSON")
            for label, sql in WIDE_QUERIES.items():
                wide = await client.call_tool("query", {"sql": sql, "max_rows": 100})
                rows = wide.structured_content["rows"]
                names = [c["name"] for c in wide.structured_content["columns"]]
                records = [dict(zip(names, row, strict=True)) for row in rows]
                pretty = len(json.dumps(records, indent=2, ensure_ascii=False).encode())
                text = text_bytes(wide)
                print(
                    f"  {label:32s} text {text:7,d} bytes, pretty JSON {pretty:7,d} bytes ({text / pretty:.0%})"
                )

        catalog_url = await load_catalog(cluster.url(), "catalog5k", 5000)
        async with Client(params(catalog_url)) as client:
            print("\ncatalog of 5,000 tables: bytes of text per call")
            for tool, arguments in [
                ("list_schemas", {}),
                ("list_tables", {}),
                ("list_tables", {"schema": "app_3"}),
                ("search_schema", {"pattern": "entity_42"}),
                ("describe_table", {"table": "app_1.entity_4201"}),
                ("relationships", {"table": "app_1.root"}),
            ]:
                result = await client.call_tool(tool, arguments)
                print(f"  {text_bytes(result):7,d}  {tool}({arguments})")
            pages, resources, largest = 0, 0, 0
            cursor = None
            while True:
                page = await client.list_resources(cursor=cursor)
                pages += 1
                resources += len(page.resources)
                largest = max(largest, len(page.model_dump_json().encode()))
                cursor = page.next_cursor
                if not cursor:
                    break
            print(
                f"  resources/list: {resources:,} resources in {pages} pages, largest page {largest:,} bytes"
            )


if __name__ == "__main__":
    asyncio.run(main())
