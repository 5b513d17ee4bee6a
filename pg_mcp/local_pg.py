"""A throwaway local PostgreSQL cluster (initdb + pg_ctl), shared by `pg-mcp demo` and the tests.

The cluster lives in a temporary directory, listens on 127.0.0.1 on a free port with a random
password, runs with durability switched off (it is disposable), and is removed on `stop()`.
PostgreSQL refuses to run as root, so when we are root the server runs as an unprivileged
system user (`postgres` if it exists, else `nobody`).
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from pg_mcp.bundled import sql_file
from pg_mcp.errors import ConfigError

INSTALL_HINT = (
    "Install the PostgreSQL server binaries (they provide initdb and pg_ctl): "
    "Debian/Ubuntu: sudo apt-get install postgresql; Fedora: sudo dnf install postgresql-server; "
    "macOS: brew install postgresql@16. If they are installed but not on PATH, set PG_BIN to their directory."
)
SEARCH_DIRS = (
    "/usr/lib/postgresql/*/bin",
    "/usr/pgsql-*/bin",
    "/opt/homebrew/opt/postgresql@*/bin",
    "/usr/local/opt/postgresql@*/bin",
    "/Applications/Postgres.app/Contents/Versions/*/bin",
)


def find_pg_bin() -> Path:
    """The directory holding initdb and pg_ctl, or ConfigError saying what to install."""
    candidates: list[str] = []
    if os.environ.get("PG_BIN"):
        candidates.append(os.environ["PG_BIN"])
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).resolve().parent))
    for pattern in SEARCH_DIRS:
        candidates.extend(sorted(glob.glob(pattern), reverse=True))
    for directory in candidates:
        if (Path(directory) / "initdb").exists() and (Path(directory) / "pg_ctl").exists():
            return Path(directory)
    raise ConfigError("PostgreSQL server binaries (initdb, pg_ctl) were not found.", INSTALL_HINT)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_as_user() -> str | None:
    """The user PostgreSQL runs as: ourselves, or an unprivileged account when we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise ConfigError("Running as root and no unprivileged user (postgres, nobody) exists to run PostgreSQL.")


