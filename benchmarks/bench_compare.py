"""pg-mcp next to the Node reference server `@modelcontextprotocol/server-postgres@0.6.2`, side by side.

Starts one throwaway PostgreSQL with the demo data (needs the PostgreSQL server binaries), installs the
reference server from npm into a cache directory if it is not there yet (needs node and npm), and runs
both servers against the same database, as the same least-privilege role, with the same primary-key
lookup (`SELECT * FROM sales.orders WHERE id = 123456` through the `query` tool). It prints:

- tools/call latency over stdio with a bare JSON-RPC client (asyncio subprocess, newline-delimited
  JSON, no MCP SDK on the client side, so only the server's cost counts): after `initialize`,
  `notifications/initialized` and a few warm-up calls, --calls sequential calls, each timed from
  request to response. Interleaved rounds: each round runs a fresh process of each server once,
  the order alternating. Per round and as medians across rounds: p50, p95, max, max/p50 (the
  "stall" figure; the target is max <= 10x p50 over 1,000 calls), the server's CPU time per call,
  and the ratios pg-mcp/reference for p50 and p95;
- start-up: time from process start to the `initialize` answer, --startup-runs runs each, alternating;
- pg-mcp through the official MCP Python client (`mcp.Client`): p50/p95 per call;
- idle memory (VmRSS, VmHWM from /proc) of each server after `initialize` and a few calls;
- a summary table: p50, round trips, CPU per call and start-up of each, and the ratios.

Each server's stdout is read through asyncio's buffered StreamReader, the same way for both (a read
of up to 256 KiB per system call; the runs print the client's read calls per call, about 1).

With --rtt-ms N both servers connect to PostgreSQL through a delay proxy (asyncio, in a thread of
this process) that holds each chunk N/2 ms in each direction, in order, as a network with an RTT of
N ms would, and counts per timed call: round trips (a client burst that follows a server burst on
the same connection: what the client waited for) and the Query, Sync and Flush messages the client
sent (parsed from the frontend protocol: what it could have waited for), and the bytes each way.
--rtt-ms 0 counts without delaying; without the option there is no proxy.

The machine's other work moves absolute figures: compare the servers by the ratios of interleaved
runs, not by the milliseconds of one run against another's.

Not part of the test suite: it prints numbers and asserts nothing about time.

Usage: python benchmarks/bench_compare.py [--calls 1000] [--rounds 5] [--startup-runs 7]
                                          [--rtt-ms N] [--reference-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import json
import os
import selectors
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mcp import Client, StdioServerParameters
from measure import cpu_seconds, cpu_ticks, io_calls, percentile, status_kib, steal_share

from pg_mcp import __version__
from pg_mcp.local_pg import load_demo, start_local_postgres

PK_QUERY = "SELECT * FROM sales.orders WHERE id = 123456"
EXPECTED = "123456"  # the row's id, in either server's text answer
REFERENCE_PACKAGE = "@modelcontextprotocol/server-postgres"
REFERENCE_VERSION = "0.6.2"
DEFAULT_REFERENCE_DIR = Path.home() / ".cache" / "pg-mcp-bench" / f"server-postgres-{REFERENCE_VERSION}"
WARMUP_CALLS = 20
IDLE_CALLS = 20
IDLE_SECONDS = 1.0
MEMORY_RUNS = 3
STALL_TARGET = 10.0
STDOUT_LIMIT = 64 * 1024 * 1024  # the longest JSON-RPC line read from a server's stdout


# ---------------------------------------------------------------------------------------------- servers


@dataclass(frozen=True)
class ServerSpec:
    """How to start one server, and which protocol version to ask it for."""

    name: str
    argv: list[str]
    env: dict[str, str]
    protocol_version: str


def clean_env() -> dict[str, str]:
    """The caller's environment without pg-mcp settings, so only what we pass decides what runs."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG_MCP_") and k != "DATABASE_URL"}


