"""Quick calls behind slow ones: how long they wait, in process, on a throwaway PostgreSQL.

Two scenarios on the default pool (5 connections):

- one caller (stdio): `--slow` slow statements in flight, then `--quick` primary-key lookups and
  catalog reads from the same caller;
- two callers (HTTP principals): caller a keeps `--slow` slow statements in flight, caller b sends
  `--quick` `SELECT 1` queries.

Prints, per scenario, how many quick calls succeeded, were told the server is busy, and the p50 and
maximum time a quick call took. The slow statement is `pg_sleep(--sleep)` through the database layer.

    python benchmarks/bench_fairness.py --slow 50 --quick 20 --sleep 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time

from pg_mcp import explore
from pg_mcp.config import load_settings
from pg_mcp.database.executor import Database
from pg_mcp.database.turns import LOCAL_CALLER, current_caller
from pg_mcp.errors import PgMcpError
from pg_mcp.explore.context import DatabaseContext
from pg_mcp.guard import CheckedQuery
from pg_mcp.local_pg import load_demo, start_local_postgres


async def scenario(url: str, slow_caller: str, quick_caller: str, args: argparse.Namespace) -> str:
    settings = load_settings({"database_url": url}, dotenv=False)
    db = Database(settings)
    context = DatabaseContext("bench", settings, db)
    sleep = f"SELECT pg_sleep({args.sleep})"

    async def slow() -> None:
        current_caller.set(slow_caller)
        with contextlib.suppress(PgMcpError):
            await db.run_query(CheckedQuery(sleep, sleep, 1))

    async def quick(n: int) -> tuple[float, bool]:
        current_caller.set(quick_caller)
        started = time.perf_counter()
        try:
            if n % 2:
                await explore.describe_table(context, "sales.orders")
            else:
                await explore.query(context, f"SELECT id, status FROM sales.orders WHERE id = {n + 1}")
        except PgMcpError:
            return time.perf_counter() - started, False
        return time.perf_counter() - started, True

    try:
        await db.connect()
        slow_calls = [asyncio.create_task(slow()) for _ in range(args.slow)]
        await asyncio.sleep(0.3)
        results = await asyncio.gather(*(quick(n) for n in range(args.quick)))
        for task in slow_calls:
            task.cancel()
        await asyncio.gather(*slow_calls, return_exceptions=True)
    finally:
        await db.close()
    times = [seconds * 1000 for seconds, _ in results]
    ok = sum(1 for _, succeeded in results if succeeded)
    return (
        f"{ok}/{len(results)} quick calls answered, {len(results) - ok} busy; "
        f"p50 {statistics.median(times):.1f} ms, max {max(times):.1f} ms"
    )


async def main(args: argparse.Namespace) -> None:
    with start_local_postgres() as cluster:
        url = await load_demo(cluster.url(), cluster.password)
        print(
            f"one caller, {args.slow} slow + {args.quick} quick: {await scenario(url, LOCAL_CALLER, LOCAL_CALLER, args)}"
        )
        print(
            f"caller a {args.slow} slow, caller b {args.quick} quick: {await scenario(url, 'a', 'b', args)}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", type=int, default=50)
    parser.add_argument("--quick", type=int, default=20)
    parser.add_argument("--sleep", type=float, default=3.0)
    asyncio.run(main(parser.parse_args()))
