"""Server-side latency of `resources/list` (first page) and `list_tables` on a 5,000-table catalog.

Starts a throwaway PostgreSQL (needs the PostgreSQL server binaries) with 5,000 tables in five
schemas (`wide` holds 1,000 of them; a few columns each, primary keys, some foreign keys and
comments, some views), readable by a least-privilege role, then measures in process, once with no
operator limits and once with some (a table allowlist and a hidden column, which also brings in the
lineage expansion):

- through the official MCP client on the in-memory transport (the same server object the tests use);
- the server's own handlers called directly (`resources/list` handler, `MCPServer.call_tool`), without
  the client, the transport or JSON-RPC;
- our own functions only (`resource_page`, `explore.list_tables`), without any SDK type;

cold (the first call of a freshly built server, racing its start-up work; the first call once that
is done; the first call of our functions once the pool is open) and warm (p50/p95/max over --calls
repeated calls), the catalog queries per call and their share of it, the peak Python memory of one
call, and where a warm call's time goes (cProfile own time grouped into: waiting for PostgreSQL,
socket writes, asyncpg, our building, our rendering, SDK and pydantic, event loop; a built-in's
time goes to its caller's group).

Usage: python benchmarks/bench_catalog.py [--calls 50] [--profile-lines 12]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
from mcp import Client
from mcp_types import PaginatedRequestParams
from measure import timed

from pg_mcp import explore
from pg_mcp.config import ServerConfig, load_config
from pg_mcp.database.executor import Database
from pg_mcp.local_pg import start_local_postgres
from pg_mcp.server import build_server
from pg_mcp.server.app import PgMcpServer, open_contexts
from pg_mcp.server.resources import resource_page

DATABASE = "catalog5k"
READER = "bench_reader"
WIDE = "wide"
SCHEMAS = {WIDE: 1000, "s1": 1000, "s2": 1000, "s3": 1000, "s4": 1000}
LIMITED = {  # what an operator might set: four schemas of five, and one column hidden
    "PG_MCP_TABLES": "wide.*,s1.*,s2.*,s3.*",
    "PG_MCP_HIDDEN_COLUMNS": "wide.t_0002.note",
}
TARGET_MS = 50.0
STARTUP_SECONDS = 3.0  # enough for the warm-up (pool, role report, parsers) to finish


async def create_catalog(admin_url: str, password: str) -> str:
    """The benchmark database and its reader; returns the reader's URL."""
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f"CREATE DATABASE {DATABASE}")
        await admin.execute(f"CREATE ROLE {READER} LOGIN PASSWORD '{password}'")
    finally:
        await admin.close()
    parts = urlsplit(admin_url)
    conn = await asyncpg.connect(urlunsplit(parts._replace(path=f"/{DATABASE}")))
    try:
        for schema, count in SCHEMAS.items():
            await conn.execute(f"CREATE SCHEMA {schema}; COMMENT ON SCHEMA {schema} IS 'Schema {schema}'")
            for start in range(1, count + 1, 250):  # one transaction would run out of lock slots
                await conn.execute(
                    f"""DO $$ BEGIN FOR t IN {start}..{min(start + 249, count)} LOOP
                      EXECUTE format('CREATE TABLE {schema}.t_%s (id bigint PRIMARY KEY, ref_id bigint%s,
                          name text, amount numeric(12,2), created_at timestamptz, note text)',
                          lpad(t::text, 4, '0'),
                          CASE WHEN t % 3 = 0 THEN format(' REFERENCES {schema}.t_%s(id)',
                                                          lpad((t - 1)::text, 4, '0')) ELSE '' END);
                      IF t % 2 = 0 THEN
                          EXECUTE format('COMMENT ON TABLE {schema}.t_%s IS %L', lpad(t::text, 4, '0'),
                                         'Business entity ' || t || ' of {schema}');
                      END IF;
                      IF t % 5 = 0 THEN
                          EXECUTE format('COMMENT ON COLUMN {schema}.t_%s.name IS %L', lpad(t::text, 4, '0'),
                                         'Display name');
                      END IF;
                    END LOOP; END $$"""
                )
            await conn.execute(
                f"""DO $$ BEGIN FOR t IN 1..10 LOOP
                      EXECUTE format('CREATE VIEW {schema}.v_%s AS SELECT id, name FROM {schema}.t_%s',
                                     lpad(t::text, 4, '0'), lpad(t::text, 4, '0'));
                    END LOOP; END $$"""
            )
            await conn.execute(
                f"GRANT USAGE ON SCHEMA {schema} TO {READER}; "
                f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {READER}"
            )
        await conn.execute(
            f"INSERT INTO {WIDE}.t_0001 SELECT g, NULL, 'n' || g FROM generate_series(1, 1000) g"
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return urlunsplit(
        parts._replace(
            netloc=f"{READER}:{quote(password, safe='')}@{parts.hostname}:{parts.port}", path=f"/{DATABASE}"
        )
    )


def config_for(url: str, env: dict[str, str]) -> ServerConfig:
    """The configuration `pg-mcp URL` would read with exactly `env` as its pg-mcp environment."""
    saved = dict(os.environ)
    try:
        for key in [k for k in os.environ if k.startswith("PG_MCP_") or k == "DATABASE_URL"]:
            del os.environ[key]
        os.environ.update(env)
        return load_config({"database_url": url, "log_level": "ERROR"}, None, dotenv=False)
    finally:
        os.environ.clear()
        os.environ.update(saved)


class RoundTrips:
    """Counts and times the catalog queries (`Database.fetch_fixed`) made while it is on."""

    def __init__(self) -> None:
        self.calls = 0
        self.seconds = 0.0

    @contextmanager
    def counting(self) -> Iterator[RoundTrips]:
        original = Database.fetch_fixed

        async def fetch_fixed(db: Database, sql: str, *args: Any) -> list[asyncpg.Record]:
            started = time.perf_counter()
            try:
                return await original(db, sql, *args)
            finally:
                self.calls += 1
                self.seconds += time.perf_counter() - started

        Database.fetch_fixed = fetch_fixed  # type: ignore[method-assign,assignment]
        try:
            yield self
        finally:
            Database.fetch_fixed = original  # type: ignore[method-assign]


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[max(0, round(len(ordered) * 0.95) - 1)]
    verdict = "ok" if statistics.median(ordered) * 1000 < TARGET_MS else f"over {TARGET_MS:g} ms"
    return (
        f"p50 {statistics.median(ordered) * 1000:7.2f}  p95 {p95 * 1000:7.2f}  "
        f"max {ordered[-1] * 1000:7.2f} ms  ({verdict})"
    )


async def split(call: Callable[[], Awaitable[object]], n: int) -> tuple[float, float, int, float]:
    """Medians per call of the seconds in catalog queries (round trips included) and of the rest, the
    number of queries, and the peak traced Python memory of one call."""
    in_sql, rest, trips = [], [], RoundTrips()
    with trips.counting():
        for _ in range(n):
            before, started = trips.seconds, time.perf_counter()
            await call()
            in_sql.append(trips.seconds - before)
            rest.append(time.perf_counter() - started - in_sql[-1])
    tracemalloc.start()
    await call()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return statistics.median(in_sql), statistics.median(rest), trips.calls // n, peak


CATEGORIES = (  # (label, fragments of "path:function"); the first match wins
    ("waiting for PostgreSQL (epoll)", ("select.epoll", "selectors.py")),
    ("socket writes", ("_socket.socket",)),
    ("asyncpg", ("asyncpg",)),
    ("pg_mcp rendering", ("pg_mcp/render",)),
    ("pg_mcp building", ("pg_mcp/",)),
    ("SDK + pydantic + JSON", ("/mcp/", "mcp_types", "pydantic", "json", "anyio")),
    ("event loop", ("asyncio", "contextvars")),
)
Key = tuple[str, int, str]


def category(path: str, function: str) -> str:
    where = f"{path}:{function}"
    return next((name for name, parts in CATEGORIES if any(p in where for p in parts)), "other")


def grouped(
    raw: dict[Key, tuple[int, int, float, float, dict[Key, tuple[int, int, float, float]]]], n: int
) -> dict[str, float]:
    """Own time per category; a built-in's (`~`) goes to the category of whoever called it."""
    groups: dict[str, float] = {}
    for (path, _, function), (_, _, own, _, callers) in raw.items():
        mine = category(path, function)
        if path != "~" or mine != "other" or not callers:
            groups[mine] = groups.get(mine, 0.0) + own / n
            continue
        for (caller_path, _, caller_function), (_, _, caller_own, _) in callers.items():
            theirs = category(caller_path, caller_function)
            groups[theirs] = groups.get(theirs, 0.0) + caller_own / n
    return groups


async def profile(label: str, call: Callable[[], Awaitable[object]], n: int, lines: int) -> None:
    """cProfile own time of `n` warm calls, grouped by where it is spent, then the top functions."""
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for _ in range(n):
        await call()
    profiler.disable()
    wall = (time.perf_counter() - started) / n
    stats = pstats.Stats(profiler)
    raw = stats.stats  # type: ignore[attr-defined]
    groups = grouped(raw, n)
    total = sum(groups.values())
    print(f"  {label}: {wall * 1000:.2f} ms per call under the profiler; own time by category:")
    for group, seconds in sorted(groups.items(), key=lambda item: -item[1]):
        print(f"    {group:32s} {seconds * 1000:7.2f} ms  {seconds / total:4.0%}")
    if lines:
        print(f"    top {lines} functions by own time (per call):")
        top = sorted(raw.items(), key=lambda item: -item[1][2])[:lines]
        for (path, line, function), (_, calls, own, cumulative, _) in top:
            short = "/".join(path.split("/")[-2:])
            print(
                f"      {own / n * 1000:6.2f} ms own {cumulative / n * 1000:7.2f} ms cum "
                f"{calls // n:6d}x  {short}:{line}({function})"
            )


async def cold(url: str, env: dict[str, str], rounds: int = 3) -> None:
    """The first call of a freshly built server (pool opening included), through the client."""
    for wait, when in ((0.0, "of a new server"), (STARTUP_SECONDS, f"{STARTUP_SECONDS:g} s after start")):
        for method in ("resources/list", "list_tables"):  # after the wait, start-up's own work is done
            samples = []
            for _ in range(rounds):
                app = build_server(config_for(url, env))
                async with Client(app, read_timeout_seconds=60) as client:
                    await asyncio.sleep(wait)
                    started = time.perf_counter()
                    if method == "resources/list":
                        await client.list_resources(cache_mode="bypass")
                    else:
                        await client.call_tool("list_tables", {"schema": WIDE})
                    samples.append(time.perf_counter() - started)
            shown = ", ".join(f"{s * 1000:.1f}" for s in samples)
            print(f"  cold {method:15s} first call {when}: {shown} ms")
    for method in ("resources/list", "list_tables"):  # the pool open, nothing else read yet
        samples = []
        for _ in range(rounds):
            contexts = open_contexts(config_for(url, env))
            app = build_server(config_for(url, env), contexts)
            context = next(iter(contexts.values()))
            await context.db.connect()
            started = time.perf_counter()
            if method == "resources/list":
                await resource_page(app.databases, None)
            else:
                await explore.list_tables(context, WIDE)
            samples.append(time.perf_counter() - started)
            await context.db.close()
        shown = ", ".join(f"{s * 1000:.1f}" for s in samples)
        print(f"  cold {method:15s} first call once the pool is open (ours): {shown} ms")


async def scenario(url: str, env: dict[str, str], calls: int, lines: int) -> None:
    await cold(url, env)
    config = config_for(url, env)
    contexts = open_contexts(config)
    app: PgMcpServer = build_server(config, contexts)
    context = next(iter(contexts.values()))
    handler_params = PaginatedRequestParams(cursor=None)

    async with Client(app, read_timeout_seconds=60) as client:
        first = await client.list_resources(cache_mode="bypass")
        tables = await client.call_tool("list_tables", {"schema": WIDE})
        assert not tables.is_error and tables.structured_content, tables
        print(
            f"  (first page: {len(first.resources)} resources, next cursor {'yes' if first.next_cursor else 'no'}; "
            f"list_tables(wide): {len(tables.structured_content['tables'])} of "
            f"{tables.structured_content['total']} tables)"
        )
        measured: dict[str, dict[str, Callable[[], Awaitable[object]]]] = {
            "resources/list": {
                "official client, in memory": lambda: client.list_resources(cache_mode="bypass"),
                "server handler (no client/JSON-RPC)": lambda: app._handle_list_resources(
                    None,  # type: ignore[arg-type]  # unused by the handler
                    handler_params,
                ),
                "ours: resource_page": lambda: resource_page(app.databases, None),
            },
            "list_tables(schema=wide)": {
                "official client, in memory": lambda: client.call_tool("list_tables", {"schema": WIDE}),
                "server handler (MCPServer.call_tool)": lambda: app.call_tool(
                    "list_tables", {"schema": WIDE}
                ),
                "ours: explore.list_tables": lambda: explore.list_tables(context, WIDE),
            },
        }
        for method, ways in measured.items():
            print(f"  warm {method}, {calls} calls each")
            medians = []
            for label, call in ways.items():
                samples = await timed(call, calls)
                medians.append(statistics.median(samples))
                print(f"    {label:38s} {summary(samples)}")
            client_p50, handler_p50, ours_p50 = medians
            sql, python, queries, peak = await split(list(ways.values())[-1], calls)
            print(
                f"    ours split: catalog SQL {sql * 1000:.1f} ms ({queries} queries, round trips included), "
                f"our Python {python * 1000:.1f} ms; beyond ours (p50 differences): SDK server side "
                f"{(handler_p50 - ours_p50) * 1000:.1f} ms, client + transport "
                f"{(client_p50 - handler_p50) * 1000:.1f} ms; peak Python memory of one call {peak / 1024:,.0f} KiB"
            )
        print("  where a warm call's time goes (cProfile, own time):")
        await profile(
            "resources/list via the client",
            measured["resources/list"]["official client, in memory"],
            calls,
            lines,
        )
        await profile(
            "list_tables via the client",
            measured["list_tables(schema=wide)"]["official client, in memory"],
            calls,
            lines,
        )


async def main(calls: int, lines: int) -> None:
    with start_local_postgres() as cluster:
        started = time.perf_counter()
        url = await create_catalog(cluster.url(), cluster.password)
        total = sum(SCHEMAS.values())
        print(
            f"catalog of {total:,} tables (+{10 * len(SCHEMAS)} views) created in {time.perf_counter() - started:.1f} s"
        )
        for label, env in (
            ("no operator limits", {}),
            ("operator limits (" + ", ".join(LIMITED) + ")", LIMITED),
        ):
            print(f"\n== {label}")
            await scenario(url, env, calls, lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--profile-lines", type=int, default=12)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.calls, arguments.profile_lines))