def pg_mcp_spec(url: str) -> ServerSpec:
    script = Path(sys.executable).parent / "pg-mcp"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "pg_mcp"]
    return ServerSpec(
        name="pg-mcp",
        argv=[*command, "--log-level", "WARNING"],
        env={**clean_env(), "DATABASE_URL": url},
        protocol_version="2025-11-25",
    )


def reference_entry(directory: Path) -> Path:
    return directory / "node_modules" / REFERENCE_PACKAGE / "dist" / "index.js"


def install_reference(directory: Path) -> Path:
    """The reference server's entry point (its package.json `bin`), installed from npm if missing."""
    entry = reference_entry(directory)
    if not entry.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("npm is not on PATH; it is needed to install the reference server")
        print(f"installing {REFERENCE_PACKAGE}@{REFERENCE_VERSION} into {directory} ...", flush=True)
        directory.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--prefix", str(directory), "--no-audit", "--no-fund",
             f"{REFERENCE_PACKAGE}@{REFERENCE_VERSION}"],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    package = json.loads((entry.parent.parent / "package.json").read_text())
    if package.get("version") != REFERENCE_VERSION:
        raise SystemExit(
            f"{directory} holds {REFERENCE_PACKAGE} {package.get('version')}, not {REFERENCE_VERSION}"
        )
    return entry


def reference_spec(url: str, entry: Path) -> ServerSpec:
    node = shutil.which("node")
    if node is None:
        raise SystemExit("node is not on PATH; it is needed to run the reference server")
    return ServerSpec(
        name="reference", argv=[node, str(entry), url], env=clean_env(), protocol_version="2024-11-05"
    )


# ------------------------------------------------------------------------------------------ delay proxy

SSL_REQUEST, GSSENC_REQUEST, CANCEL_REQUEST = 80877103, 80877104, 80877102
QUERY, SYNC, FLUSH = ord("Q"), ord("S"), ord("H")


