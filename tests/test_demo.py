"""`pg-mcp demo` and `call --demo`: serving at once on a first run, and leaving no server behind."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories import settings_for
from mcp import Client, StdioServerParameters
from mcp_helpers import ROOT, run_cli, server_env, text_of

from pg_mcp.database.executor import Database
from pg_mcp.demo_cluster import DemoDatabase, cache_root
from pg_mcp.local_pg import OWNER_FILE, LocalPostgres, find_pg_bin, free_port, run_as_user

INITIALIZE = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}  # fmt: skip


@pytest.fixture(scope="session")
def pg_bin() -> Path:
    try:
        return find_pg_bin()
    except Exception as exc:
        pytest.skip(f"pg-mcp demo needs PostgreSQL binaries: {exc}")


@pytest.fixture(scope="session")
def built_demo(pg_bin: Path) -> Path:
    """The kept demo cluster, built (once, by the first `call --demo`) and stopped."""
    first = run_cli("call", "--demo", "query", "sql=SELECT 1 AS one", timeout=300)
    assert first.returncode == 0, first.stderr
    return cache_root(pg_bin)


@pytest.fixture()
def empty_cache() -> Iterator[Path]:
    """A demo cache directory of our own, empty: what a first run sees."""
    cache = Path(tempfile.mkdtemp(prefix="pg-mcp-test-cache-"))
    if os.geteuid() == 0:  # the demo's PostgreSQL runs as an unprivileged user
        cache.chmod(0o777)
    yield cache
    for pid_file in cache.glob("*/data/postmaster.pid"):  # never leave a server behind a failed test
        LocalPostgres(find_pg_bin(), pid_file.parent.parent, 0, "", run_as_user()).stop_server()
    shutil.rmtree(cache, ignore_errors=True)


def _postmasters_under(directory: Path) -> list[str]:
    found = subprocess.run(["pgrep", "-af", f"postgres.*{directory}"], capture_output=True, text=True)
    return [line for line in found.stdout.splitlines() if "pgrep" not in line]


async def test_a_first_run_serves_at_once_and_tool_calls_wait_for_the_build(pg_bin: Path) -> None:
    root = Path(tempfile.mkdtemp(prefix="pg-mcp-"))
    (root / OWNER_FILE).write_text(str(os.getpid()))
    user = run_as_user()
    if user:
        shutil.chown(root, user=user)
    demo = DemoDatabase(LocalPostgres(pg_bin, root, free_port(), "pw-1234", run_as_user()), kept=False)
    settings = settings_for(demo.url, connect_timeout=0.2)
    from pg_mcp.config import single_database
    from pg_mcp.explore import DatabaseContext
    from pg_mcp.server import build_server

    context = DatabaseContext("demo", settings, Database(settings, ready=demo.wait_ready))
    try:
        async with Client(build_server(single_database(settings), {"demo": context})) as client:
            tools = await client.list_tools()  # answered although no PostgreSQL exists yet
            early = await client.call_tool("query", {"sql": "SELECT 1 AS one"})
            demo.build_in_background()
            for _ in range(1200):
                late = await client.call_tool("query", {"sql": "SELECT count(*) AS n FROM hr.employees"})
                if not late.is_error:
                    break
                assert "still being built" in text_of(late), text_of(late)
                await asyncio.sleep(0.1)
    finally:
        await asyncio.to_thread(demo.stop)
    assert "query" in {tool.name for tool in tools.tools}
    assert early.is_error and "The demo database is still being built" in text_of(early), text_of(early)
    assert "Try again in a few seconds" in text_of(early)
    assert late.structured_content["rows"] == [[300]], text_of(late)
    assert not root.exists(), "a throwaway demo cluster is removed when it stops"


def test_a_first_run_builds_the_cache_while_serving_and_stops_its_server(empty_cache: Path) -> None:
    messages = [INITIALIZE, {"jsonrpc": "2.0", "method": "notifications/initialized"},
                {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}]  # fmt: skip
    query = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
             "params": {"name": "query", "arguments": {"sql": "SELECT count(*) AS n FROM sales.order_items"}}}  # fmt: skip
    env = server_env(PG_MCP_DEMO_CACHE=str(empty_cache))
    with subprocess.Popen(
        [sys.executable, "-m", "pg_mcp", "demo"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    ) as proc:  # fmt: skip
        assert proc.stdin and proc.stdout and proc.stderr
        proc.stdin.write("".join(json.dumps(m) + "\n" for m in messages))
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline())["id"] == 0
        assert json.loads(proc.stdout.readline())["id"] == 1
        for attempt in range(100):  # a slow machine may need longer than one connect timeout
            proc.stdin.write(json.dumps({**query, "id": 2 + attempt}) + "\n")
            proc.stdin.flush()
            result = json.loads(proc.stdout.readline())["result"]
            if not result.get("isError"):
                break
            assert "still being built" in result["content"][0]["text"], result
        proc.stdin.close()
        err = proc.stderr.read()
        assert proc.wait(timeout=30) == 0
    assert result["structuredContent"]["rows"] == [[1_000_000]]
    assert "Building the demo database in the background" in err and "Demo database ready" in err, err
    assert "Traceback" not in err
    [kept] = list(empty_cache.glob("demo-*/state.json"))
    assert not (kept.parent / "data" / "postmaster.pid").exists(), "its server stopped with pg-mcp"
    assert not _postmasters_under(empty_cache)


def test_a_first_run_ended_while_building_leaves_no_server_and_no_partial_cluster(empty_cache: Path) -> None:
    env = server_env(PG_MCP_DEMO_CACHE=str(empty_cache))
    with subprocess.Popen(
        [sys.executable, "-m", "pg_mcp", "demo"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True, env=env, cwd=ROOT,
    ) as proc:  # fmt: skip
        assert proc.stdin and proc.stdout
        proc.stdin.write(json.dumps(INITIALIZE) + "\n")
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline())["id"] == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    assert not _postmasters_under(empty_cache)
    for cluster in empty_cache.glob("demo-*/"):
        assert (cluster / "state.json").exists(), "only a complete cluster is kept"


async def test_demo_serves_the_demo_database_over_stdio(built_demo: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "pg_mcp", "demo"], env=server_env(), cwd=str(ROOT)
    )
    async with Client(params, read_timeout_seconds=120) as client:
        tables = await client.call_tool("list_tables", {"schema": "sales"})
        count = await client.call_tool("query", {"sql": "SELECT count(*) AS n FROM sales.order_items"})
    assert "sales.orders" in text_of(tables)
    assert count.structured_content["rows"] == [[1_000_000]]


def test_demo_says_where_it_runs_and_prints_a_claude_desktop_entry(built_demo: Path) -> None:
    result = run_cli("demo")  # stdin is /dev/null: it serves until end of input, then cleans up
    assert result.returncode == 0, result.stderr
    assert result.stdout == "", "stdout carries only protocol messages"
    err = result.stderr
    assert re.search(r"Demo database at 127\.0\.0\.1:\d+ \(data in .+; the server stops when", err), err
    assert "PGPASSFILE=" in err and "psql -h 127.0.0.1" in err
    entry = json.loads(err[err.index("{") : err.index("\n}\n") + 2])
    # run as `python -m pg_mcp`: the entry names this interpreter by its absolute path, which a
    # desktop host can start without the shell's PATH
    assert entry["mcpServers"]["postgres-demo"] == {
        "command": sys.executable,
        "args": ["-m", "pg_mcp", "demo"],
    }
    assert Path(entry["mcpServers"]["postgres-demo"]["command"]).is_absolute()
    assert "ERROR" not in err and "Traceback" not in err
    data_dir = re.search(r"data in (\S+);", err)
    assert data_dir and not (Path(data_dir.group(1)) / "data" / "postmaster.pid").exists(), (
        "its server stopped"
    )


@pytest.mark.parametrize("how", ["SIGTERM", "SIGHUP", "SIGINT", "end of input"])
def test_the_demo_server_stops_however_pg_mcp_is_told_to_end(built_demo: Path, how: str) -> None:
    postmaster = built_demo / "data" / "postmaster.pid"
    with subprocess.Popen(
        [sys.executable, "-m", "pg_mcp", "demo"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=server_env(), cwd=ROOT,
    ) as proc:  # fmt: skip
        assert proc.stdin and proc.stdout and proc.stderr
        proc.stdin.write(json.dumps(INITIALIZE) + "\n")
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline())["id"] == 0
        assert postmaster.exists(), "the demo's server runs while pg-mcp serves"
        if how == "end of input":
            proc.stdin.close()
        else:
            proc.send_signal(getattr(signal, how))
        proc.wait(timeout=30)
        err = proc.stderr.read()
    assert not postmaster.exists(), f"the demo's server stopped after {how}"
    assert "Traceback" not in err, err


def test_a_demo_server_left_by_a_killed_pg_mcp_is_taken_over_and_stopped(built_demo: Path) -> None:
    postmaster = built_demo / "data" / "postmaster.pid"
    with subprocess.Popen(
        [sys.executable, "-m", "pg_mcp", "call", "--demo", "query", "sql=SELECT 1 AS one"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=server_env(), cwd=ROOT,
    ) as proc:  # fmt: skip
        for _ in range(600):  # kill it while its server runs
            if postmaster.exists():
                break
            time.sleep(0.05)
        proc.kill()
    assert postmaster.exists(), "SIGKILL leaves the server running"
    again = run_cli("call", "--demo", "query", "sql=SELECT 2 AS two")
    assert again.returncode == 0 and "2" in again.stdout, again.stderr
    assert not postmaster.exists(), "the next run took the cluster over and stopped it"


def test_throwaway_clusters_of_dead_processes_are_removed(pg_bin: Path) -> None:
    from pg_mcp.local_pg import remove_abandoned_clusters

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = Path(tempfile.mkdtemp(prefix="pg-mcp-"))
    (left / OWNER_FILE).write_text(str(dead.pid))
    mine = Path(tempfile.mkdtemp(prefix="pg-mcp-"))
    (mine / OWNER_FILE).write_text(str(os.getpid()))
    try:
        assert left in remove_abandoned_clusters(pg_bin)
        assert not left.exists() and mine.exists(), "only a dead process's cluster is removed"
    finally:
        shutil.rmtree(mine, ignore_errors=True)
