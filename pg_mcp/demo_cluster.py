"""The demo database, kept between runs, and built in the background on the first one.

The cluster lives in the user's cache directory, named after a digest of the demo SQL and the
PostgreSQL binaries, and is rebuilt only when either changes. On the first run (initdb and a million
rows, about ten seconds) pg-mcp serves at once while the cluster is built beside it: the client gets
`initialize` and `tools/list` straight away, and a tool call waits for the build (up to the connect
timeout) or says that it is still under way. Later runs start the kept cluster in about a second.

Its server runs only while pg-mcp does: it is stopped on every way out that Python sees (end of
input, SIGTERM, SIGHUP, Ctrl-C), a build cut short is removed, and a server left running by a pg-mcp
that was killed outright is stopped when the next run takes the cluster over. A second pg-mcp running
the demo at the same time gets a throwaway cluster of its own, removed when it ends.
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
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from pg_mcp.errors import ConfigError, DatabaseUnavailableError, PgMcpError
from pg_mcp.local_pg import (
    OWNER_FILE,
    LocalPostgres,
    demo_sql_path,
    find_pg_bin,
    free_port,
    load_demo,
    remove_abandoned_clusters,
    run_as_user,
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


class DemoDatabase:
    """The demo cluster and its least-privilege reader's URL, ready now or once its build ends."""

    def __init__(self, cluster: LocalPostgres, *, kept: bool) -> None:
        self.cluster = cluster
        self.url = f"postgresql://mcp_reader:{quote(cluster.password, safe='')}@127.0.0.1:{cluster.port}/demo"
        self._kept = kept  # a cached cluster is kept when stopped; a throwaway one is removed
        self._ready = threading.Event()
        self._failure: PgMcpError | None = None
        self._leaving = threading.Event()
        self._builder: threading.Thread | None = None

    def build_in_background(self) -> None:
        """initdb, start and load the demo data on a thread of its own; `wait_ready` reports the outcome."""
        self._builder = threading.Thread(target=self._build, name="pg-mcp-demo-build", daemon=True)
        self._builder.start()

    def mark_ready(self) -> None:
        self._ready.set()

    async def wait_ready(self, timeout: float) -> None:
        """Return once the demo database accepts connections, or raise DatabaseUnavailableError."""
        deadline = time.monotonic() + timeout
        while not self._ready.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self._failure is not None:
            raise self._failure
        if not self._ready.is_set():
            raise DatabaseUnavailableError(
                "The demo database is still being built (first run only, about 10 s in all).",
                "Try again in a few seconds.",
            )

    def stop(self) -> None:
        """Stop the server; a build still under way is cut short and its files removed."""
        self._leaving.set()
        building = self._builder is not None and self._builder.is_alive()
        if building:
            self.cluster.stop_server()  # a load in progress fails at once; initdb is waited for
            assert self._builder is not None
            self._builder.join(timeout=120)
        self.cluster.stop_server("fast" if self._kept and not building else "immediate")
        if building or not self._kept:
            shutil.rmtree(self.cluster.root, ignore_errors=True)

    def _build(self) -> None:
        started = time.monotonic()
        print(
            "Building the demo database in the background (first run only, about 10 s); "
            "tool calls wait for it.",
            file=sys.stderr,
            flush=True,
        )
        try:
            self.cluster.start()
            if self._leaving.is_set():
                return
            asyncio.run(load_demo(self.cluster.url(), self.cluster.password))
            if self._kept:
                state = self.cluster.root / "state.json"
                state.write_text(json.dumps({"password": self.cluster.password}))
                state.chmod(0o600)
        except Exception as exc:
            if not self._leaving.is_set():
                reason = exc.message if isinstance(exc, PgMcpError) else f"{type(exc).__name__}: {exc}"
                self._failure = DatabaseUnavailableError(
                    f"The demo database could not be built: {reason}",
                    f"See {self.cluster.root / 'server.log'}, or run `pg-mcp demo` again.",
                )
                print(f"pg-mcp: {self._failure.message}", file=sys.stderr, flush=True)
            self._ready.set()
            return
        print(f"Demo database ready ({time.monotonic() - started:.1f} s).", file=sys.stderr, flush=True)
        self._ready.set()


@contextlib.contextmanager
def demo_database() -> Iterator[DemoDatabase]:
    """The demo database, started or being built; its server is stopped on the way out."""
    bin_dir = find_pg_bin()
    remove_abandoned_clusters(bin_dir)
    root = cache_root(bin_dir)
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f"{root.name}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another pg-mcp runs the demo: a throwaway cluster of our own
            demo = _throwaway(bin_dir)
        else:
            demo = _kept(root, bin_dir)
        try:
            yield demo
        finally:
            demo.stop()


def _kept(root: Path, bin_dir: Path) -> DemoDatabase:
    """The cached cluster, started; or, when missing or unusable, a fresh one building in the background."""
    state = root / "state.json"
    if (root / "data" / "postmaster.pid").exists():  # left running by a pg-mcp that was killed
        LocalPostgres(bin_dir, root, 0, "", run_as_user()).stop_server()
    if state.exists():
        cluster = LocalPostgres(
            bin_dir, root, free_port(), json.loads(state.read_text())["password"], run_as_user()
        )
        try:
            cluster.start_server()
        except ConfigError:
            cluster.stop_server()
        else:
            demo = DemoDatabase(cluster, kept=True)
            demo.mark_ready()
            return demo
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    demo = DemoDatabase(
        LocalPostgres(bin_dir, root, free_port(), secrets.token_urlsafe(18), run_as_user()), kept=True
    )
    demo.build_in_background()
    return demo


def _throwaway(bin_dir: Path) -> DemoDatabase:
    root = Path(tempfile.mkdtemp(prefix="pg-mcp-"))
    (root / OWNER_FILE).write_text(str(os.getpid()))  # removed by the next run if we die
    demo = DemoDatabase(
        LocalPostgres(bin_dir, root, free_port(), secrets.token_urlsafe(18), run_as_user()), kept=False
    )
    demo.build_in_background()
    return demo
