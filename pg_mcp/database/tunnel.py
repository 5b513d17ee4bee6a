"""An SSH tunnel to a database that only a bastion host can reach, for asyncpg.

`SshTunnel.start()` opens a local listener; every connection accepted on it becomes a `direct-tcpip`
channel of one SSH connection (asyncssh) to the bastion, optionally reached through a jump host, to
the database's host and port as the bastion sees them. The SSH connection is made on demand and
made again after it dropped, so a bastion that restarts costs the connections open at that moment,
not the tunnel.

The local listener is a unix socket in a private (0700) temporary directory: asyncpg connects to it
with `host=<directory>, port=<n>` (the socket file is `<directory>/.s.PGSQL.<n>`). A TCP listener on
127.0.0.1 would do as well for asyncpg, but every local user could connect to it and reach the
database with the bastion's credentials; the directory's permissions keep the tunnel to this user.
asyncpg never uses TLS over a unix socket, so with `listen="unix"` the leg from the bastion to the
database is not encrypted by PostgreSQL's TLS (the leg to the bastion is SSH): a database that
requires TLS (RDS with `rds.force_ssl`, or a `hostssl` rule) needs `listen="tcp"`, where asyncpg's
TLS runs end to end inside the tunnel (verify the certificate without its host name: the client sees
127.0.0.1). Windows has no unix sockets for asyncio, so TCP is its default.

Host keys are always checked against a known_hosts file (~/.ssh/known_hosts unless given; a missing
file trusts nothing): an unknown or changed key is refused with the fingerprint to check and the
command that trusts it, never accepted. Failures of the tunnel are kept (`problem()`) as a
DatabaseUnavailableError that names the SSH host, for the caller to raise instead of the driver's
"connection was closed". The key's passphrase is used once, to load the key, and never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

with warnings.catch_warnings():  # asyncssh names DSA keys, which cryptography deprecates: said on import
    warnings.filterwarnings("ignore", message="DSA is deprecated")
    import asyncssh

from pg_mcp.errors import ConfigError, DatabaseUnavailableError

log = logging.getLogger(__name__)

#: Bytes copied per read in each direction.
CHUNK = 65536
#: A unix socket's path must fit in sockaddr_un (108 bytes on Linux, 104 on macOS), with room for
#: "/.s.PGSQL.65535".
_MAX_SOCKET_DIR = 80

_Read = Callable[[int], Awaitable[bytes]]
_Write = Callable[[bytes], object]
_Drain = Callable[[], Awaitable[None]]

_ENDPOINT = re.compile(
    r"^(?:(?P<user>[^@\s]+)@)?(?:\[(?P<v6>[^\]\s]+)\]|(?P<host>[^:@\[\]\s]+))(?::(?P<port>\d+))?$"
)


@dataclass(frozen=True)
class SshEndpoint:
    """An SSH server, as `user@host[:port]` (user: the local user's name when not given)."""

    host: str
    port: int = 22
    user: str | None = None

    @classmethod
    def parse(cls, text: str, setting: str = "SSH host") -> SshEndpoint:
        """`user@host`, `user@host:2222` or `user@[2001:db8::1]:2222`; ConfigError naming `setting` else."""
        match = _ENDPOINT.match(text.strip())
        port = int(match["port"]) if match and match["port"] else 22
        if not match or not 0 < port < 65536:
            raise ConfigError(
                f"{setting} {text!r} is not of the form user@host or user@host:port.",
                "For example: deploy@bastion.example.com:22 (an IPv6 address in brackets: deploy@[2001:db8::1]:22).",
            )
        return cls(match["v6"] or match["host"], port, match["user"])

    @property
    def address(self) -> str:
        """host:port, as a message shows it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.user}@{self.address}" if self.user else self.address


@dataclass(frozen=True)
class TunnelAddress:
    """Where asyncpg connects: `host` is the socket's directory (unix) or 127.0.0.1 (tcp)."""

    host: str
    port: int


class _Client(asyncssh.SSHClient):
    """Callbacks of one SSH connection: the host key that was refused, and the connection's end."""

    def __init__(self, tunnel: SshTunnel, endpoint: SshEndpoint) -> None:
        self._tunnel = tunnel
        self.endpoint = endpoint
        self.refused_key: asyncssh.SSHKey | None = None
        self.closed = False

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        # Called only for a key known_hosts does not list: remember it for the message, and refuse it.
        self.refused_key = key
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._tunnel._lost(self, exc)


class SshTunnel:
    """A local listener whose connections reach `database_host:database_port` through SSH.

    `target` is the bastion (`user@host[:port]`), `jump` an optional host on the way to it (both
    use `key_file`). `connect_timeout` bounds each SSH connection (the jump host's included) and
    each channel's opening. A dead bastion is noticed at once when its TCP connection closes, and
    after 3 times `keepalive_interval` seconds of silence when the network drops it.
    """

    def __init__(
        self,
        target: str,
        *,
        key_file: str | os.PathLike[str],
        database_host: str,
        database_port: int = 5432,
        key_passphrase: str | None = None,
        known_hosts: str | os.PathLike[str] | None = None,
        jump: str | None = None,
        connect_timeout: float = 10.0,
        keepalive_interval: float = 30.0,
        listen: Literal["unix", "tcp"] | None = None,
    ) -> None:
        self.target = SshEndpoint.parse(target, "The SSH tunnel's host")
        self.jump = SshEndpoint.parse(jump, "The SSH tunnel's jump host") if jump else None
        self.key_file = Path(key_file).expanduser()
        self.known_hosts = (
            Path(known_hosts).expanduser() if known_hosts else Path.home() / ".ssh" / "known_hosts"
        )
        self.database_host = database_host
        self.database_port = database_port
        self.connect_timeout = connect_timeout
        self.keepalive_interval = keepalive_interval
        self.listen: Literal["unix", "tcp"] = listen or ("tcp" if sys.platform == "win32" else "unix")
        self._passphrase = key_passphrase  # dropped once the key is loaded
        self._key: asyncssh.SSHKey | None = None
        self._server: asyncio.Server | None = None
        self._socket_dir: Path | None = None
        self._address: TunnelAddress | None = None
        self._conn: asyncssh.SSHClientConnection | None = None
        self._jump_conn: asyncssh.SSHClientConnection | None = None
        self._clients: list[_Client] = []  # of the current connection: the jump host's first
        self._lost_reported = False
        self._lock = asyncio.Lock()
        self._problem: DatabaseUnavailableError | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._closing = False

    def __repr__(self) -> str:  # never the passphrase
        via = f" via {self.jump}" if self.jump else ""
        return f"SshTunnel({self.target}{via} -> {self.database_host}:{self.database_port})"

    @property
    def name(self) -> str:
        """The tunnel as messages name it."""
        via = f" (through the jump host {self.jump})" if self.jump else ""
        return f"The SSH tunnel through {self.target}{via}"

    @property
    def address(self) -> TunnelAddress | None:
        """Where asyncpg connects, once started."""
        return self._address

    def problem(self) -> DatabaseUnavailableError | None:
        """The tunnel's last failure, to raise instead of the driver's error; None after a success."""
        return self._problem

    async def start(self) -> TunnelAddress:
        """Load the key and open the local listener; the SSH connection is made by the first client.

        Raises ConfigError when the key cannot be loaded (missing file, wrong or missing passphrase).
        """
        if self._address is not None:
            return self._address
        self._closing = False
        self._key = await asyncio.to_thread(self._load_key)
        self._passphrase = None
        if self.listen == "unix":
            base = tempfile.gettempdir()
            if len(base) > _MAX_SOCKET_DIR - 20:
                base = "/tmp"
            self._socket_dir = Path(tempfile.mkdtemp(prefix="pg-mcp-ssh-", dir=base))  # mode 0700
            os.chmod(self._socket_dir, 0o700)
            port = self.database_port
            self._server = await asyncio.start_unix_server(
                self._serve, path=str(self._socket_dir / f".s.PGSQL.{port}")
            )
            self._address = TunnelAddress(str(self._socket_dir), port)
        else:
            self._server = await asyncio.start_server(self._serve, host="127.0.0.1", port=0)
            port = self._server.sockets[0].getsockname()[1]
            self._address = TunnelAddress("127.0.0.1", port)
        log.info("%r listening at %s port %d", self, self._address.host, self._address.port)
        return self._address

    async def close(self) -> None:
        """Close the listener, every piped connection, the SSH connections and the socket's directory."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        for task in list(self._pipes):
            task.cancel()
        if self._pipes:
            await asyncio.gather(*self._pipes, return_exceptions=True)
        async with self._lock:
            await self._disconnect()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None
        self._address = None

    async def __aenter__(self) -> SshTunnel:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- the key and known_hosts -------------------------------------------------------------------

    def _load_key(self) -> asyncssh.SSHKey:
        try:
            return asyncssh.read_private_key(self.key_file, self._passphrase)
        except OSError as exc:
            raise ConfigError(
                f"The SSH tunnel's key file {self.key_file} cannot be read: {exc.strerror or exc}."
            ) from None
        except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as exc:
            # asyncssh's reason ("Passphrase must be specified...", "Incorrect passphrase") never quotes it.
            hint = (
                "Set the key's passphrase, or check it."
                if "passphrase" in str(exc).lower()
                else "Use an OpenSSH private key (ssh-keygen -t ed25519 writes one); an encrypted key needs "
                "the bcrypt package (asyncssh[bcrypt])."
            )
            raise ConfigError(
                f"The SSH tunnel's key {self.key_file} cannot be loaded: {exc}.", hint
            ) from None

    def _read_known_hosts(self) -> asyncssh.SSHKnownHosts:
        """The known_hosts file, read at every connection (a key added meanwhile counts); missing: empty."""
        try:
            text = self.known_hosts.read_text()
        except FileNotFoundError:
            text = ""
        except OSError as exc:
            raise DatabaseUnavailableError(
                f"{self.name} cannot read its known_hosts file {self.known_hosts}: {exc.strerror or exc}."
            ) from None
        try:
            return asyncssh.import_known_hosts(text)
        except ValueError as exc:
            raise DatabaseUnavailableError(
                f"{self.name} cannot use its known_hosts file {self.known_hosts}: {exc}."
            ) from None

    # --- the SSH connection ----------------------------------------------------------------------

    async def _connection(self) -> asyncssh.SSHClientConnection:
        """The SSH connection to the bastion, made (again) when there is none or it dropped."""
        async with self._lock:
            if self._conn is not None and not any(client.closed for client in self._clients):
                return self._conn
            if self._closing:
                raise DatabaseUnavailableError(f"{self.name} is closed.")
            await self._disconnect()
            try:
                async with asyncio.timeout(self.connect_timeout):
                    await self._connect()
            except DatabaseUnavailableError as exc:
                self._problem = exc
                await self._disconnect()
                raise
            self._problem = None
            self._lost_reported = False
            assert self._conn is not None
            return self._conn

    async def _connect(self) -> None:
        known_hosts = self._read_known_hosts()
        tunnel: asyncssh.SSHClientConnection | None = None
        if self.jump is not None:
            self._jump_conn = tunnel = await self._connect_one(self.jump, known_hosts, None, "jump host")
        self._conn = await self._connect_one(self.target, known_hosts, tunnel, "SSH host")

    async def _connect_one(
        self,
        endpoint: SshEndpoint,
        known_hosts: asyncssh.SSHKnownHosts,
        tunnel: asyncssh.SSHClientConnection | None,
        role: str,
    ) -> asyncssh.SSHClientConnection:
        client = _Client(self, endpoint)
        self._clients.append(client)
        assert self._key is not None
        try:
            return await asyncssh.connect(
                endpoint.host,
                endpoint.port,
                tunnel=tunnel if tunnel is not None else (),
                username=endpoint.user if endpoint.user else (),
                client_factory=lambda: client,
                known_hosts=known_hosts,
                x509_trusted_certs=None,
                client_keys=[self._key],
                agent_path=None,
                config=[],  # ~/.ssh/config must not change what the settings say
                preferred_auth="publickey",
                connect_timeout=self.connect_timeout,
                keepalive_interval=self.keepalive_interval,
                keepalive_count_max=3,
            )
        except asyncssh.HostKeyNotVerifiable:
            raise self._refused(endpoint, client.refused_key, known_hosts, role) from None
        except asyncssh.PermissionDenied:
            raise DatabaseUnavailableError(
                f"{self.name}: the {role} {endpoint} refused the key {self.key_file}.",
                f"Add its public key ({self.key_file}.pub) to ~{endpoint.user or ''}/.ssh/authorized_keys "
                f"on {endpoint.host}, or check the user name.",
            ) from None
        except asyncssh.DisconnectError as exc:
            raise DatabaseUnavailableError(
                f"{self.name}: the {role} {endpoint} closed the connection: {exc.reason}.",
                "Check that it is an SSH server that accepts this user.",
            ) from None
        except (asyncssh.ChannelOpenError, TimeoutError, OSError) as exc:
            if isinstance(exc, asyncssh.ChannelOpenError):
                reason = f"the jump host {self.jump} could not open a connection to it: {exc.reason}"
            elif isinstance(exc, TimeoutError):
                reason = f"no answer within {self.connect_timeout:g}s"
            elif isinstance(exc, socket.gaierror) or not exc.errno:
                reason = exc.strerror or str(exc) or type(exc).__name__
            else:  # asyncio's "Connect call failed (addr)" says less than the errno
                reason = os.strerror(exc.errno)
            raise DatabaseUnavailableError(
                f"{self.name} cannot reach the {role} {endpoint.address}: {reason}.",
                "Check that the host is up and that the tunnel's host name and port are right.",
            ) from None

    def _refused(
        self,
        endpoint: SshEndpoint,
        key: asyncssh.SSHKey | None,
        known_hosts: asyncssh.SSHKnownHosts,
        role: str,
    ) -> DatabaseUnavailableError:
        """The message for a host key known_hosts does not list: unknown host, or a changed key."""
        port = endpoint.port if endpoint.port != 22 else None
        listed = known_hosts.match(endpoint.host, "", port)[0]
        fingerprint = key.get_fingerprint("sha256") if key is not None else "(not received)"
        pattern = f"[{endpoint.host}]:{endpoint.port}" if port else endpoint.host
        keyscan = f"ssh-keyscan -p {endpoint.port} {endpoint.host} >> {self.known_hosts}"
        if listed:
            return DatabaseUnavailableError(
                f"{self.name} refused the {role} {endpoint.address}: its host key {fingerprint} is not the "
                f"one {self.known_hosts} lists for it. The host was reinstalled, or someone is intercepting "
                "the connection.",
                f"Check the fingerprint {fingerprint} with the operator of {endpoint.host}; only then replace "
                f"the old key: ssh-keygen -R '{pattern}' -f {self.known_hosts} && {keyscan}",
            )
        return DatabaseUnavailableError(
            f"{self.name} refused the {role} {endpoint.address}: its host key {fingerprint} is not in "
            f"{self.known_hosts}" + ("" if self.known_hosts.exists() else " (the file does not exist)") + ".",
            f"Check the fingerprint {fingerprint} with the operator of {endpoint.host}, then: {keyscan}",
        )

    def _lost(self, client: _Client, exc: Exception | None) -> None:
        """An SSH connection ended: a failure to report, unless we closed it or it never opened
        (its connection attempt reports that), and only the first of a connection's end (a jump
        host's end also ends the connection through it)."""
        if self._closing or self._conn is None or client not in self._clients or self._lost_reported:
            return
        self._lost_reported = True
        role = "jump host" if len(self._clients) == 2 and client is self._clients[0] else "SSH host"
        why = f": {exc}" if exc is not None else " (closed by the server)"
        self._problem = DatabaseUnavailableError(
            f"{self.name} lost its connection to the {role} {client.endpoint.address}{why}.",
            "The tunnel connects again for the next connection; check the host if this repeats.",
        )
        log.warning("%s", self._problem.message)

    async def _disconnect(self) -> None:
        conns = [c for c in (self._conn, self._jump_conn) if c is not None]
        self._conn = self._jump_conn = None
        self._clients = []
        for conn in conns:
            conn.close()
        for conn in conns:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.wait_closed(), 5)

    # --- one local connection ----------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        try:
            channel = await self._open_channel()
            if channel is None:
                return
            chan_reader, chan_writer = channel
            try:
                await _pipe_both(reader, writer, chan_reader, chan_writer)
            finally:
                chan_writer.close()
        except asyncio.CancelledError:
            pass
        finally:
            self._pipes.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 5)

    async def _open_channel(self) -> tuple[asyncssh.SSHReader[bytes], asyncssh.SSHWriter[bytes]] | None:
        """A channel to the database; None (with `problem()` set) when the tunnel cannot make one."""
        try:
            conn = await self._connection()
            async with asyncio.timeout(self.connect_timeout):
                channel: tuple[asyncssh.SSHReader[bytes], asyncssh.SSHWriter[bytes]]
                channel = await conn.open_connection(self.database_host, self.database_port, encoding=None)
        except DatabaseUnavailableError as exc:
            log.warning("%s", exc.message)
            return None
        except asyncssh.ChannelOpenError as exc:
            self._problem = DatabaseUnavailableError(
                f"{self.name} could not open a connection from {self.target.host} to the database "
                f"{self.database_host}:{self.database_port}: {exc.reason}.",
                "Check that the bastion can reach the database and allows TCP forwarding to it "
                "(AllowTcpForwarding and PermitOpen in its sshd_config).",
            )
            log.warning("%s", self._problem.message)
            return None
        except (asyncssh.Error, OSError, TimeoutError) as exc:  # the connection dropped meanwhile
            reason = (
                f"no answer within {self.connect_timeout:g}s" if isinstance(exc, TimeoutError) else str(exc)
            )
            self._problem = DatabaseUnavailableError(
                f"{self.name} could not open a connection to the database "
                f"{self.database_host}:{self.database_port}: {reason}.",
                "The tunnel connects again for the next connection; check the bastion if this repeats.",
            )
            log.warning("%s", self._problem.message)
            return None
        self._problem = None
        return channel


async def _pipe_both(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    chan_reader: asyncssh.SSHReader[bytes],
    chan_writer: asyncssh.SSHWriter[bytes],
) -> None:
    """Copy bytes both ways until either side ends (EOF or error); the caller closes both."""
    upstream = asyncio.create_task(_copy(reader.read, chan_writer.write, chan_writer.drain))
    downstream = asyncio.create_task(_copy(chan_reader.read, writer.write, writer.drain))
    try:
        await asyncio.wait((upstream, downstream), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (upstream, downstream):
            task.cancel()
        await asyncio.gather(upstream, downstream, return_exceptions=True)


async def _copy(read: _Read, write: _Write, drain: _Drain) -> None:
    with contextlib.suppress(OSError, asyncssh.Error, asyncio.IncompleteReadError):
        while data := await read(CHUNK):
            write(data)
            await drain()