class FrontendCounter:
    """Counts the Query, Sync and Flush messages in what a PostgreSQL client sends (frontend protocol
    3.0): the messages that make the server send what it has (ReadyForQuery after Query and Sync), so
    those a client can wait on. Several in one burst are pipelined and cost one round trip, so this
    is an upper bound; the proxy's round-trip count is what the client actually waited. Gives up
    (`broken`) on a stream it cannot read: an encrypted one, say."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.typed = False  # past the start-up packet: every message opens with a type byte
        self.broken = False
        self.count = 0

    def feed(self, data: bytes) -> None:
        if self.broken:
            return
        buffer = self.buffer
        buffer += data
        offset = 0
        while True:
            head = 1 if self.typed else 0
            if len(buffer) - offset < head + 4:
                break
            length = int.from_bytes(buffer[offset + head : offset + head + 4], "big")
            if not 4 <= length <= 1 << 30:
                self.broken = True
                buffer.clear()
                return
            end = offset + head + length
            if len(buffer) < end:
                break
            if self.typed:
                self.count += buffer[offset] in (QUERY, SYNC, FLUSH)
            elif length >= 8:  # SSLRequest and the like come before the start-up packet, untyped too
                code = int.from_bytes(buffer[offset + 4 : offset + 8], "big")
                self.typed = code not in (SSL_REQUEST, GSSENC_REQUEST, CANCEL_REQUEST)
            offset = end
        del buffer[:offset]


@dataclass
class ProxyCounts:
    """What went through the proxy so far, over all its connections."""

    round_trips: int = 0  # client bursts that follow a server burst on the same connection
    waits: int = 0  # Query, Sync and Flush messages the clients sent
    up_bytes: int = 0
    down_bytes: int = 0
    connections: int = 0
    unreadable: int = 0  # connections whose messages could not be counted (encrypted)

    def minus(self, other: ProxyCounts) -> ProxyCounts:
        return ProxyCounts(
            *(getattr(self, f.name) - getattr(other, f.name) for f in dataclasses.fields(self))
        )


class _Link:
    """One client connection through the proxy."""

    def __init__(self) -> None:
        self.last_up: bool | None = None  # the direction of the last chunk read
        self.frontend = FrontendCounter()


class DelayProxy:
    """A TCP proxy in front of PostgreSQL that holds every chunk `one_way` seconds in each direction,
    so a round trip costs 2 x `one_way` more, as across a network; chunks are delivered in the order
    read (the delay is the same for each). It runs its own asyncio loop in a thread, on a `select()`
    selector: epoll's timeouts are whole milliseconds, which would round a 0.5 ms hold up to 1 ms.

    Per connection it counts round trips as the client's bursts that follow a burst of the server
    (reads, in the order the proxy sees them: an answer cannot come before the request it answers),
    and separately the Query, Sync and Flush messages the client sends (`FrontendCounter`)."""

    def __init__(self, target: tuple[str, int], one_way: float) -> None:
        self.target = target
        self.one_way = one_way
        self.port = 0
        self.lateness: list[float] = []  # seconds each delayed chunk was delivered after its time
        self._counts = ProxyCounts()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def counts(self) -> ProxyCounts:
        with self._lock:
            return dataclasses.replace(self._counts)

    def __enter__(self) -> DelayProxy:
        ready = threading.Event()
        failed: list[BaseException] = []

        def run() -> None:
            loop = asyncio.SelectorEventLoop(selectors.SelectSelector())
            asyncio.set_event_loop(loop)
            try:
                server = loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
                self.port = server.sockets[0].getsockname()[1]
            except BaseException as exc:
                failed.append(exc)
                loop.close()
                ready.set()
                return
            self._loop = loop
            ready.set()
            try:
                loop.run_forever()
            finally:
                server.close()
                tasks = asyncio.all_tasks(loop)
                for task in tasks:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
                loop.close()

        self._thread = threading.Thread(target=run, name="delay-proxy", daemon=True)
        self._thread.start()
        ready.wait()
        if failed:
            raise failed[0]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def url(self, url: str) -> str:
        """`url` with its host and port replaced by the proxy's."""
        parts = urlsplit(url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = (credentials + "@" if credentials else "") + f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        link = _Link()
        with self._lock:
            self._counts.connections += 1
        try:
            await asyncio.gather(
                self._pipe(client_reader, server_writer, link, up=True),
                self._pipe(server_reader, client_writer, link, up=False),
            )
        except asyncio.CancelledError:
            pass  # the proxy is stopping; a cancelled connection task would be logged as an error
        finally:
            client_writer.close()
            server_writer.close()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link, *, up: bool
    ) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        sender = asyncio.create_task(self._deliver(queue, writer))
        try:
            while data := await reader.read(1 << 16):
                self._record(link, data, up=up)
                queue.put_nowait((loop.time() + self.one_way, data))
        except OSError:
            pass
        finally:
            queue.put_nowait((loop.time() + self.one_way, b""))  # the end of the stream, delayed too
            await sender

    async def _deliver(self, queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                at, data = await queue.get()
                if (wait := at - loop.time()) > 0:
                    await asyncio.sleep(wait)
                if not data:
                    break
                if self.one_way:
                    self.lateness.append(loop.time() - at)
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    def _record(self, link: _Link, data: bytes, *, up: bool) -> None:
        with self._lock:
            counts = self._counts
            frontend = link.frontend
            was_broken = frontend.broken
            if up:
                counts.up_bytes += len(data)
                counts.round_trips += link.last_up is False
                before = frontend.count
                frontend.feed(data)
                counts.waits += frontend.count - before
            else:
                counts.down_bytes += len(data)
                if not frontend.typed and data[:1] in (b"S", b"G"):  # the server agreed to encrypt
                    frontend.broken = True
            counts.unreadable += frontend.broken and not was_broken
            link.last_up = up


# ----------------------------------------------------------------------------------- bare JSON-RPC client


class ServerFailed(Exception):
    """The server answered with an error, or stopped answering."""


class StdioSession:
    """One server process driven with newline-delimited JSON-RPC over its stdin/stdout."""

    def __init__(self, spec: ServerSpec, proc: asyncio.subprocess.Process, stderr_path: Path) -> None:
        self.spec = spec
        self.proc = proc
        self.stderr_path = stderr_path
        assert proc.stdin is not None and proc.stdout is not None
        self.stdin = proc.stdin
        self.stdout = proc.stdout
        self.next_id = 0
        self.initialize_result: dict[str, Any] = {}

    @classmethod
    async def start(cls, spec: ServerSpec, stderr_dir: Path) -> tuple[StdioSession, float]:
        """Start the server and initialize it; returns the session and the seconds from process start
        to the `initialize` answer."""
        fd, name = tempfile.mkstemp(prefix=f"{spec.name}-", suffix=".log", dir=stderr_dir)
        os.close(fd)
        stderr_path = Path(name)
        with stderr_path.open("wb") as stderr:
            started = time.perf_counter()
            # Both servers' stdout is read the same buffered way: asyncio's pipe transport reads up to
            # 256 KiB per system call into a StreamReader, and readline() cuts lines out of that
            # buffer (`limit` is the longest line accepted). Reading byte by byte instead costs a
            # system call per byte of answer, which would count as the server's time; the runs
            # print the client's read calls per call to show it stays at about one.
            proc = await asyncio.create_subprocess_exec(
                *spec.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=stderr, env=spec.env, limit=STDOUT_LIMIT,
            )  # fmt: skip
        session = cls(spec, proc, stderr_path)
        try:
            session.initialize_result = await session.request(
                "initialize",
                {
                    "protocolVersion": spec.protocol_version,
                    "capabilities": {},
                    "clientInfo": {"name": "bench-compare", "version": "0"},
                },
            )
            elapsed = time.perf_counter() - started
            await session.notify("notifications/initialized")
        except BaseException:
            await session.close()
            raise
        return session, elapsed

    async def notify(self, method: str) -> None:
        self.stdin.write(json.dumps({"jsonrpc": "2.0", "method": method}).encode() + b"\n")
        await self.stdin.drain()

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.next_id += 1
        ident = self.next_id
        message = {"jsonrpc": "2.0", "id": ident, "method": method, "params": params}
        self.stdin.write(json.dumps(message).encode() + b"\n")
        await self.stdin.drain()
        while True:
            line = await self.stdout.readline()
            if not line:
                raise ServerFailed(f"{self.spec.name} closed stdout; stderr: {self.stderr_tail()}")
            reply = json.loads(line)
            if reply.get("id") != ident:
                continue  # a notification or a server-to-client request: not ours
            if "error" in reply:
                raise ServerFailed(f"{self.spec.name} answered {method} with {reply['error']}")
            result: dict[str, Any] = reply["result"]
            return result

    async def call_query(self) -> dict[str, Any]:
        return await self.request("tools/call", {"name": "query", "arguments": {"sql": PK_QUERY}})

    def stderr_tail(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-1500:].strip() or "(empty)"
        except OSError:
            return "(unreadable)"

    async def close(self) -> None:
        """Close stdin and wait for the exit; terminate (then kill) this process if it lingers."""
        if not self.stdin.is_closing():
            self.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 3)
        except TimeoutError:
            # The reference server keeps running while its pool holds idle connections.
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self.stderr_path.unlink(missing_ok=True)


