"""The SSH tunnel against a real OpenSSH server (tests/ssh_helpers.py) and the real test database.

asyncpg connects to the tunnel's unix socket; the tunnel reaches the database through sshd's
direct-tcpip forwarding, as it would through a bastion. sshd is killed and restarted, given
another host key, put behind a jump host; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import asyncpg
import pytest
from conftest import DemoDatabase
from ssh_helpers import Sshd, fingerprint, keygen, sshd_missing_reason

from pg_mcp.database.tunnel import SshEndpoint, SshTunnel
from pg_mcp.errors import ConfigError, DatabaseUnavailableError

_missing = sshd_missing_reason()
pytestmark = pytest.mark.skipif(_missing is not None, reason=_missing or "")

PASSPHRASE = "correct horse battery staple"
#: What asyncpg raises when the tunnel closes its socket: it cannot say why, `problem()` does.
CLOSED = (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ssh-keys")
    return {
        "plain": keygen(root / "id_plain"),
        "encrypted": keygen(root / "id_encrypted", passphrase=PASSPHRASE),
        "stranger": keygen(root / "id_stranger"),
    }


@pytest.fixture
def sshd(tmp_path: Path, keys: dict[str, Path]) -> Iterator[Sshd]:
    server = Sshd(tmp_path / "sshd", [keys["plain"], keys["encrypted"]])
    server.start()
    yield server
    server.kill()


@pytest.fixture
def known_hosts(tmp_path: Path, sshd: Sshd) -> Path:
    path = tmp_path / "known_hosts"
    path.write_text(sshd.known_hosts_line())
    return path


def _database(pg: DemoDatabase) -> tuple[str, int]:
    parts = urlsplit(pg.url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def _user() -> str:
    import getpass

    return getpass.getuser()


def _tunnel(
    pg: DemoDatabase,
    sshd: Sshd,
    known_hosts: Path,
    key: Path,
    *,
    key_passphrase: str | None = None,
    jump: str | None = None,
    listen: Literal["unix", "tcp"] | None = None,
) -> SshTunnel:
    host, port = _database(pg)
    return SshTunnel(
        f"{_user()}@127.0.0.1:{sshd.port}",
        key_file=key,
        key_passphrase=key_passphrase,
        known_hosts=known_hosts,
        jump=jump,
        database_host=host,
        database_port=port,
        connect_timeout=10.0,
        listen=listen,
    )


@pytest.fixture
async def tunnel(
    pg: DemoDatabase, sshd: Sshd, known_hosts: Path, keys: dict[str, Path]
) -> AsyncIterator[SshTunnel]:
    t = _tunnel(pg, sshd, known_hosts, keys["plain"])
    await t.start()
    yield t
    await t.close()


async def _connect(pg: DemoDatabase, tunnel: SshTunnel) -> asyncpg.Connection:
    """asyncpg through the tunnel: the URL's user, password and database; the tunnel's host and port."""
    address = tunnel.address
    assert address is not None
    async with asyncio.timeout(30):
        return await asyncpg.connect(pg.url, host=address.host, port=address.port, timeout=20)


async def _problem_after_failed_connect(pg: DemoDatabase, tunnel: SshTunnel) -> DatabaseUnavailableError:
    """Connect, expect the driver's vague failure, and return the tunnel's account of it."""
    with pytest.raises(CLOSED):
        conn = await _connect(pg, tunnel)
        await conn.close()
    problem = tunnel.problem()
    assert isinstance(problem, DatabaseUnavailableError)
    return problem


def test_endpoints_parse() -> None:
    assert SshEndpoint.parse("deploy@bastion.example.com") == SshEndpoint("bastion.example.com", 22, "deploy")
    assert SshEndpoint.parse("deploy@10.0.0.1:2222") == SshEndpoint("10.0.0.1", 2222, "deploy")
    assert SshEndpoint.parse("deploy@[2001:db8::1]:2222") == SshEndpoint("2001:db8::1", 2222, "deploy")
    assert str(SshEndpoint.parse("[::1]:22")) == "[::1]:22"
    for bad in ("deploy@", "deploy@host:port", "a b@host", "host:70000", "user@host:22:22"):
        with pytest.raises(ConfigError, match="user@host"):
            SshEndpoint.parse(bad)


async def test_query_through_the_tunnel(pg: DemoDatabase, tunnel: SshTunnel) -> None:
    address = tunnel.address
    assert address is not None
    socket_dir = Path(address.host)
    assert stat.S_IMODE(socket_dir.stat().st_mode) == 0o700  # no other local user can reach the socket
    assert (socket_dir / f".s.PGSQL.{address.port}").is_socket()

    conns = await asyncio.gather(*(_connect(pg, tunnel) for _ in range(3)))  # one SSH connection, 3 channels
    try:
        for conn in conns:
            # The database sees a TCP client (sshd), not the unix socket asyncpg used.
            row = await conn.fetchrow("SELECT current_user AS who, inet_server_port() AS port, 1 + 1 AS two")
            assert row is not None
            assert (row["who"], row["port"], row["two"]) == ("mcp_reader", _database(pg)[1], 2)
        big = await conns[0].fetchval("SELECT repeat('x', 1000000)")  # many SSH packets each way
        assert big == "x" * 1_000_000
    finally:
        for conn in conns:
            await conn.close()
    assert tunnel.problem() is None
    await tunnel.close()
    assert not socket_dir.exists()


async def test_tcp_listener(pg: DemoDatabase, sshd: Sshd, known_hosts: Path, keys: dict[str, Path]) -> None:
    # For a database that requires TLS: asyncpg's TLS needs TCP (it never uses TLS on a unix socket).
    async with _tunnel(pg, sshd, known_hosts, keys["plain"], listen="tcp") as tunnel:
        assert tunnel.address is not None and tunnel.address.host == "127.0.0.1"
        conn = await _connect(pg, tunnel)
        try:
            assert await conn.fetchval("SELECT current_user") == "mcp_reader"
        finally:
            await conn.close()


async def test_reconnects_after_sshd_restarts(pg: DemoDatabase, sshd: Sshd, tunnel: SshTunnel) -> None:
    conn = await _connect(pg, tunnel)
    pid = conn.get_server_pid()
    try:
        sleeping = asyncio.create_task(conn.fetchval("SELECT pg_sleep(60)"))
        await asyncio.sleep(0.2)  # on its way; whether it reached the server does not matter
        await asyncio.to_thread(sshd.kill)
        with pytest.raises(CLOSED):  # the SSH connection is gone, and with it this connection
            async with asyncio.timeout(20):
                await sleeping
        problem = tunnel.problem()
        assert problem is not None and f"127.0.0.1:{sshd.port}" in problem.message
        assert "lost its connection" in problem.message

        # While sshd is down, the tunnel says so (not "connection closed").
        problem = await _problem_after_failed_connect(pg, tunnel)
        assert f"cannot reach the SSH host 127.0.0.1:{sshd.port}" in problem.message
        assert "refused" in problem.message.lower()

        await asyncio.to_thread(sshd.start)  # same port, same host key
        again = await _connect(pg, tunnel)
        try:
            assert await again.fetchval("SELECT 42") == 42
        finally:
            await again.close()
        assert tunnel.problem() is None
    finally:
        conn.terminate()
        await pg.admin_execute(f"SELECT pg_terminate_backend({pid})")


async def test_unknown_host_key_is_refused_until_trusted(
    pg: DemoDatabase, sshd: Sshd, tmp_path: Path, keys: dict[str, Path]
) -> None:
    known_hosts = tmp_path / "empty" / "known_hosts"  # does not exist: trusts nothing
    async with _tunnel(pg, sshd, known_hosts, keys["plain"]) as tunnel:
        problem = await _problem_after_failed_connect(pg, tunnel)
        expected = fingerprint(sshd.host_public_key)
        assert f"refused the SSH host 127.0.0.1:{sshd.port}" in problem.message
        assert expected in problem.message and "does not exist" in problem.message
        fix = f"ssh-keyscan -p {sshd.port} 127.0.0.1 >> {known_hosts}"
        assert problem.hint is not None and fix in problem.hint and expected in problem.hint

        # The hint's command, run as given, is enough: known_hosts is read again for the next connection.
        known_hosts.parent.mkdir()
        subprocess.run(fix, shell=True, check=True, capture_output=True, timeout=30)
        conn = await _connect(pg, tunnel)
        try:
            assert await conn.fetchval("SELECT 1") == 1
        finally:
            await conn.close()
        assert tunnel.problem() is None


async def test_changed_host_key_is_refused(
    pg: DemoDatabase, sshd: Sshd, tmp_path: Path, keys: dict[str, Path]
) -> None:
    impostor = keygen(tmp_path / "other_host_key", comment="host")  # what known_hosts expects instead
    kind, body = Path(f"{impostor}.pub").read_text().split()[:2]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {kind} {body}\n")
    async with _tunnel(pg, sshd, known_hosts, keys["plain"]) as tunnel:
        problem = await _problem_after_failed_connect(pg, tunnel)
        assert f"refused the SSH host 127.0.0.1:{sshd.port}" in problem.message
        assert fingerprint(sshd.host_public_key) in problem.message
        assert "intercepting" in problem.message
        assert problem.hint is not None
        assert f"ssh-keygen -R '[127.0.0.1]:{sshd.port}' -f {known_hosts}" in problem.hint
        assert f"ssh-keyscan -p {sshd.port} 127.0.0.1 >> {known_hosts}" in problem.hint
        # The driver's failure is replaced by the tunnel's (what the caller raises).
        assert str(problem).startswith(f"The SSH tunnel through {_user()}@127.0.0.1:{sshd.port}")


async def test_key_with_passphrase(
    pg: DemoDatabase, sshd: Sshd, known_hosts: Path, keys: dict[str, Path]
) -> None:
    async with _tunnel(pg, sshd, known_hosts, keys["encrypted"], key_passphrase=PASSPHRASE) as tunnel:
        conn = await _connect(pg, tunnel)
        try:
            assert await conn.fetchval("SELECT 7") == 7
        finally:
            await conn.close()
        assert PASSPHRASE not in repr(tunnel)

    for passphrase in (None, "wrong passphrase"):
        broken = _tunnel(pg, sshd, known_hosts, keys["encrypted"], key_passphrase=passphrase)
        with pytest.raises(ConfigError, match="passphrase") as caught:
            await broken.start()
        assert "wrong passphrase" not in str(caught.value)
        await broken.close()


async def test_key_the_server_does_not_accept(
    pg: DemoDatabase, sshd: Sshd, known_hosts: Path, keys: dict[str, Path]
) -> None:
    async with _tunnel(pg, sshd, known_hosts, keys["stranger"]) as tunnel:
        problem = await _problem_after_failed_connect(pg, tunnel)
        assert f"refused the key {keys['stranger']}" in problem.message
        assert problem.hint is not None and "authorized_keys" in problem.hint


async def test_bastion_that_may_not_forward_to_the_database(
    pg: DemoDatabase, tmp_path: Path, keys: dict[str, Path]
) -> None:
    closed = Sshd(tmp_path / "closed", [keys["plain"]], extra_config="PermitOpen 127.0.0.1:1\n")
    closed.start()
    try:
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text(closed.known_hosts_line())
        async with _tunnel(pg, closed, known_hosts, keys["plain"]) as tunnel:
            problem = await _problem_after_failed_connect(pg, tunnel)
            host, port = _database(pg)
            assert (
                f"could not open a connection from 127.0.0.1 to the database {host}:{port}" in problem.message
            )
            assert problem.hint is not None and "PermitOpen" in problem.hint
    finally:
        closed.kill()


async def test_jump_host(pg: DemoDatabase, sshd: Sshd, tmp_path: Path, keys: dict[str, Path]) -> None:
    # The bastion (`sshd`) is reached through a second sshd, the jump host.
    jump = Sshd(tmp_path / "jump", [keys["plain"]])
    jump.start()
    try:
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text(sshd.known_hosts_line() + jump.known_hosts_line())
        jump_at = f"{_user()}@127.0.0.1:{jump.port}"
        async with _tunnel(pg, sshd, known_hosts, keys["plain"], jump=jump_at) as tunnel:
            assert "through the jump host" in tunnel.name
            conn = await _connect(pg, tunnel)
            try:
                assert await conn.fetchval("SELECT 3") == 3
                await asyncio.to_thread(jump.kill)  # the path runs through it: this connection ends
                with pytest.raises(CLOSED):
                    async with asyncio.timeout(20):
                        await conn.fetchval("SELECT pg_sleep(30)")
            finally:
                conn.terminate()
            problem = await _problem_after_failed_connect(pg, tunnel)
            assert f"cannot reach the jump host 127.0.0.1:{jump.port}" in problem.message

            jump.start()
            conn = await _connect(pg, tunnel)
            try:
                assert await conn.fetchval("SELECT 4") == 4
            finally:
                await conn.close()
    finally:
        jump.kill()


async def test_unknown_jump_host_key(
    pg: DemoDatabase, sshd: Sshd, tmp_path: Path, keys: dict[str, Path]
) -> None:
    jump = Sshd(tmp_path / "jump", [keys["plain"]])
    jump.start()
    try:
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text(sshd.known_hosts_line())  # the bastion's key only
        jump_at = f"{_user()}@127.0.0.1:{jump.port}"
        async with _tunnel(pg, sshd, known_hosts, keys["plain"], jump=jump_at) as tunnel:
            problem = await _problem_after_failed_connect(pg, tunnel)
            assert f"refused the jump host 127.0.0.1:{jump.port}" in problem.message
            assert fingerprint(jump.host_public_key) in problem.message
    finally:
        jump.kill()


async def test_close_ends_open_connections(pg: DemoDatabase, tunnel: SshTunnel) -> None:
    conn = await _connect(pg, tunnel)
    try:
        async with asyncio.timeout(20):
            await tunnel.close()
        with pytest.raises(CLOSED):
            async with asyncio.timeout(20):
                await conn.fetchval("SELECT 1")
    finally:
        conn.terminate()
    assert tunnel.address is None


def test_no_secret_in_repr(tmp_path: Path) -> None:
    t = SshTunnel(
        "deploy@bastion:22",
        key_file=tmp_path / "k",
        key_passphrase="hunter2",
        database_host="db",
        database_port=5432,
    )
    assert "hunter2" not in repr(t) and "hunter2" not in t.name
    assert os.fspath(t.known_hosts).endswith(".ssh/known_hosts")
