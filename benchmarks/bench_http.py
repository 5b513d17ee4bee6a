"""Throughput of `pg-mcp serve --transport http`: concurrent clients making primary-key `query` calls.

Starts a throwaway PostgreSQL with the demo data, then one and then two pg-mcp HTTP replicas on
loopback (stateless; requests alternate between replicas), and drives each setup with `--clients`
concurrent clients for `--seconds`, each posting bare JSON-RPC `tools/call` requests. Prints
calls/s, p50/p99 latency, errors, each replica's RSS and the CPU the load generator itself used,
then the CPU per call of pg-mcp and of PostgreSQL and the machine's CPU steal over the run (on a VM,
steal is the clearest sign that a run's figures are the neighbours' as much as the server's).

The load generator shares the machine with the servers and PostgreSQL, so it is kept cheap: each
client keeps one HTTP/1.1 keep-alive connection per replica over raw asyncio streams and reads the
response by its Content-Length (or chunks). A call counts as an error unless it is a 200 whose
JSON-RPC result is not `isError`. `--client httpx` drives the same load through one httpx2
AsyncClient per client instead (several times the client CPU per call).

First, one request at a time against one replica, the CPU of each layer: `/healthz` (uvicorn and
the HTTP middleware), `ping` (plus the SDK's JSON-RPC dispatch), `query` of `SELECT 1` (plus the guard
and the database round trips) and the primary-key query.

Usage: python benchmarks/bench_http.py [--clients 50] [--seconds 30] [--replicas 1,2] [--client raw|httpx]
       [--layers 1000]
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
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx2
from measure import cpu_seconds, cpu_ticks, status_kib, steal_share

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


def postgres_pids() -> list[int]:
    found = subprocess.run(["pgrep", "-x", "postgres"], capture_output=True, text=True, check=False)
    return [int(pid) for pid in found.stdout.split()]


def call_body(index: int, n: int) -> bytes:
    body = {"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {
        "name": "query", "arguments": {"sql": f"SELECT * FROM sales.orders WHERE id = {1 + (index * 7919 + n) % 200000}"}}}  # fmt: skip
    return json.dumps(body).encode()


def answered(status: int, payload: bytes) -> bool:
    """A 200 carrying a JSON-RPC result that is not a tool error."""
    try:
        return status == 200 and not json.loads(payload)["result"].get("isError")
    except (ValueError, KeyError, TypeError, AttributeError):
        return False


class RawConnection:
    """One HTTP/1.1 keep-alive connection over asyncio streams: just enough client for the benchmark."""

    def __init__(self, base: str, request_line: str = "POST /mcp") -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.head = (
            f"{request_line} HTTP/1.1\r\nhost: {parts.netloc}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in HEADERS.items())
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> tuple[int, bytes]:
        if self.writer is None or self.reader is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.reader, self.writer
        try:
            writer.write(self.head + b"content-length: %d\r\n\r\n" % len(body) + body)
            header = await reader.readuntil(b"\r\n\r\n")
            lines = header.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            fields = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in lines[1:] if line)
            }
            if "content-length" in fields:
                payload = await reader.readexactly(int(fields["content-length"]))
            elif fields.get("transfer-encoding", "").lower() == "chunked":
                chunks = []
                while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                    chunks.append(await reader.readexactly(size))
                    await reader.readexactly(2)
                await reader.readuntil(b"\r\n")
                payload = b"".join(chunks)
            else:  # no framing: the body runs to the end of the connection
                payload = await reader.read()
                fields["connection"] = "close"
            if fields.get("connection", "").lower() == "close":
                self.close()
            return status, payload
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def drive(
    bases: list[str], clients: int, seconds: float, kind: str = "raw"
) -> tuple[list[float], int, float]:
    """Latencies and errors of `clients` concurrent callers for `seconds`, and the CPU seconds this
    process (the load generator) used meanwhile."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def raw_client(index: int) -> None:
        nonlocal errors
        connections = [RawConnection(base) for base in bases]
        n = 0
        try:
            while time.perf_counter() < deadline:
                connection = connections[(index + n) % len(bases)]
                body = call_body(index, n)
                started = time.perf_counter()
                try:
                    async with asyncio.timeout(30):
                        status, payload = await connection.post(body)
                    ok = answered(status, payload)
                except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                        TimeoutError, ValueError, IndexError):  # fmt: skip
                    ok = False
                latencies.append(time.perf_counter() - started)
                errors += 0 if ok else 1
                n += 1
        finally:
            for connection in connections:
                connection.close()

    async def client(index: int) -> None:
        nonlocal errors
        async with httpx2.AsyncClient(timeout=30) as http:
            n = 0
            while time.perf_counter() < deadline:
                base = bases[(index + n) % len(bases)]
                body = call_body(index, n)
                started = time.perf_counter()
                try:
                    response = await http.post(f"{base}/mcp", content=body, headers=HEADERS)
                    ok = answered(response.status_code, response.content)
                except httpx2.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - started)
                errors += 0 if ok else 1
                n += 1

    cpu_started = time.process_time()
    await asyncio.gather(*((raw_client if kind == "raw" else client)(i) for i in range(clients)))
    return latencies, errors, time.process_time() - cpu_started