def check_answer(name: str, result: dict[str, Any]) -> str:
    """The answer's text; ServerFailed unless it is a success holding the row."""
    text = "".join(part.get("text", "") for part in result.get("content", []) if part.get("type") == "text")
    if result.get("isError") or EXPECTED not in text:
        raise ServerFailed(f"{name} did not answer with the row: {json.dumps(result)[:500]}")
    return text


# ------------------------------------------------------------------------------------------- statistics


@dataclass
class RunResult:
    samples: list[float]
    first_call: float
    cpu_per_call: float
    rss_after_kib: int
    steal: float
    client_reads: float  # read system calls of this client per call (the server's stdout)
    wire: ProxyCounts | None = None  # through the delay proxy during the timed calls

    def per_call(self, name: str) -> float:
        """A count of the delay proxy's per timed call (0 without the proxy)."""
        return int(getattr(self.wire, name)) / len(self.samples) if self.wire else 0.0

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        return percentile(self.samples, 0.95)

    @property
    def max(self) -> float:
        return max(self.samples)

    @property
    def stall(self) -> float:
        return self.max / self.p50


@dataclass
class ServerInfo:
    protocol: str = "?"
    server_name: str = "?"
    answer_bytes: int = 0
    answer_text_bytes: int = 0
    structured: bool = False
    runs: list[RunResult] = field(default_factory=list)
    startups: list[float] = field(default_factory=list)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.3f}"


