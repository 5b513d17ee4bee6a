"""What the plan check adds to a `query` call, in process, interleaved so machine noise hits both alike.

Starts a throwaway PostgreSQL with the demo data, then times N rounds of, alternately:
- without: the guard and the executor alone (what a call cost before every statement was planned);
- with: `explore.query`, which also plans the statement (EXPLAIN VERBOSE) and checks the plan.

Usage: python benchmarks/bench_plan_check.py [--calls 300]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from pg_mcp import explore
from pg_mcp.config import load_settings
from pg_mcp.database.executor import Database
from pg_mcp.explore import DatabaseContext
from pg_mcp.guard import check_query_async
from pg_mcp.local_pg import load_demo, start_local_postgres

STATEMENTS = {
    "primary-key lookup": "SELECT * FROM sales.orders WHERE id = 4242",
    "three-table join": (
        "SELECT c.full_name, count(*) AS n FROM sales.customers c JOIN sales.orders o ON o.customer_id = c.id "
        "JOIN sales.order_items i ON i.order_id = o.id WHERE c.id < 50 GROUP BY c.full_name ORDER BY n DESC LIMIT 5"
    ),
}


async def measure(url: str, calls: int) -> None:
    settings = load_settings({"database_url": url}, dotenv=False)
    db = Database(settings)
    explorer = DatabaseContext("test", settings, db)
    policy = await explorer.guard_policy()
    try:
        for name, sql in STATEMENTS.items():
            without: list[float] = []
            with_plan: list[float] = []
            for _ in range(calls):
                started = time.perf_counter()
                await db.run_query(await check_query_async(sql, 100, policy))
                without.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                await explore.query(explorer, sql)
                with_plan.append((time.perf_counter() - started) * 1000)
            p50_without, p50_with = statistics.median(without), statistics.median(with_plan)
            print(
                f"{name:20s} p50 without plan check {p50_without:6.3f} ms, with {p50_with:6.3f} ms "
                f"(+{p50_with - p50_without:.3f} ms)"
            )
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    with start_local_postgres() as cluster:
        url = asyncio.run(load_demo(cluster.url(), cluster.password))
        asyncio.run(measure(url, args.calls))


if __name__ == "__main__":
    main()
