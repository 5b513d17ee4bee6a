"""Where and as whom a database's connections are opened: its URL, through an SSH tunnel when one is
set (`tunnel`), with a password from a command or an AWS RDS IAM token when one is set (`credentials`).

Every connection pg-mcp opens (the pool's, readiness's, the one that ends an abandoned backend) takes
its arguments from here, and every failure to connect is explained here: a tunnel's own failure is
named as the tunnel's, not blamed on the database.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import asyncpg

from pg_mcp.database.driver_errors import unavailable
from pg_mcp.errors import ConfigError, DatabaseUnavailableError

if TYPE_CHECKING:  # the tunnel and the signers are imported only when a database uses them
    from pg_mcp.config import DatabaseSettings
    from pg_mcp.database.credentials import PasswordCommand, RdsIamToken
    from pg_mcp.database.tunnel import SshTunnel


class Endpoint:
    """One database's connection arguments, and the explanation of a failure to connect."""

    def __init__(self, settings: DatabaseSettings) -> None:
        self._settings = settings
        self._tunnel: SshTunnel | None = None
        self._tunnel_args: dict[str, Any] | None = None
        self._lock = asyncio.Lock()
        self.password: PasswordCommand | RdsIamToken | None = _password_source(settings)

    @property
    def dsn(self) -> str:
        """The database's URL (ConfigError when none was given)."""
        return self._settings.dsn

    async def connect_args(self) -> dict[str, Any]:
        """Keyword arguments for `asyncpg.connect` and `create_pool` beside the URL: the tunnel's local
        address (started at the first connection) and the password source, when set."""
        args: dict[str, Any] = {}
        if self._settings.ssh:
            args.update(await self._through_tunnel())
        if self.password is not None:
            args["password"] = self.password
        return args

    async def _through_tunnel(self) -> dict[str, Any]:
        async with self._lock:
            if self._tunnel_args is None:
                self._tunnel = _tunnel(self._settings)
                address = await self._tunnel.start()
                self._tunnel_args = {"host": address.host, "port": address.port}
            return self._tunnel_args

    def password_rotated(self, exc: BaseException) -> bool:
        """Whether `exc` refused a password from the password source: then it is forgotten, so that the
        next connection asks the source again (the password rotated since it was read)."""
        if isinstance(exc, asyncpg.InvalidPasswordError) and self.password is not None:
            self.password.forget()
            return True
        return False

    def unavailable(self, exc: BaseException) -> DatabaseUnavailableError:
        """Why a connection failed: the tunnel's own failure when it has one, else the database's."""
        self.password_rotated(exc)
        if isinstance(exc, DatabaseUnavailableError):  # the password source's own failure, said already
            return exc
        problem = self._tunnel.problem() if self._tunnel is not None else None
        return problem if problem is not None else unavailable(exc, self.dsn)

    async def close(self) -> None:
        if self._tunnel is not None:
            await self._tunnel.close()
            self._tunnel, self._tunnel_args = None, None


def _tunnel(settings: DatabaseSettings) -> SshTunnel:
    from pg_mcp.database.tunnel import SshTunnel

    host, port, _ = _target(settings.dsn)
    passphrase = None
    if settings.ssh_key_passphrase_env:
        passphrase = os.environ.get(settings.ssh_key_passphrase_env)
        if passphrase is None:
            raise ConfigError(
                f"The SSH key's passphrase is to be read from {settings.ssh_key_passphrase_env}, which is not set.",
                f"Set {settings.ssh_key_passphrase_env} in the server's environment.",
            )
    assert settings.ssh is not None and settings.ssh_key is not None  # checked with the settings
    return SshTunnel(
        settings.ssh,
        key_file=settings.ssh_key,
        key_passphrase=passphrase,
        known_hosts=settings.ssh_known_hosts,
        jump=settings.ssh_jump,
        database_host=host,
        database_port=port,
        connect_timeout=settings.connect_timeout,
        # TLS to the database needs a TCP listener: asyncpg never uses TLS over a unix socket
        listen="tcp" if settings.aws_iam or _requires_tls(settings.dsn) else None,
    )


def _password_source(settings: DatabaseSettings) -> PasswordCommand | RdsIamToken | None:
    if settings.password_command:
        from pg_mcp.database.credentials import PasswordCommand

        return PasswordCommand(
            settings.password_command, cache_seconds=settings.password_cache, timeout=settings.connect_timeout
        )
    if settings.aws_iam:
        from pg_mcp.database.credentials import RdsIamToken

        host, port, user = _target(settings.dsn)
        return RdsIamToken(host, port, user, settings.aws_region)
    return None


def _target(dsn: str) -> tuple[str, int, str]:
    """The database's own host, port and user from its URL (the first host of a list): where the
    tunnel leads, and what an IAM token is signed for."""
    parts = urlsplit(dsn)
    host_part = parts.netloc.rpartition("@")[2].split(",")[0]
    spec = urlsplit(f"//{host_part}")
    host = unquote(spec.hostname or "") or "localhost"
    return host, spec.port or 5432, unquote(parts.username or "")


def _requires_tls(dsn: str) -> bool:
    query = urlsplit(dsn).query.lower()
    return any(f"sslmode={mode}" in query for mode in ("require", "verify-ca", "verify-full"))