# ---------------------------------------------------------------------------------------------- phases


async def timed_run(
    spec: ServerSpec, calls: int, info: ServerInfo, stderr_dir: Path, proxy: DelayProxy | None
) -> RunResult:
    """A fresh process: initialize, warm up, then `calls` sequential calls timed one by one."""
    session, _ = await StdioSession.start(spec, stderr_dir)
    try:
        first_started = time.perf_counter()
        first = await session.call_query()
        first_call = time.perf_counter() - first_started
        text = check_answer(spec.name, first)
        info.protocol = str(session.initialize_result.get("protocolVersion", "?"))
        info.server_name = "{name} {version}".format(**session.initialize_result.get("serverInfo", {}))
        info.answer_bytes = len(json.dumps(first, ensure_ascii=False).encode())
        info.answer_text_bytes = len(text.encode())
        info.structured = "structuredContent" in first
        for _ in range(WARMUP_CALLS - 1):
            check_answer(spec.name, await session.call_query())
        samples: list[float] = []
        gc.collect()
        gc.disable()  # the client's own collections are not the server's stalls
        cpu_before = cpu_seconds([session.proc.pid])
        ticks_before = cpu_ticks()
        wire_before = proxy.counts() if proxy else None
        reads_before = io_calls()[0]
        try:
            for _ in range(calls):
                started = time.perf_counter()
                result = await session.call_query()
                samples.append(time.perf_counter() - started)
                if result.get("isError"):
                    raise ServerFailed(f"{spec.name} answered with an error: {json.dumps(result)[:500]}")
        finally:
            gc.enable()
        client_reads = (io_calls()[0] - reads_before) / calls
        wire = proxy.counts().minus(wire_before) if proxy and wire_before else None
        cpu = cpu_seconds([session.proc.pid]) - cpu_before
        steal = steal_share(ticks_before, cpu_ticks())
        rss = status_kib(session.proc.pid, "VmRSS")
    finally:
        await session.close()
    return RunResult(samples, first_call, cpu / calls, rss, steal, client_reads, wire)


async def startup_time(spec: ServerSpec, stderr_dir: Path) -> float:
    session, elapsed = await StdioSession.start(spec, stderr_dir)
    await session.close()
    return elapsed


async def idle_memory(spec: ServerSpec, stderr_dir: Path) -> tuple[int, int]:
    """(VmRSS, VmHWM) in KiB after initialize, a few calls and a second of idleness."""
    session, _ = await StdioSession.start(spec, stderr_dir)
    try:
        for _ in range(IDLE_CALLS):
            check_answer(spec.name, await session.call_query())
        await asyncio.sleep(IDLE_SECONDS)
        pid = session.proc.pid
        return status_kib(pid, "VmRSS"), status_kib(pid, "VmHWM")
    finally:
        await session.close()


async def official_client(spec: ServerSpec, calls: int) -> list[float]:
    """tools/call latency through the official MCP Python client (client-side SDK cost included)."""
    server = StdioServerParameters(command=spec.argv[0], args=spec.argv[1:], env=spec.env)
    async with Client(server) as client:
        for _ in range(WARMUP_CALLS):
            result = await client.call_tool("query", {"sql": PK_QUERY})
            if result.is_error:
                raise ServerFailed(f"pg-mcp answered with an error through the MCP client: {result}")
        samples: list[float] = []
        for _ in range(calls):
            started = time.perf_counter()
            await client.call_tool("query", {"sql": PK_QUERY})
            samples.append(time.perf_counter() - started)
    return samples


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


