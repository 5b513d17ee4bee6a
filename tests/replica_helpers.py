"""Real PgBouncers and hot standbys for the tests: started on loopback in temporary directories,
run as the unprivileged user when we are root (neither PgBouncer nor PostgreSQL runs as root), and
removed afterwards. Each start function skips the calling test, with the reason, when its binary is
missing (CI installs both, so there they run).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import asyncpg
import pytest

from pg_mcp.local_pg import OWNER_FILE, LocalPostgres, free_port, run_as_user

#: How long a PgBouncer or a standby may take to accept connections (and a standby to catch up).
START_SECONDS = 60.0


def with_address(url: str, port: int, host: str = "127.0.0.1") -> str:
    """`url` (credentials, database and query kept) pointed at another host and port."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}:{port}" if userinfo else f"{host}:{port}"
    return parts._replace(netloc=netloc).geturl()


def _chown_tree(root: Path, user: str | None) -> None:
    if user is None:
        return
    shutil.chown(root, user=user)
    for path in root.rglob("*"):
        shutil.chown(path, user=user)


def _wait_for_port(port: int, alive: subprocess.Popen[bytes], log: Path, what: str) -> None:
    """Return once 127.0.0.1:port accepts TCP connections; fail with the log if the process dies first."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if alive.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{what} exited with {alive.returncode}: {tail.strip()}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {START_SECONDS:g} s")


# --- PgBouncer ---------------------------------------------------------------------------------


def pgbouncer_binary() -> str:
    """The pgbouncer executable (Debian installs it in /usr/sbin), or skip the test."""
    found = shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer") if os.access(p, os.X_OK)), None
    )
    if found is None:
        pytest.skip("pgbouncer is not installed (Debian/Ubuntu: apt-get install pgbouncer); CI installs it")
    return found


@dataclass
class PgBouncer:
    """A running PgBouncer in transaction mode in front of one PostgreSQL server."""

    root: Path
    port: int
    process: subprocess.Popen[bytes]
    #: The URL it was started for (user, password, database) pointed at PgBouncer instead.
    url: str

    @property
    def log(self) -> str:
        path = self.root / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Stop PgBouncer (closing every client and server connection) and remove its files."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


def start_pgbouncer(server_url: str, *, pool_size: int = 2) -> PgBouncer:
    """PgBouncer on 127.0.0.1 in transaction mode, in front of the server `server_url` names, letting in
    that URL's user with its password (SCRAM between client and PgBouncer, and PgBouncer and the server).

    `pool_size` server connections are shared by every client of each database and user, so with a
    small pool consecutive transactions of different clients run on the same backends.
    The caller must `stop()` it.
    """
    binary = pgbouncer_binary()
    parts = urlsplit(server_url)
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    if not user or not password:
        raise ValueError("start_pgbouncer needs a URL with a user and a password")
    os_user = run_as_user()
    root = Path(tempfile.mkdtemp(prefix="pg-mcp-pgbouncer-"))
    (root / OWNER_FILE).write_text(str(os.getpid()))  # its password file is removed if this process dies
    port = free_port()

    def quoted(value: str) -> str:
        return '"' + value.replace('"', '""') + '"'

    (root / "userlist.txt").write_text(f"{quoted(user)} {quoted(password)}\n")
    (root / "pgbouncer.ini").write_text(
        f"""[databases]
* = host={parts.hostname or "127.0.0.1"} port={parts.port or 5432}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {root / "userlist.txt"}
pool_mode = transaction
default_pool_size = {pool_size}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 200
logfile = {root / "pgbouncer.log"}
pidfile = {root / "pgbouncer.pid"}
log_connections = 0
log_disconnections = 0
"""
    )
    (root / "userlist.txt").chmod(0o600)
    _chown_tree(root, os_user)
    process = subprocess.Popen(
        [binary, str(root / "pgbouncer.ini")],
        user=os_user,
        cwd=root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    bouncer = PgBouncer(root, port, process, with_address(server_url, port))
    try:
        _wait_for_port(port, process, root / "pgbouncer.log", "pgbouncer")
    except BaseException:
        bouncer.stop()
        raise
    return bouncer


# --- Hot standby -------------------------------------------------------------------------------


def pg_basebackup_binary(primary: LocalPostgres) -> Path:
    """pg_basebackup of the primary's PostgreSQL version, or skip the test."""
    found = primary.bin_dir / "pg_basebackup"
    if not found.exists():
        pytest.skip(f"pg_basebackup is not in {primary.bin_dir}: it is needed to make a hot standby")
    return found


