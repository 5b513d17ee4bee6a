"""Latency, start-up time and memory of `pg-mcp` over stdio, next to raw asyncpg on the same database.

Starts a throwaway PostgreSQL with the demo data (needs the PostgreSQL server binaries), then prints:
- p50/p95 of a primary-key `query` call over stdio, of the same statement through raw asyncpg, and
  of the same call in-process (the server's own work without the stdio transport);
- time and the server's peak memory for `SELECT *` on tables of growing size;
- time from process start to the `initialize` response.

Usage: python benchmarks/bench_stdio.py [--calls 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

import asyncpg
from mcp import Client, StdioServerParameters
from measure import p50_p95, status_kib, timed

from pg_mcp import explore
from pg_mcp.config import load_settings
from pg_mcp.database.executor import Database
from pg_mcp.explore import DatabaseContext
from pg_mcp.local_pg import load_demo, start_local_postgres

PK_QUERY = "SELECT * FROM sales.orders WHERE id = 123456"
BIG_QUERIES = {
    "SELECT * FROM hr.employees (300 rows)": "SELECT * FROM hr.employees",
    "SELECT * FROM sales.orders (200k rows)": "SELECT * FROM sales.orders",
    "SELECT * FROM sales.order_items (1M rows)": "SELECT * FROM sales.order_items",
    "SELECT generate_series(1, 1e9)": "SELECT generate_series(1, 1000000000) AS n",
}


def server_pid() -> int | None:
    """The pg-mcp child of this process (the stdio client starts it)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:"))
        if int(ppid) == os.getpid() and b"pg_mcp" in cmdline:
            return int(entry.name)
    return None


def server_env() -> dict[str, str]:
    """The caller's environment without pg-mcp settings, so only the URL given decides what runs."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG_MCP_") and k != "DATABASE_URL"}


async def raw_jsonrpc(url: str, n: int) -> list[float]:
    """tools/call latency with a bare JSON-RPC client (no SDK on the client side): the server's own cost."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pg_mcp", url, "--log-level", "WARNING",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=server_env(),
    )  # fmt: skip
    assert proc.stdin and proc.stdout
    stdin, stdout = proc.stdin, proc.stdout

    async def request(ident: int, method: str, params: dict[str, object]) -> None:
        stdin.write(
            json.dumps({"jsonrpc": "2.0", "id": ident, "method": method, "params": params}).encode() + b"\n"
        )
        await stdin.drain()
        while json.loads(await stdout.readline()).get("id") != ident:
            pass

    init: dict[str, object] = {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "bench", "version": "0"},
    }
    await request(0, "initialize", init)
    stdin.write(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}\n')
    call: dict[str, object] = {"name": "query", "arguments": {"sql": PK_QUERY}}
    counter = iter(range(1, 1_000_000))
    samples = await timed(lambda: request(next(counter), "tools/call", call), n, warm_up=20)
    stdin.close()
    await proc.wait()
    return samples


def params(url: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "pg_mcp", url, "--log-level", "WARNING"],
        env=server_env(),
        cwd=str(Path(__file__).parent),
    )


async def main(calls: int) -> None:
    with start_local_postgres() as cluster:
        started = time.perf_counter()
        url = await load_demo(cluster.url(), cluster.password)
        print(f"demo database loaded in {time.perf_counter() - started:.1f} s")

        conn = await asyncpg.connect(url)
        raw = await timed(lambda: conn.fetch(PK_QUERY), calls, warm_up=20)
        await conn.close()

        db = Database(load_settings({"database_url": url}, dotenv=False))
        explorer = DatabaseContext("bench", db.settings, db)
        in_process = await timed(lambda: explore.query(explorer, PK_QUERY), calls, warm_up=20)
        await db.close()

        bare = await raw_jsonrpc(url, calls)
        async with Client(params(url)) as client:
            stdio = await timed(lambda: client.call_tool("query", {"sql": PK_QUERY}), calls, warm_up=20)
            pid = server_pid()
            print(f"\nprimary-key query, {calls} calls each")
            print(f"  raw asyncpg (prepared-statement cache on)   {p50_p95([t * 1000 for t in raw])}")
            print(f"  pg-mcp in-process (guard+db+render)         {p50_p95([t * 1000 for t in in_process])}")
            print(f"  tools/call over stdio, bare JSON-RPC client {p50_p95([t * 1000 for t in bare])}")
            print(f"  tools/call over stdio, official MCP client  {p50_p95([t * 1000 for t in stdio])}")
            for label, samples in (("in-process", in_process), ("bare stdio", bare), ("MCP client", stdio)):
                overhead = statistics.median(samples) - statistics.median(raw)
                print(f"  p50 overhead over raw asyncpg, {label}: {overhead * 1000:.3f} ms")

            print("\nSELECT * through tools/call over stdio (first page of 100 rows)")
            if pid:
                print(f"  server RSS before: {status_kib(pid, 'VmRSS') / 1024:.1f} MiB")
            for label, sql in BIG_QUERIES.items():
                samples = []
                for _ in range(5):
                    begun = time.perf_counter()
                    result = await client.call_tool("query", {"sql": sql})
                    samples.append(time.perf_counter() - begun)
                    assert not result.is_error and result.structured_content
                peak = f"   server peak RSS {status_kib(pid, 'VmHWM') / 1024:.1f} MiB" if pid else ""
                print(f"  {label:42s} median {statistics.median(samples) * 1000:7.2f} ms{peak}")

        startup = []
        for _ in range(5):
            begun = time.perf_counter()
            async with Client(params(url)):
                startup.append(time.perf_counter() - begun)
        print(
            f"\nprocess start to initialize response: median {statistics.median(startup) * 1000:.0f} ms "
            f"(min {min(startup) * 1000:.0f}, max {max(startup) * 1000:.0f})"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=500)
    asyncio.run(main(parser.parse_args().calls))