# ------------------------------------------------------------------------------------------------ main


def median_of(runs: list[RunResult], value: Callable[[RunResult], float]) -> float:
    return statistics.median(value(run) for run in runs)


async def main(calls: int, rounds: int, startup_runs: int, reference_dir: Path, rtt_ms: float | None) -> None:
    entry = install_reference(reference_dir)
    node_version = subprocess.run(
        [shutil.which("node") or "node", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    with (
        start_local_postgres() as cluster,
        tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        stderr_dir = Path(tmp)
        begun = time.perf_counter()
        url = await load_demo(cluster.url(), cluster.password)
        print(
            f"demo database loaded in {time.perf_counter() - begun:.1f} s; both servers connect as mcp_reader"
        )
        proxy: DelayProxy | None = None
        if rtt_ms is None:
            print("network: none; both servers connect straight to PostgreSQL on loopback (RTT 0)")
        else:
            parts = urlsplit(url)
            proxy = stack.enter_context(
                DelayProxy((parts.hostname or "127.0.0.1", parts.port or 5432), rtt_ms / 2000)
            )
            url = proxy.url(url)
            print(
                f"network: both servers connect through a delay proxy holding each chunk {rtt_ms / 2:g} ms "
                f"each way ({rtt_ms:g} ms a round trip); RT = a client burst after a server burst on a "
                "connection, Q+S+H = Query, Sync and Flush messages sent"
            )
        specs = [pg_mcp_spec(url), reference_spec(url, entry)]
        infos = {spec.name: ServerInfo() for spec in specs}
        print(f"statement: {PK_QUERY}")
        print(f"machine: {os.cpu_count()} CPUs, load average {loadavg()} at start")
        ticks_at_start = cpu_ticks()

        # Latency rounds, order alternating.
        print(
            f"\ntools/call over stdio, bare JSON-RPC client: per run a fresh process, {WARMUP_CALLS} warm-up "
            f"calls, then {calls} sequential calls timed (ms); rd = the client's read calls per call"
        )
        wire_head = f"{'RT':>6}{'Q+S+H':>6}" if proxy else ""
        print(
            f"  {'round':<6}{'server':<11}{'p50':>9}{'p95':>9}{'max':>9}{'max/p50':>9}"
            f"{'1st call':>10}{'CPU/call':>10}{'rd':>6}{wire_head}{'steal':>7}   load avg"
        )
        for number in range(rounds):
            order = specs if number % 2 == 0 else specs[::-1]
            for spec in order:
                run = await timed_run(spec, calls, infos[spec.name], stderr_dir, proxy)
                infos[spec.name].runs.append(run)
                wire = f"{run.per_call('round_trips'):6.2f}{run.per_call('waits'):6.2f}" if proxy else ""
                print(
                    f"  {number + 1:<6}{spec.name:<11}{ms(run.p50)} {ms(run.p95)} {ms(run.max)}"
                    f"{run.stall:8.1f}x {ms(run.first_call)}  {ms(run.cpu_per_call)}{run.client_reads:6.2f}"
                    f"{wire}{run.steal:6.0%}   {loadavg()}",
                    flush=True,
                )

        mine, ref = infos["pg-mcp"], infos["reference"]
        print(f"\nmedians over {rounds} rounds (ms)")
        for name, info in infos.items():
            runs = info.runs
            stalls = [r.stall for r in runs]
            met = sum(s <= STALL_TARGET for s in stalls)
            print(
                f"  {name:<10} p50 {ms(median_of(runs, lambda r: r.p50))}  p95 {ms(median_of(runs, lambda r: r.p95))}"
                f"  max {ms(median_of(runs, lambda r: r.max))}  max/p50 {statistics.median(stalls):5.1f}x"
                f" (worst {max(stalls):.1f}x; <= {STALL_TARGET:.0f}x in {met}/{len(runs)} rounds)"
                f"  CPU/call {ms(median_of(runs, lambda r: r.cpu_per_call))}"
            )
        if proxy and rtt_ms is not None:
            print("  on the wire, per call (medians over rounds)")
            for name, info in infos.items():
                runs = info.runs
                trips = median_of(runs, lambda r: r.per_call("round_trips"))
                p50 = median_of(runs, lambda r: r.p50)
                print(
                    f"  {name:<10} round trips {trips:5.2f}  Query+Sync+Flush {median_of(runs, lambda r: r.per_call('waits')):5.2f}"
                    f"  bytes to PostgreSQL {median_of(runs, lambda r: r.per_call('up_bytes')):6.0f}"
                    f", back {median_of(runs, lambda r: r.per_call('down_bytes')):6.0f}"
                    f"  p50 minus round trips x RTT {ms(p50 - trips * rtt_ms / 1000)}"
                )
            late = sorted(proxy.lateness)
            if late:
                print(
                    f"  proxy: {len(late)} chunks held, delivered {statistics.median(late) * 1e6:.0f} µs (median), "
                    f"{percentile(late, 0.99) * 1e6:.0f} µs (p99) after their time; "
                    f"{proxy.counts().unreadable} connections unreadable"
                )
        p50_ratios = [a.p50 / b.p50 for a, b in zip(mine.runs, ref.runs, strict=True)]
        p95_ratios = [a.p95 / b.p95 for a, b in zip(mine.runs, ref.runs, strict=True)]
        cpu_ratios = [
            a.cpu_per_call / b.cpu_per_call
            for a, b in zip(mine.runs, ref.runs, strict=True)
            if b.cpu_per_call
        ]
        print(
            f"  pg-mcp/reference (median of per-round ratios): p50 {statistics.median(p50_ratios):.2f}"
            f" (rounds {min(p50_ratios):.2f}-{max(p50_ratios):.2f}), p95 {statistics.median(p95_ratios):.2f}"
            f" (rounds {min(p95_ratios):.2f}-{max(p95_ratios):.2f})"
            + (f", CPU/call {statistics.median(cpu_ratios):.2f}" if cpu_ratios else "")
        )
        spreads = ", ".join(
            f"{name} {max(r.p50 for r in info.runs) / min(r.p50 for r in info.runs) - 1:.0%}"
            for name, info in infos.items()
        )
        steals = [run.steal for info in infos.values() for run in info.runs]
        print(
            f"  noise: spread of the per-round p50 (max/min - 1): {spreads}; "
            f"CPU steal per run {min(steals):.0%}-{max(steals):.0%}"
        )

        # Start-up, alternating.
        for number in range(startup_runs):
            order = specs if number % 2 == 0 else specs[::-1]
            for spec in order:
                infos[spec.name].startups.append(await startup_time(spec, stderr_dir))
        print(f"\nprocess start to initialize answer, {startup_runs} runs each, alternating (ms)")
        for name, info in infos.items():
            print(
                f"  {name:<10} median {ms(statistics.median(info.startups))}"
                f"  (min {ms(min(info.startups))}, max {ms(max(info.startups))})"
            )
        print(f"  pg-mcp/reference: {statistics.median(mine.startups) / statistics.median(ref.startups):.2f}")

        # The official MCP client, pg-mcp only.
        sdk = await official_client(specs[0], calls)
        bare_p50 = median_of(mine.runs, lambda r: r.p50)
        print(f"\npg-mcp through the official MCP Python client (mcp.Client), {calls} calls (ms)")
        print(
            f"  p50 {ms(statistics.median(sdk))}  p95 {ms(percentile(sdk, 0.95))}  max {ms(max(sdk))}"
            f"  (p50 minus the bare client's median p50: {(statistics.median(sdk) - bare_p50) * 1000:+.3f};"
            " measured later, not interleaved)"
        )

        # Idle memory.
        print(
            f"\nmemory after initialize + {IDLE_CALLS} calls + {IDLE_SECONDS:.0f} s idle, median of {MEMORY_RUNS} "
            f"processes (MiB); and VmRSS at the end of the timed runs"
        )
        for spec in specs:
            measured = [await idle_memory(spec, stderr_dir) for _ in range(MEMORY_RUNS)]
            rss = statistics.median(m[0] for m in measured) / 1024
            hwm = statistics.median(m[1] for m in measured) / 1024
            after = statistics.median(r.rss_after_kib for r in infos[spec.name].runs) / 1024
            print(f"  {spec.name:<10} VmRSS {rss:6.1f}  VmHWM {hwm:6.1f}  after {calls} calls {after:6.1f}")

        print("\nservers")
        for spec in specs:
            info = infos[spec.name]
            print(
                f"  {spec.name:<10} {info.server_name}, protocol {info.protocol}; answer {info.answer_bytes} bytes "
                f"of JSON-RPC result ({info.answer_text_bytes} bytes of text"
                f"{', plus structuredContent' if info.structured else ''})"
            )
        print(
            f"  pg-mcp     {' '.join(specs[0].argv)} (pg-mcp {__version__}, Python {sys.version.split()[0]})"
        )
        print(f"  reference  node {node_version} {entry}")
        print(
            f"load average at end: {loadavg()}; CPU steal over the whole run "
            f"{steal_share(ticks_at_start, cpu_ticks()):.0%} (time the hypervisor gave to other guests)"
        )

        # One table to copy: medians over the rounds, ratios as medians of the per-round ratios.
        rtt = (
            "0 (no proxy)"
            if rtt_ms is None
            else f"{rtt_ms:g}" + (" (proxy counting only)" if not rtt_ms else "")
        )
        print(f"\nsummary, RTT {rtt} ms (medians over {rounds} interleaved rounds)")
        print(f"  {'':<18}{'p50 ms':>9}{'RT/call':>9}{'CPU/call ms':>13}{'start-up ms':>13}")
        for name, info in infos.items():
            trips_text = (
                f"{median_of(info.runs, lambda r: r.per_call('round_trips')):9.2f}" if proxy else f"{'-':>9}"
            )
            print(
                f"  {name:<18}{median_of(info.runs, lambda r: r.p50) * 1000:9.3f}{trips_text}"
                f"{median_of(info.runs, lambda r: r.cpu_per_call) * 1000:13.3f}"
                f"{statistics.median(info.startups) * 1000:13.1f}"
            )
        trip_ratio = (
            f"{median_of(mine.runs, lambda r: r.per_call('round_trips')) / median_of(ref.runs, lambda r: r.per_call('round_trips')):9.2f}"
            if proxy
            else f"{'-':>9}"
        )
        print(
            f"  {'pg-mcp/reference':<18}{statistics.median(p50_ratios):9.2f}{trip_ratio}"
            f"{statistics.median(cpu_ratios) if cpu_ratios else float('nan'):13.2f}"
            f"{statistics.median(mine.startups) / statistics.median(ref.startups):13.2f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=1000, help="timed calls per run (1000)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (5)")
    parser.add_argument("--startup-runs", type=int, default=7, help="start-up measurements per server (7)")
    parser.add_argument(
        "--reference-dir", type=Path, default=DEFAULT_REFERENCE_DIR,
        help=f"where the reference server is installed from npm ({DEFAULT_REFERENCE_DIR})",
    )  # fmt: skip
    parser.add_argument(
        "--rtt-ms", type=float, default=None, metavar="N",
        help="connect both servers through a delay proxy adding N ms per round trip (N/2 each way) and "
        "count round trips per call; 0 counts without delaying (default: no proxy)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.rtt_ms is not None and args.rtt_ms < 0:
        parser.error("--rtt-ms must be 0 or more")
    asyncio.run(main(args.calls, args.rounds, args.startup_runs, args.reference_dir, args.rtt_ms))