@dataclass
class LocalPostgres:
    """A running throwaway cluster; `url` connects as its superuser."""

    bin_dir: Path
    root: Path
    port: int
    password: str
    os_user: str | None
    superuser: str = "postgres"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.superuser}:{self.password}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, user=self.os_user, capture_output=True, text=True, check=False, cwd=self.root, timeout=120
        )

    def start(self) -> None:
        """initdb (with a random password) and start the server; ConfigError with its log on failure."""
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.os_user:
            for path in (self.root, pwfile):
                shutil.chown(path, user=self.os_user)
        init = self._run(
            str(self.bin_dir / "initdb"),
            "-D", str(self.data_dir), "-U", self.superuser, "--pwfile", str(pwfile),
            "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        pwfile.unlink()
        if init.returncode != 0:
            raise ConfigError(f"initdb failed: {init.stderr.strip()[-2000:]}")
        self.start_server()

    def start_server(self) -> None:
        """Start (or restart) the server on the existing data directory."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='{self.root}' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=50"
        )
        log = self.root / "server.log"
        started = self._run(
            str(self.bin_dir / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(self.data_dir),
            "-l", str(log), "-o", options,
        )  # fmt: skip
        if started.returncode != 0:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else started.stderr
            raise ConfigError(f"PostgreSQL did not start: {tail.strip()}")

    def stop_server(self, mode: str = "immediate") -> None:
        """Stop the server, keeping its files: `immediate` is a crash as far as clients can tell,
        `fast` a clean shutdown (for a cluster that is started again later)."""
        if self.data_dir.exists():
            self._run(str(self.bin_dir / "pg_ctl"), "stop", "-m", mode, "-w", "-D", str(self.data_dir))

    def stop(self) -> None:
        """Stop the server and remove every file of the cluster."""
        self.stop_server()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


OWNER_FILE = "owner.pid"
"""In a throwaway cluster's directory: the pid of the process it belongs to, so that a cluster left
behind by a process that died (SIGKILL, a crash) is recognised and removed by the next one."""


def start_local_postgres() -> LocalPostgres:
    """Create and start a throwaway cluster; the caller must `stop()` it (or use it as a context manager).

    Clusters left in the temporary directory by processes that no longer exist are removed first.
    """
    bin_dir = find_pg_bin()
    remove_abandoned_clusters(bin_dir)
    root = Path(tempfile.mkdtemp(prefix="pg-mcp-"))
    (root / OWNER_FILE).write_text(str(os.getpid()))
    cluster = LocalPostgres(
        bin_dir=bin_dir,
        root=root,
        port=free_port(),
        password=secrets.token_urlsafe(18),
        os_user=run_as_user(),
    )
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster


def remove_abandoned_clusters(bin_dir: Path) -> list[Path]:
    """Stop and delete throwaway clusters whose owning process is gone; returns what was removed."""
    removed = []
    for owner in Path(tempfile.gettempdir()).glob(f"pg-mcp-*/{OWNER_FILE}"):
        try:
            pid = int(owner.read_text().strip())
        except (OSError, ValueError):
            continue
        if process_alive(pid):
            continue
        root = owner.parent
        if (root / "data" / "postmaster.pid").exists():
            stale = LocalPostgres(bin_dir, root, 0, "", run_as_user())
            stale.stop_server()
        shutil.rmtree(root, ignore_errors=True)
        removed.append(root)
    return removed


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def demo_sql_path() -> Path:
    """The demo database's SQL."""
    return sql_file("demo.sql")


DEMO_SCHEMAS = ("sales", "inventory", "hr", "analytics")


async def load_demo(admin_url: str, password: str, database: str = "demo", reader: str = "mcp_reader") -> str:
    """Create `database` with the demo data and a least-privilege `reader` role; return the reader's URL.

    `database` and `reader` are our own fixed identifiers (letters, digits, underscores).
    """
    conn = await asyncpg.connect(await _create_database(admin_url, database, reader))
    try:
        await conn.execute(demo_sql_path().read_text())
        schemas = ", ".join(DEMO_SCHEMAS)
        await conn.execute(
            f"""
            CREATE ROLE {reader} LOGIN PASSWORD '{password.replace("'", "''")}'
                NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
            REVOKE ALL ON DATABASE {database} FROM PUBLIC;
            GRANT CONNECT ON DATABASE {database} TO {reader};
            GRANT USAGE ON SCHEMA {schemas} TO {reader};
            GRANT SELECT ON ALL TABLES IN SCHEMA {schemas} TO {reader};
            ALTER ROLE {reader} SET default_transaction_read_only = on;
            """
        )
        if conn.get_server_version().major >= 15:  # pg-mcp keeps its analysis out of the server log
            await conn.execute(f"GRANT SET ON PARAMETER log_min_messages TO {reader}")
    finally:
        await conn.close()
    parts = urlsplit(admin_url)
    host = f"{parts.hostname}:{parts.port or 5432}"
    return f"postgresql://{reader}:{quote(password, safe='')}@{host}/{database}"


async def load_catalog(admin_url: str, database: str, tables: int, reader: str | None = None) -> str:
    """Create `database` with `tables` tables in 10 schemas (each with a comment and a foreign key to its
    schema's `root`), readable by `reader` if given; return its admin URL. For tests and benchmarks of
    big catalogs.
    """
    url = await _create_database(admin_url, database, reader or "x")
    conn = await asyncpg.connect(url)
    grants = (
        f"EXECUTE format('GRANT USAGE ON SCHEMA app_%s TO {reader}', s); "
        f"EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA app_%s TO {reader}', s); "
        if reader
        else ""
    )
    try:
        await conn.execute(
            "DO $$ BEGIN FOR s IN 0..9 LOOP EXECUTE format('CREATE SCHEMA app_%s', s); "
            "EXECUTE format('CREATE TABLE app_%s.root (id int PRIMARY KEY, name text)', s); END LOOP; END $$"
        )
        for start in range(1, tables + 1, 250):  # one transaction would run out of lock slots
            await conn.execute(
                f"""DO $$ BEGIN FOR t IN {start}..{min(start + 249, tables)} LOOP
                      EXECUTE format('CREATE TABLE app_%s.entity_%s (id bigint PRIMARY KEY,
                          root_id int REFERENCES app_%s.root(id), code text, amount numeric(12,2),
                          status text, created_at timestamptz, flags int[], meta jsonb)', t % 10, t, t % 10);
                      EXECUTE format('COMMENT ON TABLE app_%s.entity_%s IS %L', t % 10, t, 'Business entity ' || t);
                    END LOOP; END $$"""
            )
        await conn.execute(f"DO $$ BEGIN FOR s IN 0..9 LOOP {grants}NULL; END LOOP; END $$")
    finally:
        await conn.close()
    return url


async def _create_database(admin_url: str, database: str, *roles: str) -> str:
    """Create `database` on the cluster of `admin_url` and return its URL; the names are our own fixed
    identifiers (letters, digits, underscores), checked before they are put into SQL."""
    for name in (database, *roles):
        if not name.replace("_", "").isalnum():
            raise ValueError(f"not a plain identifier: {name!r}")
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f"CREATE DATABASE {database}")
    finally:
        await admin.close()
    return urlunsplit(urlsplit(admin_url)._replace(path=f"/{database}"))
