"""Cost per call of judging statements on PostgreSQL's own analysis, in process.

Starts a throwaway PostgreSQL with the demo data, then times `query` calls through pg-mcp's explore layer
(guard, analysis, plan check, execution, rendering; no MCP transport) on two databases: the demo as it is
(no operator-written function: an empty reach model) and a copy with a few hundred user functions,
operators, casts and domains. Prints p50/p95 per statement, the time to read the reach model, and the size
of PostgreSQL's analysis. Run it from a checkout of any version to compare (the explore API is the same):

    python benchmarks/bench_analysis.py --calls 500
"""

from __future__ import annotations

import argparse
import asyncio
import time

import asyncpg
from measure import p50_p95

from pg_mcp import explore
from pg_mcp.config import load_settings
from pg_mcp.explore.context import DatabaseContext
from pg_mcp.local_pg import load_demo, start_local_postgres

STATEMENTS = {
    "primary key": "SELECT * FROM sales.orders WHERE id = 42",
    "aggregate": "SELECT status, count(*) FROM sales.orders GROUP BY status ORDER BY 2 DESC",
    "join": "SELECT c.full_name, o.status FROM sales.orders o JOIN sales.customers c ON c.id = o.customer_id LIMIT 20",
    "information_schema": (
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'sales'"
    ),
}


def user_objects(count: int) -> str:
    """`count` plpgsql functions, with an operator, a cast and a domain for every tenth."""
    parts = ["CREATE SCHEMA app_fn;"]
    for n in range(count):
        parts.append(
            f"CREATE FUNCTION app_fn.f{n}(integer, text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE "
            f"AS $$ BEGIN RETURN $1 > {n}; END $$;"
        )
        if n % 10 == 0:
            operator = "<#" + "#" * (n // 10)
            parts.append(
                f"CREATE OPERATOR app_fn.{operator} (LEFTARG = integer, RIGHTARG = text, FUNCTION = app_fn.f{n});"
            )
            parts.append(f"CREATE DOMAIN app_fn.d{n} AS integer CHECK (app_fn.f{n}(VALUE, 'x'));")
    parts.append("CREATE FUNCTION app_fn.to_int(money) RETURNS integer LANGUAGE sql AS 'SELECT 1';")
    parts.append("CREATE CAST (money AS integer) WITH FUNCTION app_fn.to_int(money);")
    return "\n".join(parts)


async def measure(url: str, calls: int) -> dict[str, list[float]]:
    settings = load_settings({"database_url": url}, dotenv=False)
    context = DatabaseContext.connect_later("bench", settings)
    timings: dict[str, list[float]] = {name: [] for name in STATEMENTS}
    try:
        for name, sql in STATEMENTS.items():
            for _ in range(20):  # warm: pool, model, caches
                await explore.query(context, sql)
            for _ in range(calls):
                started = time.perf_counter()
                await explore.query(context, sql)
                timings[name].append((time.perf_counter() - started) * 1000)
        reach = getattr(context, "reach_model", None)
        if reach is not None:
            started = time.perf_counter()
            for _ in range(20):
                await context.reach(fresh=True)
            timings["reach model read"] = [(time.perf_counter() - started) * 1000 / 20]
    finally:
        await context.db.close()
    return timings


async def analysis_sizes(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    sizes: dict[str, int] = {}
    trees: list[str] = []
    conn.add_log_listener(lambda _, message: trees.append(str(message.detail)))
    try:
        await conn.execute(
            "BEGIN READ ONLY; SET LOCAL debug_print_rewritten = on; SET LOCAL debug_pretty_print = off; "
            "SET LOCAL client_min_messages = log"
        )
        for name, sql in STATEMENTS.items():
            trees.clear()
            await conn.prepare(sql)
            sizes[name] = len(trees[0]) if trees else 0
        await conn.execute("ROLLBACK")
    finally:
        await conn.close()
    return sizes


def report(title: str, timings: dict[str, list[float]]) -> None:
    print(title)
    for name, values in timings.items():
        if len(values) == 1:
            print(f"  {name:<20} {values[0]:8.2f} ms")
            continue
        print(f"  {name:<20} {p50_p95(values)}")


async def main(calls: int, functions: int) -> None:
    pg = start_local_postgres()
    try:
        reader = await load_demo(pg.url(), "bench-reader-password")
        admin = await asyncpg.connect(pg.url())
        try:
            await admin.execute("CREATE DATABASE busy TEMPLATE demo")
        finally:
            await admin.close()
        busy_admin = await asyncpg.connect(pg.url("busy"))
        try:
            await busy_admin.execute(user_objects(functions))
        finally:
            await busy_admin.close()
        report("demo database, no operator-written functions", await measure(reader, calls))
        busy = reader.rsplit("/", 1)[0] + "/busy"
        report(
            f"the same with {functions} user functions, operators, casts and domains",
            await measure(busy, calls),
        )
        print("PostgreSQL's analysis (characters):", await analysis_sizes(reader))
    finally:
        pg.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--functions", type=int, default=300)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.calls, arguments.functions))
