"""Throughput of `pg-mcp serve --transport http`: concurrent clients making primary-key `query` calls.

Starts a throwaway PostgreSQL with the demo data, then one and then two pg-mcp HTTP replicas on
loopback (stateless; requests alternate between replicas), and drives each setup with `--clients`
concurrent clients for `--seconds`, each posting bare JSON-RPC `tools/call` requests. Prints
calls/s, p50/p99 latency, errors and each replica's RSS.

Usage: python benchmarks/bench_http.py [--clients 50] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx2

from pg_mcp.local_pg import free_port, load_demo, start_local_postgres

HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def start_replica(url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG_MCP_") and k != "DATABASE_URL"}
    env["PG_MCP_LOG_LEVEL"] = "WARNING"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pg_mcp", "serve", "--transport", "http", "--port", str(port),
         "--principal-rate", "100000", "--principal-concurrency", "1000", "--max-concurrent-calls", "200", url],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx2.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx2.HTTPError:
            time.sleep(0.1)
    raise SystemExit("replica did not start")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def drive(bases: list[str], clients: int, seconds: float) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def client(index: int) -> None:
        nonlocal errors
        async with httpx2.AsyncClient(timeout=30) as http:
            n = 0
            while time.perf_counter() < deadline:
                base = bases[(index + n) % len(bases)]
                body = {"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {
                    "name": "query", "arguments": {"sql": f"SELECT * FROM sales.orders WHERE id = {1 + (index * 7919 + n) % 200000}"}}}  # fmt: skip
                started = time.perf_counter()
                try:
                    response = await http.post(f"{base}/mcp", content=json.dumps(body), headers=HEADERS)
                    ok = response.status_code == 200 and not response.json()["result"].get("isError")
                except (httpx2.HTTPError, ValueError, KeyError):
                    ok = False
                latencies.append(time.perf_counter() - started)
                errors += 0 if ok else 1
                n += 1

    await asyncio.gather(*(client(i) for i in range(clients)))
    return latencies, errors


def report(label: str, latencies: list[float], errors: int, seconds: float, pids: list[int]) -> None:
    ordered = sorted(latencies)
    p99 = ordered[int(len(ordered) * 0.99) - 1] if ordered else 0.0
    rss = ", ".join(f"{rss_mib(pid):.0f} MiB" for pid in pids)
    print(
        f"{label}: {len(latencies) / seconds:7.1f} calls/s   p50 {statistics.median(ordered) * 1000:6.1f} ms   "
        f"p99 {p99 * 1000:6.1f} ms   errors {errors}   RSS {rss}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    with start_local_postgres() as cluster:
        url = asyncio.run(load_demo(cluster.url(), cluster.password))
        for replicas in (1, 2):
            procs = [start_replica(url) for _ in range(replicas)]
            try:
                bases = [base for _, base in procs]
                asyncio.run(drive(bases, 5, 2.0))  # warm up
                latencies, errors = asyncio.run(drive(bases, args.clients, args.seconds))
                report(f"{replicas} replica(s), {args.clients} clients", latencies, errors, args.seconds,
                       [p.pid for p, _ in procs])  # fmt: skip
            finally:
                for proc, _ in procs:
                    proc.terminate()
                    proc.wait(timeout=30)


if __name__ == "__main__":
    main()
