"""Time to the first replies of `pg-mcp demo`, on a first run (empty cache) and on a later one.

Drives `python -m pg_mcp demo` with a bare JSON-RPC client over stdio and prints, from process start:
the `initialize` answer, the `tools/list` answer, the first `query` answer (which waits for the
database on a first run), and the exit after stdin closes. Then the same for `pg-mcp call --demo`.

Usage: python benchmarks/bench_demo.py [--cache DIR]   (DIR is emptied first; default: a temp dir)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "bench", "version": "1"},
    },
}
MESSAGES = [
    INITIALIZE,
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": {"name": "query", "arguments": {"sql": "SELECT count(*) FROM sales.order_items"}},
    },
]


def serve_once(env: dict[str, str]) -> dict[str, float]:
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pg_mcp", "demo"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    for message in MESSAGES:
        proc.stdin.write(json.dumps(message).encode() + b"\n")
    proc.stdin.flush()
    times: dict[str, float] = {}
    names = {1: "initialize", 2: "tools/list", 3: "first query"}
    while len(times) < len(names):
        line = proc.stdout.readline()
        if not line:
            break
        reply = json.loads(line)
        if reply.get("id") in names:
            times[names[reply["id"]]] = time.perf_counter() - started
            if reply["id"] == 3 and reply["result"].get("isError"):
                print("  query answered with an error:", reply["result"]["content"][0]["text"][:200])
    closing = time.perf_counter()
    proc.stdin.close()
    proc.wait(timeout=60)
    times["exit after stdin closes"] = time.perf_counter() - closing
    return times


def call_once(env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pg_mcp", "call", "--demo", "query", "sql=SELECT 1 AS one"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=None)
    args = parser.parse_args()
    cache = args.cache or Path(tempfile.mkdtemp(prefix="pg-mcp-bench-demo-"))
    shutil.rmtree(cache, ignore_errors=True)
    if os.geteuid() == 0:
        cache.mkdir(parents=True, mode=0o755)
        os.chmod(cache, 0o777)  # the demo's PostgreSQL runs as an unprivileged user
    env = {**os.environ, "PG_MCP_DEMO_CACHE": str(cache)}
    for label in ("first run (empty cache)", "second run"):
        print(f"pg-mcp demo, {label}:")
        for name, seconds in serve_once(env).items():
            print(f"  {name:<24} {seconds:6.2f} s")
    print(f"pg-mcp call --demo (cache kept): {call_once(env):.2f} s")
    shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
