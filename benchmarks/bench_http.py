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

Last, pg-mcp beside DBHub (`@bytebase/dbhub`, installed from npm into a cache directory: what
`npx @bytebase/dbhub` runs; needs node and npm): one process of each over HTTP on loopback, both
running throughout, same database, same role, the same statement (`SELECT * FROM sales.orders WHERE
id = 123456` through pg-mcp's `query` and DBHub's `execute_sql`, declared `readonly = true` in its
dbhub.toml), the same pool size (5) and statement timeout. --rounds interleaved rounds (the order
alternating) of --clients keep-alive clients for --seconds against one server at a time; per run and
as medians: calls/s, p50/p95/p99, errors, and CPU per call from /proc of the server's processes (with
their children: pg-mcp's guard workers), of our PostgreSQL's processes and of the load generator; then the ratios pg-mcp/DBHub (medians of the
per-round ratios). DBHub answers each call with a text/event-stream; its `data:` event is read.
A call counts only if its answer holds the row. Other work on the machine moves the absolute figures:
compare by the ratios of the interleaved rounds.

PostgreSQL's CPU is that of our throwaway cluster (its postmaster and backends), not of every
`postgres` process on the machine.

Usage: python benchmarks/bench_http.py [--clients 50] [--seconds 30] [--replicas 1,2] [--client raw|httpx]
       [--layers 1000] [--vs dbhub|none] [--rounds 3] [--timeline] [--dbhub-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx2
from measure import child_pids, cpu_seconds, cpu_ticks, percentile, status_kib, steal_share

from pg_mcp.local_pg import LocalPostgres, free_port, load_demo, start_local_postgres

HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PG_MCP_") and k != "DATABASE_URL"}


def start_replica(url: str, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = clean_env()
    env["PG_MCP_LOG_LEVEL"] = "WARNING"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pg_mcp", "serve", "--transport", "http", "--port", str(port),
         "--principal-rate", "100000", "--principal-concurrency", "1000", "--max-concurrent-calls", "200",
         *extra, url],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    wait_healthy(proc, base, "replica")
    return proc, base


def wait_healthy(proc: subprocess.Popen[bytes], base: str, what: str) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode} before answering /healthz")
        try:
            if httpx2.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx2.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{what} did not start")


def postmaster_pid(cluster: LocalPostgres) -> int:
    return int((cluster.data_dir / "postmaster.pid").read_text().split()[0])


def process_tree_cpu(pids: list[int]) -> float:
    """CPU seconds of the server processes, of their live children (pg-mcp's guard workers, which
    parse each new statement) and of the children they have waited for."""
    return cpu_seconds([*pids, *(child for pid in pids for child in child_pids(pid))], children=True)


def postgres_pids(postmaster: int) -> list[int]:
    """Our cluster's processes (not those of other PostgreSQL servers on the machine): the postmaster,
    whose CPU with children takes in backends that have exited, and its live children."""
    return [postmaster, *child_pids(postmaster)]


def call_body(index: int, n: int) -> bytes:
    body = {"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {
        "name": "query", "arguments": {"sql": f"SELECT * FROM sales.orders WHERE id = {1 + (index * 7919 + n) % 200000}"}}}  # fmt: skip
    return json.dumps(body).encode()


def json_rpc(payload: bytes) -> Any:
    """The JSON-RPC message of a response body: JSON, or the last `data:` event of a text/event-stream
    that answers a request (a result or an error) when the server answers with a stream (DBHub)."""
    if payload.lstrip()[:1] in (b"{", b"["):
        return json.loads(payload)
    for line in reversed(payload.splitlines()):
        if line.startswith(b"data:"):
            message = json.loads(line[5:])
            if isinstance(message, dict) and ("result" in message or "error" in message):
                return message
    raise ValueError("no JSON-RPC answer in the event stream")


def answered(status: int, payload: bytes) -> bool:
    """A 200 carrying a JSON-RPC result that is not a tool error."""
    try:
        return status == 200 and not json_rpc(payload)["result"].get("isError")
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
    bases: list[str],
    clients: int,
    seconds: float,
    kind: str = "raw",
    body_of: Callable[[int, int], bytes] = call_body,
    expect: bytes | None = None,
    slowest: dict[int, float] | None = None,
) -> tuple[list[float], int, float]:
    """Latencies and errors of `clients` concurrent callers for `seconds`, and the CPU seconds this
    process (the load generator) used meanwhile. Client `index` sends `body_of(index, n)` as its n-th
    request; with `expect`, an answer counts only if its body holds those bytes. `slowest` gets, for
    each second of the run, the longest call begun in it."""
    began = time.perf_counter()
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
                body = body_of(index, n)
                started = time.perf_counter()
                try:
                    async with asyncio.timeout(30):
                        status, payload = await connection.post(body)
                    ok = answered(status, payload) and (expect is None or expect in payload)
                except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                        TimeoutError, ValueError, IndexError):  # fmt: skip
                    ok = False
                latencies.append(time.perf_counter() - started)
                if slowest is not None:
                    second = int(started - began)
                    slowest[second] = max(slowest.get(second, 0.0), latencies[-1])
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
                body = body_of(index, n)
                started = time.perf_counter()
                try:
                    response = await http.post(f"{base}/mcp", content=body, headers=HEADERS)
                    ok = answered(response.status_code, response.content) and (
                        expect is None or expect in response.content
                    )
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
    p99 = percentile(ordered, 0.99) if ordered else 0.0
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


