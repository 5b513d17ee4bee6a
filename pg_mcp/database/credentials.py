"""Database passwords that change: from a command, or an RDS IAM authentication token.

asyncpg accepts `password=` as a callable that returns the password (or an awaitable of it) and calls
it for every new connection, the pool's included. Both classes here are such callables, and both
cache their answer, so a pool that opens ten connections runs the command (or signs a token) once:

* `PasswordCommand` runs a shell command (a secrets manager's client, say) and uses what it prints.
  After an authentication failure call `forget()`: the next connection runs the command again,
  which picks up a rotated password without waiting for the cache to expire.
* `RdsIamToken` signs an RDS IAM authentication token with the AWS credentials botocore finds (the
  environment, a profile, an instance or task role). The token is computed locally, with no
  request to AWS, and is valid for 15 minutes; it is signed again after 10.

Failures raise DatabaseUnavailableError naming the setting; no message or log line carries a
password, a token or the command's output.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from pg_mcp.errors import ConfigError, DatabaseUnavailableError

log = logging.getLogger(__name__)

#: The most a password command may print; more is refused (a password is far shorter).
MAX_OUTPUT = 64 * 1024
#: The most of a failing command's standard error that is read (its first line is shown).
MAX_STDERR = 64 * 1024
#: How much of that first line a message shows.
STDERR_SHOWN = 200

AWS_EXTRA_HINT = 'RDS IAM authentication needs botocore: pip install "pg-explorer-mcp[aws]"'


class PasswordCommand:
    """`password=` for asyncpg: the output of `command`, run by the shell, cached for `cache_seconds`.

    The command gets no standard input; its standard output, less one trailing newline, is the
    password. It must finish within `timeout` seconds (else it is killed, with any process it
    started in its process group) and print at most 64 KiB. Concurrent connections share one run.
    """

    def __init__(
        self,
        command: str,
        cache_seconds: float = 300.0,
        timeout: float = 10.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not command.strip():
            raise ConfigError("password_command is empty.", "Give the command that prints the password.")
        self._command = command
        self.cache_seconds = cache_seconds
        self.timeout = timeout
        self._clock = clock
        self._lock = asyncio.Lock()
        self._password: str | None = None
        self._fetched_at = 0.0

    def __repr__(self) -> str:  # the command line may itself hold a secret
        return f"PasswordCommand(cache_seconds={self.cache_seconds:g}, timeout={self.timeout:g})"

    async def __call__(self) -> str:
        async with self._lock:
            if self._password is not None and self._clock() - self._fetched_at < self.cache_seconds:
                return self._password
            password = await self._run()
            self._password, self._fetched_at = password, self._clock()
            return password

    def forget(self) -> None:
        """Drop the cached password: the next connection runs the command again."""
        self._password = None

    async def _run(self) -> str:
        started = time.monotonic()
        try:
            proc = await asyncio.create_subprocess_shell(
                self._command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=sys.platform != "win32",  # its own process group, to kill what it starts
            )
        except OSError as exc:  # no shell, no process or file left
            raise DatabaseUnavailableError(
                f"password_command could not be started: {exc.strerror or exc}."
            ) from None
        assert proc.stdout is not None and proc.stderr is not None
        try:
            async with asyncio.timeout(self.timeout):
                (out, too_long), (err, _) = await asyncio.gather(
                    _read_bounded(proc.stdout, MAX_OUTPUT, over=lambda: _kill(proc)),
                    _read_bounded(proc.stderr, MAX_STDERR),
                )
                await proc.wait()
        except TimeoutError:
            _kill(proc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await proc.wait()
            raise DatabaseUnavailableError(
                f"password_command did not finish within {self.timeout:g}s and was stopped.",
                "Check that the command works from this machine without a prompt (it gets no input).",
            ) from None
        finally:
            _kill(proc)  # still running only when cancelled (the connection attempt was given up)
        if too_long:
            raise DatabaseUnavailableError(
                f"password_command printed more than {MAX_OUTPUT // 1024} KiB; that is not a password.",
                "Make the command print only the password.",
            )
        status = proc.returncode
        if status != 0:
            how = (
                f"was killed by signal {-status}"
                if status is not None and status < 0
                else f"exited with status {status}"
            )
            first = err.decode(errors="replace").strip().splitlines()
            said = f": {_shorten(first[0])}" if first else " and wrote nothing to standard error"
            raise DatabaseUnavailableError(
                f"password_command {how}{said}", "Run the command by hand to see why it fails."
            )
        try:
            password = out.decode()
        except UnicodeDecodeError:
            raise DatabaseUnavailableError(
                "password_command printed something that is not UTF-8 text.",
                "Make the command print only the password.",
            ) from None
        password = password.removesuffix("\n").removesuffix("\r")
        if not password:
            raise DatabaseUnavailableError(
                "password_command exited with status 0 but printed no password.",
                "Make the command print the password on its standard output.",
            )
        log.debug("password_command ran in %.2fs", time.monotonic() - started)
        return password


async def _read_bounded(
    stream: asyncio.StreamReader, limit: int, over: Callable[[], None] | None = None
) -> tuple[bytes, bool]:
    """At most `limit` bytes of a stream, and whether it had more. With `over`, reading stops there
    and `over` is called (to stop the writer); without, the rest is read and dropped, so that the
    writer never blocks on a full pipe."""
    data = bytearray()
    too_long = False
    while chunk := await stream.read(65536):
        room = limit - len(data)
        if len(chunk) <= room:
            data += chunk
            continue
        data += chunk[: max(room, 0)]
        too_long = True
        if over is not None:
            over()
            break
    return bytes(data), too_long


def _kill(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL to a command still running, with its process group (what the shell started)."""
    if proc.returncode is not None:
        return  # exited and reaped: its pid may be another process's by now
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if sys.platform == "win32":
            proc.kill()
        else:
            os.killpg(proc.pid, signal.SIGKILL)