def report(
    label: str, latencies: list[float], errors: int, seconds: float, pids: list[int], client_cpu: float
) -> None:
    ordered = sorted(latencies)
    p99 = ordered[int(len(ordered) * 0.99) - 1] if ordered else 0.0
    rss = ", ".join(f"{status_kib(pid, 'VmRSS') / 1024:.0f} MiB" for pid in pids)
    per_call = client_cpu * 1000 / max(1, len(latencies))
    print(
        f"{label}: {len(latencies) / seconds:7.1f} calls/s   p50 {statistics.median(ordered) * 1000:6.1f} ms   "
        f"p99 {p99 * 1000:6.1f} ms   errors {errors}   RSS {rss}   "
        f"client CPU {client_cpu / seconds:.2f} cores ({per_call:.2f} ms/call)"
    )


def rpc(method: str, params: dict[str, object] | None = None) -> Callable[[int], bytes]:
    """The body of request n: a JSON-RPC request with these method and params."""
    return lambda n: json.dumps(
        {"jsonrpc": "2.0", "id": n, "method": method, "params": params or {}}
    ).encode()


#: What each layer adds, one request at a time: uvicorn and our HTTP middleware alone (`/healthz`, no
#: body), plus the SDK's JSON-RPC dispatch (`ping`), plus a tool call whose statement is trivial, plus
#: the primary-key query of the load test.
LAYERS: dict[str, Callable[[int], bytes] | None] = {
    "GET /healthz (HTTP only)": None,
    "ping (+ MCP dispatch)": rpc("ping"),
    "query SELECT 1 (+ guard, database)": rpc(
        "tools/call", {"name": "query", "arguments": {"sql": "SELECT 1"}}
    ),
    "query by primary key": lambda n: call_body(0, n),
}


async def sequential(base: str, body_of: Callable[[int], bytes] | None, requests: int) -> int:
    """`requests` requests one after another on one connection (`GET /healthz` when there is no body);
    how many failed: not a 200, or for JSON-RPC no result or a tool error."""
    connection = RawConnection(base) if body_of is not None else RawConnection(base, "GET /healthz")
    failed = 0
    try:
        for n in range(requests):
            status, payload = await connection.post(body_of(n) if body_of is not None else b"")
            failed += status != 200 if body_of is None else not answered(status, payload)
    finally:
        connection.close()
    return failed


def layers(url: str, requests: int) -> None:
    proc, base = start_replica(url)
    try:
        asyncio.run(drive([base], 5, 2.0))
        print(
            f"CPU per request, one request at a time ({requests} each; the differences are what each layer adds):"
        )
        for label, body_of in LAYERS.items():
            before, pg_before = (
                cpu_seconds([proc.pid], children=True),
                cpu_seconds(postgres_pids(), children=True),
            )
            started = time.perf_counter()
            failed = asyncio.run(sequential(base, body_of, requests))
            elapsed = time.perf_counter() - started
            server, pg = (
                cpu_seconds([proc.pid], children=True) - before,
                cpu_seconds(postgres_pids(), children=True) - pg_before,
            )
            print(
                f"    {label:36s} pg-mcp {server * 1000 / requests:.2f} ms, PostgreSQL {pg * 1000 / requests:.2f} ms, "
                f"{requests / elapsed:6.0f} requests/s, {failed} failed"
            )
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--replicas", default="1,2", help="replica counts to run, comma-separated")
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw", help="load generator")
    parser.add_argument("--layers", type=int, default=1000, metavar="N",
                        help="requests per layer in the one-at-a-time breakdown (0: skip it)")  # fmt: skip
    args = parser.parse_args()
    with start_local_postgres() as cluster:
        url = asyncio.run(load_demo(cluster.url(), cluster.password))
        if args.layers:
            layers(url, args.layers)
        for replicas in (int(r) for r in args.replicas.split(",")):
            procs = [start_replica(url) for _ in range(replicas)]
            try:
                bases = [base for _, base in procs]
                pids = [p.pid for p, _ in procs]
                asyncio.run(drive(bases, 5, 2.0, args.client))  # warm up
                before = (
                    cpu_seconds(pids, children=True),
                    cpu_seconds(postgres_pids(), children=True),
                    cpu_ticks(),
                )
                latencies, errors, cpu = asyncio.run(drive(bases, args.clients, args.seconds, args.client))
                after = (
                    cpu_seconds(pids, children=True),
                    cpu_seconds(postgres_pids(), children=True),
                    cpu_ticks(),
                )
                report(f"{replicas} replica(s), {args.clients} clients", latencies, errors, args.seconds,
                       pids, cpu)  # fmt: skip
                calls = max(1, len(latencies))
                print(
                    f"    where the CPU went, per call: pg-mcp {(after[0] - before[0]) * 1000 / calls:.2f} ms, "
                    f"PostgreSQL {(after[1] - before[1]) * 1000 / calls:.2f} ms; CPU steal "
                    f"{steal_share(before[2], after[2]):.0%} (time the hypervisor gave to other guests)"
                )
            finally:
                for proc, _ in procs:
                    proc.terminate()
                    proc.wait(timeout=30)


if __name__ == "__main__":
    main()
