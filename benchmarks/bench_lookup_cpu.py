"""CPU per primary-key lookup, ours and PostgreSQL's, with no MCP and no transport in between.

Starts a throwaway PostgreSQL with the demo data (needs the server binaries), then runs the lookup
(`SELECT * FROM sales.orders WHERE id = 123456`) through `explore.query` — the guard, the judged
analysis, the plan check, the read-only session — in rounds, and prints per call: the wall time, this
process's CPU and PostgreSQL's (its backends' CPU from /proc). Not part of the test suite: it prints
numbers and asserts nothing about time.

Usage: python benchmarks/bench_lookup_cpu.py [--calls 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from measure import child_pids, cpu_seconds

from pg_mcp import explore
from pg_mcp.config import load_settings
from pg_mcp.explore import DatabaseContext
from pg_mcp.guard import start_workers
from pg_mcp.local_pg import load_demo, start_local_postgres

LOOKUP = "SELECT * FROM sales.orders WHERE id = 123456"


async def run(calls: int, rounds: int) -> None:
    cluster = start_local_postgres()
    try:
        url = await load_demo(cluster.url(), cluster.password)
        postmaster = int((cluster.data_dir / "postmaster.pid").read_text().split()[0])
        start_workers()
        context = DatabaseContext.connect_later("demo", load_settings({"database_url": url}, dotenv=False))
        for _ in range(50):  # warm: the pool, the guard's workers, the catalog model
            await explore.query(context, LOOKUP)
        for number in range(1, rounds + 1):
            backends = child_pids(postmaster)
            theirs, ours, started = cpu_seconds(backends), time.process_time(), time.perf_counter()
            for _ in range(calls):
                await explore.query(context, LOOKUP)
            wall = (time.perf_counter() - started) / calls * 1000
            ours = (time.process_time() - ours) / calls * 1000
            theirs = (cpu_seconds(backends) - theirs) / calls * 1000
            print(
                f"round {number}: {wall:.2f} ms per call; CPU per call: ours {ours:.2f} ms, PostgreSQL {theirs:.2f} ms"
            )
        await context.db.close()
    finally:
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(run(args.calls, args.rounds))


if __name__ == "__main__":
    main()