def _shorten(line: str) -> str:
    return line if len(line) <= STDERR_SHOWN else line[: STDERR_SHOWN - 1] + "…"


#: The region in an RDS endpoint: name.id.REGION.rds.amazonaws.com (or .amazonaws.com.cn in China).
_RDS_HOST = re.compile(
    r"\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)\.rds\.amazonaws\.com(?:\.cn)?\.?$", re.IGNORECASE
)


def rds_region(host: str) -> str | None:
    """The AWS region an RDS (or RDS Proxy, or Aurora) endpoint names, or None."""
    match = _RDS_HOST.search(host)
    return match["region"].lower() if match else None


class RdsIamToken:
    """`password=` for asyncpg: an RDS IAM authentication token for `user` at `host`:`port`.

    `host` and `port` are the database's own endpoint (the token is signed for them), even when the
    connection goes through a tunnel. The region comes from the host name unless given. A token is
    valid for 15 minutes; one is reused for `refresh_after` seconds (10 minutes), then signed anew.
    Needs botocore (`pip install "pg-explorer-mcp[aws]"`).
    """

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        region: str | None = None,
        *,
        refresh_after: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        try:
            found = importlib.util.find_spec("botocore") is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise ConfigError(
                "RDS IAM authentication needs botocore, which is not installed.",
                'pip install "pg-explorer-mcp[aws]"',
            )
        self.host = host
        self.port = port
        self.user = user
        self.region = region or rds_region(host)
        if not self.region:
            raise ConfigError(
                f"RDS IAM authentication needs the AWS region, and the host {host!r} does not name one "
                "(an RDS endpoint ends in .REGION.rds.amazonaws.com).",
                "Give the region explicitly, e.g. eu-west-1.",
            )
        self.refresh_after = refresh_after
        self._clock = clock
        self._lock = asyncio.Lock()
        self._client: Any = None
        self._token: str | None = None
        self._made_at = 0.0

    def __repr__(self) -> str:
        return f"RdsIamToken({self.user}@{self.host}:{self.port}, region={self.region})"

    async def __call__(self) -> str:
        async with self._lock:
            if self._token is not None and self._clock() - self._made_at < self.refresh_after:
                return self._token
            # In a thread: botocore loads its service model and may fetch credentials (an instance role's).
            token = await asyncio.to_thread(self._sign)
            self._token, self._made_at = token, self._clock()
            return token

    def forget(self) -> None:
        """Drop the cached token: the next connection signs a new one."""
        self._token = None

    def _sign(self) -> str:
        exceptions = importlib.import_module("botocore.exceptions")
        try:
            if self._client is None:
                session = importlib.import_module("botocore.session").get_session()
                self._client = session.create_client("rds", region_name=self.region)
            token: str = self._client.generate_db_auth_token(
                DBHostname=self.host, Port=self.port, DBUsername=self.user
            )
        except exceptions.NoCredentialsError:
            raise DatabaseUnavailableError(
                "RDS IAM authentication found no AWS credentials to sign a token with.",
                "Give this process AWS credentials: AWS_PROFILE, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "or an instance or task role allowed rds-db:connect.",
            ) from None
        except exceptions.BotoCoreError as exc:
            raise DatabaseUnavailableError(
                f"RDS IAM authentication could not sign a token: {exc}",
                "Check this process's AWS configuration (profile, credentials, region).",
            ) from None
        log.debug("signed an RDS IAM token for %s@%s:%d (%s)", self.user, self.host, self.port, self.region)
        return token