def layers(url: str, requests: int, postmaster: int) -> None:
    proc, base = start_replica(url)
    try:
        asyncio.run(drive([base], 5, 2.0))
        print(
            f"CPU per request, one request at a time ({requests} each; the differences are what each layer adds):"
        )
        for label, body_of in LAYERS.items():
            before, pg_before = (
                process_tree_cpu([proc.pid]),
                cpu_seconds(postgres_pids(postmaster), children=True),
            )
            started = time.perf_counter()
            failed = asyncio.run(sequential(base, body_of, requests))
            elapsed = time.perf_counter() - started
            server, pg = (
                process_tree_cpu([proc.pid]) - before,
                cpu_seconds(postgres_pids(postmaster), children=True) - pg_before,
            )
            print(
                f"    {label:36s} pg-mcp {server * 1000 / requests:.2f} ms, PostgreSQL {pg * 1000 / requests:.2f} ms, "
                f"{requests / elapsed:6.0f} requests/s, {failed} failed"
            )
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# --------------------------------------------------------------------------------- pg-mcp beside DBHub

PK_QUERY = "SELECT * FROM sales.orders WHERE id = 123456"
EXPECTED = b"5017.71"  # the row's total (not in the statement, which DBHub's answer repeats)
DBHUB_PACKAGE = "@bytebase/dbhub"
DBHUB_VERSION = "1.4.0"
DEFAULT_DBHUB_DIR = Path.home() / ".cache" / "pg-mcp-bench" / f"dbhub-{DBHUB_VERSION}"
#: Connections each server may open in the comparison: pg-mcp's default pool_max. pg-mcp is also told
#: that one caller (all the load generator's clients are one anonymous caller) may use the whole pool.
POOL = 5
STATEMENT_TIMEOUT = 30  # seconds, pg-mcp's default; DBHub's query_timeout is set to the same


@dataclass(frozen=True)
class Contender:
    name: str
    proc: subprocess.Popen[bytes]
    base: str
    tool: str

    def body(self, index: int, n: int) -> bytes:
        return json.dumps(
            {"jsonrpc": "2.0", "id": n, "method": "tools/call",
             "params": {"name": self.tool, "arguments": {"sql": PK_QUERY}}}
        ).encode()  # fmt: skip


@dataclass
class Load:
    """One timed run of the concurrent clients against one server."""

    latencies: list[float]
    seconds: float
    errors: int
    server_cpu: float  # seconds, the server's processes and their children
    pg_cpu: float  # seconds, our PostgreSQL's processes
    client_cpu: float  # seconds, the load generator
    steal: float

    @property
    def calls(self) -> int:
        return max(1, len(self.latencies))

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def at(self, fraction: float) -> float:
        return percentile(self.latencies, fraction) if self.latencies else 0.0

    def per_call(self, seconds: float) -> float:
        """Milliseconds per call."""
        return seconds * 1000 / self.calls


def install_dbhub(directory: Path) -> Path:
    """DBHub's entry point (its package.json `bin`), installed from npm into `directory` if missing:
    what `npx @bytebase/dbhub` runs."""
    entry = directory / "node_modules" / DBHUB_PACKAGE / "dist" / "index.js"
    if not entry.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("npm is not on PATH; it is needed to install DBHub (or pass --vs none)")
        print(f"installing {DBHUB_PACKAGE}@{DBHUB_VERSION} into {directory} ...", flush=True)
        directory.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--prefix", str(directory), "--no-audit", "--no-fund",
             f"{DBHUB_PACKAGE}@{DBHUB_VERSION}"],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    version = json.loads((entry.parent.parent / "package.json").read_text()).get("version")
    if version != DBHUB_VERSION:
        raise SystemExit(f"{directory} holds {DBHUB_PACKAGE} {version}, not {DBHUB_VERSION}")
    return entry


