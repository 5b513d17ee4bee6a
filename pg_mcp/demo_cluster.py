"""The demo database, kept between runs so that `pg-mcp demo` and `call --demo` start in a second.

The cluster is built once (initdb and the demo data, about ten seconds) in the user's cache
directory, named after a digest of the demo SQL and the PostgreSQL binaries, and rebuilt only when
either changes. Its server runs only while pg-mcp does: it is stopped on every way out that Python
sees (end of input, SIGTERM, SIGHUP, Ctrl-C), and a server left running by a pg-mcp that was killed
outright is stopped when the next run takes the cluster over. A second pg-mcp running the demo at
the same time gets a throwaway cluster of its own, removed when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from pg_mcp.errors import ConfigError
from pg_mcp.local_pg import (
    LocalPostgres,
    demo_sql_path,
    find_pg_bin,
    free_port,
    load_demo,
    remove_abandoned_clusters,
    run_as_user,
    start_local_postgres,
)

CACHE_ENV = "PG_MCP_DEMO_CACHE"
"""Where the demo cluster is kept, instead of the default cache directory."""
_LAYOUT = "1"  # bump when what is stored in the cache changes


def cache_root(bin_dir: Path) -> Path:
    """The demo cluster's directory for these binaries and this demo SQL."""
    digest = hashlib.sha256(f"{_LAYOUT}\0{bin_dir}\0".encode() + demo_sql_path().read_bytes()).hexdigest()[
        :12
    ]
    if os.environ.get(CACHE_ENV):
        base = Path(os.environ[CACHE_ENV])
    elif os.geteuid() == 0:  # the server runs as an unprivileged user, who cannot enter /root
        base = Path(tempfile.gettempdir()) / "pg-mcp-demo-cache"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pg-mcp"
    return base / f"demo-{digest}"


@contextlib.contextmanager
def demo_database() -> Iterator[tuple[LocalPostgres, str]]:
    """A running demo cluster and the least-privilege reader's URL; the server stops on exit."""
    bin_dir = find_pg_bin()
    remove_abandoned_clusters(bin_dir)
    root = cache_root(bin_dir)
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f"{root.name}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another pg-mcp runs the demo: a throwaway cluster of our own
            with start_local_postgres() as cluster:
                yield cluster, _reader_url(cluster.port, asyncio.run(_load(cluster)))
            return
        cluster = _open(root, bin_dir)
        try:
            yield cluster, _reader_url(cluster.port, cluster.password)
        finally:
            cluster.stop_server("fast")


def _open(root: Path, bin_dir: Path) -> LocalPostgres:
    """Start the cached cluster, building it first when missing or unusable."""
    state = root / "state.json"
    if (root / "data" / "postmaster.pid").exists():  # left running by a pg-mcp that was killed
        LocalPostgres(bin_dir, root, 0, "", run_as_user()).stop_server()
    if state.exists():
        cluster = LocalPostgres(
            bin_dir, root, free_port(), json.loads(state.read_text())["password"], run_as_user()
        )
        try:
            cluster.start_server()
            return cluster
        except ConfigError:
            cluster.stop_server()
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    print("Building the demo database (first run only, about 10 s)...", file=sys.stderr, flush=True)
    cluster = LocalPostgres(bin_dir, root, free_port(), secrets.token_urlsafe(18), run_as_user())
    try:
        cluster.start()
        asyncio.run(_load(cluster))
    except BaseException:
        cluster.stop_server()
        shutil.rmtree(root, ignore_errors=True)
        raise
    state.write_text(json.dumps({"password": cluster.password}))
    state.chmod(0o600)
    return cluster


async def _load(cluster: LocalPostgres) -> str:
    await load_demo(cluster.url(), cluster.password)
    return cluster.password


def _reader_url(port: int, password: str) -> str:
    return f"postgresql://mcp_reader:{quote(password, safe='')}@127.0.0.1:{port}/demo"