@dataclass
class Standby:
    """A hot standby of a LocalPostgres: streaming replication from it, read-only queries allowed."""

    server: LocalPostgres
    primary: LocalPostgres

    @property
    def port(self) -> int:
        return self.server.port

    def url(self, database: str = "postgres") -> str:
        """The primary's superuser (replicated with everything else) on the standby."""
        return self.server.url(database)

    def reader_url(self, primary_reader_url: str) -> str:
        """A URL of the primary (a reader's, say) pointed at the standby."""
        return with_address(primary_reader_url, self.port)

    def stop_server(self) -> None:
        """Stop the standby at once (files kept, so `start_server` brings it back)."""
        self.server.stop_server()

    def start_server(self) -> None:
        self.server.start_server()

    def stop(self) -> None:
        """Stop the standby and remove its files."""
        self.server.stop()


def start_standby(primary: LocalPostgres, *settings: str) -> Standby:
    """A hot standby of `primary` (`pg_basebackup -R`, streaming WAL) on another loopback port,
    accepting read-only connections and caught up with the primary; the caller must `stop()` it.

    `settings` are extra `name = value` lines for the standby's configuration, e.g.
    `max_standby_streaming_delay = 0`. The primary needs wal_level replica (the default) and the
    replication entry for 127.0.0.1 that initdb writes into pg_hba.conf (scram-sha-256 here).
    """
    basebackup = pg_basebackup_binary(primary)
    root = Path(tempfile.mkdtemp(prefix="pg-mcp-standby-"))
    (root / OWNER_FILE).write_text(str(os.getpid()))  # removed by the next run if this process dies
    server = LocalPostgres(primary.bin_dir, root, free_port(), primary.password, primary.os_user)
    standby = Standby(server, primary)
    try:
        _chown_tree(root, primary.os_user)
        conninfo = (
            f"host=127.0.0.1 port={primary.port} user={primary.superuser} "
            f"password={primary.password} application_name=pg_mcp_standby"
        )
        copied = subprocess.run(
            [str(basebackup), "-D", str(server.data_dir), "-R", "-X", "stream", "-c", "fast", "-N", "-d", conninfo],
            user=primary.os_user, capture_output=True, text=True, check=False, cwd=root, timeout=300,
        )  # fmt: skip
        if copied.returncode != 0:
            raise RuntimeError(f"pg_basebackup failed: {copied.stderr.strip()[-2000:]}")
        if settings:
            with (server.data_dir / "postgresql.auto.conf").open("a") as conf:
                conf.write("".join(f"{line}\n" for line in settings))
        server.start_server()
        asyncio.run(wait_for_replay(primary.url(), server.url()))
    except BaseException:
        standby.stop()
        raise
    return standby


async def wait_for_replay(primary_url: str, standby_url: str, timeout: float = START_SECONDS) -> None:
    """Return once the standby accepts connections, is in recovery, and has replayed everything the
    primary had written when this was called."""
    conn = await asyncpg.connect(primary_url)
    try:
        target = await conn.fetchval("SELECT pg_current_wal_lsn()::text")
    finally:
        await conn.close()
    deadline = time.monotonic() + timeout
    last: BaseException | str = "no answer"
    while time.monotonic() < deadline:
        try:
            standby = await asyncpg.connect(standby_url, timeout=5)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            last = exc
        else:
            try:
                in_recovery, caught_up = await standby.fetchrow(
                    "SELECT pg_is_in_recovery(), coalesce(pg_last_wal_replay_lsn() >= $1::text::pg_lsn, false)",
                    target,
                )
            finally:
                await standby.close()
            if not in_recovery:
                raise RuntimeError("the standby is not in recovery: it was promoted or never was a standby")
            if caught_up:
                return
            last = f"replayed less than {target}"
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the standby did not catch up within {timeout:g} s: {last}")