def dbhub_config(url: str) -> str:
    """dbhub.toml: the database as one source, as the same role, and `execute_sql` read-only (DBHub
    then runs each statement inside BEGIN READ ONLY ... COMMIT)."""
    dsn = urlunsplit(urlsplit(url)._replace(scheme="postgres", query="sslmode=disable"))
    return (
        f'[[sources]]\nid = "demo"\ndsn = {json.dumps(dsn)}\n'
        f"pool_max_connections = {POOL}\nquery_timeout = {STATEMENT_TIMEOUT}\n\n"
        '[[tools]]\nname = "execute_sql"\nsource = "demo"\nreadonly = true\n'
    )


def start_dbhub(entry: Path, url: str, directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    node = shutil.which("node")
    if node is None:
        raise SystemExit("node is not on PATH; it is needed to run DBHub (or pass --vs none)")
    config = directory / "dbhub.toml"
    config.write_text(dbhub_config(url))
    port = free_port()
    env = {k: v for k, v in clean_env().items() if k != "DSN" and not k.startswith("DBHUB_")}
    env["NODE_ENV"] = "production"
    log_path = directory / "dbhub.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [node, str(entry), "--transport", "http", "--host", "127.0.0.1", "--port", str(port),
             "--config", str(config)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=directory,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(proc, base, "DBHub")
    except SystemExit as exc:
        proc.kill()
        raise SystemExit(f"{exc}; its output:\n{log_path.read_text(errors='replace')[-3000:]}") from None
    return proc, base


def first_answer(contender: Contender) -> bytes:
    """One call, checked: the server answers the primary-key lookup with the row."""

    async def call() -> tuple[int, bytes]:
        connection = RawConnection(contender.base)
        try:
            return await connection.post(contender.body(0, 0))
        finally:
            connection.close()

    status, payload = asyncio.run(call())
    if not answered(status, payload) or EXPECTED not in payload:
        raise SystemExit(f"{contender.name} did not answer with the row: {status} {payload[:600]!r}")
    return payload


def run_load(contender: Contender, postmaster: int, clients: int, seconds: float, kind: str) -> Load:
    pids = [contender.proc.pid]
    before = (
        process_tree_cpu(pids),
        cpu_seconds(postgres_pids(postmaster), children=True),
        cpu_ticks(),
    )
    started = time.perf_counter()
    latencies, errors, client_cpu = asyncio.run(
        drive([contender.base], clients, seconds, kind, contender.body, EXPECTED)
    )
    elapsed = time.perf_counter() - started
    after = (
        process_tree_cpu(pids),
        cpu_seconds(postgres_pids(postmaster), children=True),
        cpu_ticks(),
    )
    return Load(
        latencies, elapsed, errors, after[0] - before[0], after[1] - before[1], client_cpu,
        steal_share(before[2], after[2]),
    )  # fmt: skip


def head_to_head(
    url: str, postmaster: int, entry: Path, clients: int, seconds: float, rounds: int, kind: str
) -> None:
    """pg-mcp and DBHub, one process each, both running throughout; the load goes to one at a time,
    in interleaved rounds (ABBA), the same statement as the same role on the same database."""
    node_version = subprocess.run(
        [shutil.which("node") or "node", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="bench-http-dbhub-") as tmp:
        proc, base = start_replica(url, "--pool-max", str(POOL), "--pool-share", str(POOL))
        contenders = [Contender("pg-mcp", proc, base, "query")]
        try:
            dbhub_proc, dbhub_base = start_dbhub(entry, url, Path(tmp))
            contenders.append(Contender("DBHub", dbhub_proc, dbhub_base, "execute_sql"))
            print(
                f"\npg-mcp beside DBHub {DBHUB_VERSION} (node {node_version}), each one process over HTTP on "
                f"loopback, same database, same role (mcp_reader), statement: {PK_QUERY}"
            )
            print(
                f"  pg-mcp: tool query, pool_max {POOL} (one caller may use all of it), statement_timeout "
                f"{STATEMENT_TIMEOUT} s; DBHub: tool execute_sql readonly = true, pool_max_connections {POOL}, "
                f"query_timeout {STATEMENT_TIMEOUT} s"
            )
            for contender in contenders:
                payload = first_answer(contender)
                print(f"  {contender.name} answers with {len(payload)} bytes of HTTP body")
                asyncio.run(drive([contender.base], 5, 2.0, kind, contender.body, EXPECTED))  # warm up
            print(
                f"  {rounds} interleaved rounds of {clients} keep-alive clients for {seconds:g} s per server "
                "(CPU per call from /proc: the server's processes with their children, our PostgreSQL's "
                "processes, the load generator)"
            )
            print(
                f"  {'round':<6}{'server':<8}{'calls/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}"
                f"{'CPU/call ms':>13}{'PG ms':>8}{'client ms':>11}{'steal':>7}"
            )
            loads: dict[str, list[Load]] = {c.name: [] for c in contenders}
            for number in range(rounds):
                for contender in contenders if number % 2 == 0 else contenders[::-1]:
                    load = run_load(contender, postmaster, clients, seconds, kind)
                    loads[contender.name].append(load)
                    print(
                        f"  {number + 1:<6}{contender.name:<8}{load.rate:9.1f}{load.at(0.5) * 1000:9.1f}"
                        f"{load.at(0.95) * 1000:9.1f}{load.at(0.99) * 1000:9.1f}{load.errors:8d}"
                        f"{load.per_call(load.server_cpu):13.2f}{load.per_call(load.pg_cpu):8.2f}"
                        f"{load.per_call(load.client_cpu):11.2f}{load.steal:7.0%}",
                        flush=True,
                    )
        finally:
            for contender in contenders:
                contender.proc.terminate()
                contender.proc.wait(timeout=30)

    def median(name: str, value: Callable[[Load], float]) -> float:
        return statistics.median(value(load) for load in loads[name])

    def ratio(value: Callable[[Load], float]) -> float:
        """The median of the per-round ratios pg-mcp/DBHub."""
        pairs = zip(loads["pg-mcp"], loads["DBHub"], strict=True)
        return statistics.median(value(a) / value(b) for a, b in pairs if value(b))

    columns: dict[str, Callable[[Load], float]] = {
        "calls/s": lambda r: r.rate,
        "p50 ms": lambda r: r.at(0.5) * 1000,
        "p95 ms": lambda r: r.at(0.95) * 1000,
        "p99 ms": lambda r: r.at(0.99) * 1000,
        "CPU/call ms": lambda r: r.per_call(r.server_cpu),
        "PG ms/call": lambda r: r.per_call(r.pg_cpu),
    }
    print(f"\nsummary, {clients} clients, one process each (medians over {rounds} interleaved rounds)")
    print(f"  {'':<14}" + "".join(f"{name:>13}" for name in columns) + f"{'errors':>8}")
    for name, runs in loads.items():
        print(
            f"  {name:<14}"
            + "".join(f"{median(name, value):13.2f}" for value in columns.values())
            + f"{sum(r.errors for r in runs):8d}"
        )
    print(f"  {'pg-mcp/DBHub':<14}" + "".join(f"{ratio(value):13.2f}" for value in columns.values()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds of load per run (30)")
    parser.add_argument("--replicas", default="1,2",
                        help="pg-mcp replica counts to run, comma-separated ('' for none)")  # fmt: skip
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw", help="load generator")
    parser.add_argument("--layers", type=int, default=1000, metavar="N",
                        help="requests per layer in the one-at-a-time breakdown (0: skip it)")  # fmt: skip
    parser.add_argument("--vs", choices=("dbhub", "none"), default="dbhub",
                        help="run DBHub beside pg-mcp (default) or not")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds beside DBHub (3)")
    parser.add_argument("--timeline", action="store_true",
                        help="print the slowest call begun in each second of the replica runs")  # fmt: skip
    parser.add_argument("--dbhub-dir", type=Path, default=DEFAULT_DBHUB_DIR,
                        help=f"where DBHub is installed from npm ({DEFAULT_DBHUB_DIR})")  # fmt: skip
    args = parser.parse_args()
    entry = install_dbhub(args.dbhub_dir) if args.vs == "dbhub" else None
    print(f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    with start_local_postgres() as cluster:
        url = asyncio.run(load_demo(cluster.url(), cluster.password))
        postmaster = postmaster_pid(cluster)
        if args.layers:
            layers(url, args.layers, postmaster)
        for replicas in (int(r) for r in args.replicas.split(",") if r.strip()):
            procs = [start_replica(url) for _ in range(replicas)]
            try:
                bases = [base for _, base in procs]
                pids = [p.pid for p, _ in procs]
                asyncio.run(drive(bases, 5, 2.0, args.client))  # warm up
                before = (
                    process_tree_cpu(pids),
                    cpu_seconds(postgres_pids(postmaster), children=True),
                    cpu_ticks(),
                )
                slowest: dict[int, float] = {}
                latencies, errors, cpu = asyncio.run(
                    drive(bases, args.clients, args.seconds, args.client, slowest=slowest)
                )
                after = (
                    process_tree_cpu(pids),
                    cpu_seconds(postgres_pids(postmaster), children=True),
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
                if args.timeline:
                    print("    slowest call begun in each second (ms): " + " ".join(
                        f"{second}:{slowest[second] * 1000:.0f}" for second in sorted(slowest)))  # fmt: skip
            finally:
                for proc, _ in procs:
                    proc.terminate()
                    proc.wait(timeout=30)
        if entry is not None:
            head_to_head(url, postmaster, entry, args.clients, args.seconds, args.rounds, args.client)


if __name__ == "__main__":
    main()
