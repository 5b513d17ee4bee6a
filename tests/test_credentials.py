"""Passwords that change, against the real test database.

PasswordCommand runs real shell commands (cat, sleep, yes); its password is set on a real role and
rotated with ALTER ROLE. RdsIamToken signs with botocore and fake AWS credentials from the
environment (no network: the token is computed locally), its signature is checked independently,
and the token is made a role's password so that asyncpg logs in with it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import importlib.util
import secrets
import shlex
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import asyncpg
import pytest
from conftest import DemoDatabase

from pg_mcp.database.credentials import MAX_OUTPUT, PasswordCommand, RdsIamToken, rds_region
from pg_mcp.errors import ConfigError, DatabaseUnavailableError

needs_botocore = pytest.mark.skipif(
    importlib.util.find_spec("botocore") is None,
    reason='botocore is not installed (pip install "pg-explorer-mcp[aws]")',
)

ACCESS_KEY = "AKIDEXAMPLEPGMCP0001"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
RDS_HOST = "orders.c1a2b3c4d5e6.eu-west-1.rds.amazonaws.com"


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Role:
    """A login role of the test database, and where to connect as it."""

    name: str
    host: str
    port: int
    database: str

    async def connect(self, password: object) -> asyncpg.Connection:
        async with asyncio.timeout(30):
            return await asyncpg.connect(
                host=self.host,
                port=self.port,
                user=self.name,
                database=self.database,
                password=password,
                ssl=False,
                timeout=20,
            )


@pytest.fixture
async def role(pg: DemoDatabase) -> AsyncIterator[Role]:
    parts = urlsplit(pg.admin_url)
    assert parts.hostname and parts.port
    database = parts.path.lstrip("/")
    name = f"rotating_{secrets.token_hex(4)}"
    await pg.admin_execute(
        f"CREATE ROLE {name} LOGIN PASSWORD 'first-{name}'; GRANT CONNECT ON DATABASE {database} TO {name};"
    )
    yield Role(name, parts.hostname, parts.port, database)
    await pg.admin_execute(
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{name}'; "
        f"REVOKE CONNECT ON DATABASE {database} FROM {name}; DROP ROLE {name};"
    )


async def _set_password(pg: DemoDatabase, role: str, password: str) -> None:
    conn = await asyncpg.connect(pg.admin_url)
    try:
        statement = await conn.fetchval(
            "SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)", role, password
        )
        await conn.execute(statement)
    finally:
        await conn.close()


# --- PasswordCommand --------------------------------------------------------------------------------


async def test_rotated_password_is_read_again_after_forget(
    pg: DemoDatabase, role: Role, tmp_path: Path
) -> None:
    secret_file = tmp_path / "password"
    secret_file.write_text(f"first-{role.name}\n")
    password = PasswordCommand(f"cat {shlex.quote(str(secret_file))}", cache_seconds=3600, timeout=10)

    conn = await role.connect(password)
    try:
        assert await conn.fetchval("SELECT current_user") == role.name
    finally:
        await conn.close()

    # The password rotates: the server and the file change, the cache still holds the old one.
    await _set_password(pg, role.name, f"second-{role.name}")
    secret_file.write_text(f"second-{role.name}\n")
    with pytest.raises(asyncpg.InvalidPasswordError):
        await role.connect(password)

    password.forget()  # what the caller does after an authentication failure
    conn = await role.connect(password)
    try:
        assert await conn.fetchval("SELECT current_user") == role.name
    finally:
        await conn.close()


async def test_one_run_for_concurrent_callers_and_the_cache_expiry(role: Role, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    secret_file = tmp_path / "password"
    secret_file.write_text(f"first-{role.name}\n")
    clock = Clock()
    command = f"echo run >> {shlex.quote(str(runs))}; cat {shlex.quote(str(secret_file))}"
    password = PasswordCommand(command, cache_seconds=60, timeout=10, clock=clock)

    async with asyncio.timeout(60):
        pool = await asyncpg.create_pool(
            host=role.host,
            port=role.port,
            user=role.name,
            database=role.database,
            password=password,
            ssl=False,
            min_size=4,
            max_size=4,
        )
    try:
        assert pool.get_size() == 4
        assert runs.read_text().count("run") == 1  # four connections, one run
        answers = await asyncio.gather(*(password() for _ in range(10)))
        assert set(answers) == {f"first-{role.name}"} and runs.read_text().count("run") == 1

        clock.now += 59
        await password()
        assert runs.read_text().count("run") == 1
        clock.now += 2  # past cache_seconds
        await asyncio.gather(*(password() for _ in range(5)))
        assert runs.read_text().count("run") == 2
    finally:
        await pool.close()


@pytest.mark.parametrize(
    ("printed", "password"),
    [
        ("pw\\n", "pw"),
        ("pw", "pw"),
        ("two words \\n", "two words "),
        ("crlf\\r\\n", "crlf"),
        ("a\\nb\\n", "a\\nb"),
    ],
)
async def test_one_trailing_newline_is_stripped(printed: str, password: str) -> None:
    command = PasswordCommand(f"printf '{printed}'", cache_seconds=0, timeout=10)
    assert await command() == password.replace("\\n", "\n")


async def test_failing_command_names_the_setting_and_stderr_not_stdout() -> None:
    command = PasswordCommand(
        "echo s3cr3t-output; echo 'vault: permission denied for secret/db' >&2; echo 'second line' >&2; exit 3",
        cache_seconds=60,
        timeout=10,
    )
    with pytest.raises(DatabaseUnavailableError) as caught:
        await command()
    text = str(caught.value)
    assert "password_command exited with status 3: vault: permission denied for secret/db" in text
    assert "s3cr3t-output" not in text and "second line" not in text

    long_line = PasswordCommand("printf 'e%.0s' $(seq 1 500) >&2; exit 1", cache_seconds=60, timeout=10)
    with pytest.raises(DatabaseUnavailableError) as caught:
        await long_line()
    shown = caught.value.message.split(": ", 1)[1]
    assert shown.startswith("eeee") and len(shown) == 200

    killed = PasswordCommand("kill -9 $$", cache_seconds=60, timeout=10)
    with pytest.raises(DatabaseUnavailableError, match="password_command was killed by signal 9"):
        await killed()

    silent = PasswordCommand("exit 0", cache_seconds=60, timeout=10)
    with pytest.raises(DatabaseUnavailableError, match="printed no password"):
        await silent()

    with pytest.raises(ConfigError, match="password_command is empty"):
        PasswordCommand("  ")


async def test_a_failure_is_not_cached(tmp_path: Path) -> None:
    flag = tmp_path / "ready"
    command = PasswordCommand(
        f"test -e {shlex.quote(str(flag))} || exit 1; echo ok", cache_seconds=3600, timeout=10
    )
    with pytest.raises(DatabaseUnavailableError, match="status 1"):
        await command()
    flag.touch()
    assert await command() == "ok"


async def test_output_over_64_kib_is_refused() -> None:
    exactly = PasswordCommand(f"head -c {MAX_OUTPUT} /dev/zero | tr '\\0' a", cache_seconds=0, timeout=30)
    assert await exactly() == "a" * MAX_OUTPUT

    over = PasswordCommand(f"head -c {MAX_OUTPUT + 1} /dev/zero | tr '\\0' a", cache_seconds=0, timeout=30)
    with pytest.raises(DatabaseUnavailableError, match="more than 64 KiB") as caught:
        await over()
    assert "aaaa" not in str(caught.value)

    # A command that never stops printing is stopped at the limit, not at its timeout.
    endless = PasswordCommand("yes password", cache_seconds=0, timeout=120)
    with pytest.raises(DatabaseUnavailableError, match="more than 64 KiB"):
        async with asyncio.timeout(60):
            await endless()


def _gone(pid: int) -> bool:
    """Whether a process has ended (a zombie no one reaped yet has ended too)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return True
    return fields[0] in ("Z", "X")


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
async def test_slow_command_is_killed_at_its_timeout(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    # The shell starts a child that outlives it unless the whole process group is killed.
    command = PasswordCommand(
        f"sleep 300 & echo $! > {shlex.quote(str(pids))}; wait", cache_seconds=0, timeout=0.5
    )
    with pytest.raises(DatabaseUnavailableError, match=r"did not finish within 0\.5s and was stopped"):
        async with asyncio.timeout(60):
            await command()
    sleeper = int(pids.read_text())
    deadline = time.monotonic() + 20
    while not _gone(sleeper):
        assert time.monotonic() < deadline, "the command's child survived its timeout"
        await asyncio.sleep(0.05)


def test_repr_hides_the_command() -> None:
    assert "hunter2" not in repr(PasswordCommand("vault read -token=hunter2 db", cache_seconds=1, timeout=1))


# --- RdsIamToken ------------------------------------------------------------------------------------


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake static credentials, and nothing else botocore could find or ask (no files, no metadata)."""
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _check_signature(token: str, host: str, port: int) -> dict[str, str]:
    """The token's query parameters, after checking its AWS Signature V4 with the secret key."""
    base, _, query = token.partition("?")
    assert base == f"{host}:{port}/"
    params = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=True))
    signature = params.pop("X-Amz-Signature")
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params.items())
    )
    canonical_request = "\n".join(
        ["GET", "/", canonical_query, f"host:{host}:{port}", "", "host", hashlib.sha256(b"").hexdigest()]
    )
    day, region, service, terminator = params["X-Amz-Credential"].split("/")[1:]
    scope = f"{day}/{region}/{service}/{terminator}"
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            params["X-Amz-Date"],
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{SECRET_KEY}".encode(), day), region), service), terminator)
    assert hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest() == signature
    return params


def test_region_from_the_host_name() -> None:
    assert rds_region(RDS_HOST) == "eu-west-1"
    assert rds_region("reports.cluster-ro-abc123.us-gov-west-1.rds.amazonaws.com") == "us-gov-west-1"
    assert rds_region("px.proxy-abc123.ap-southeast-2.rds.amazonaws.com.") == "ap-southeast-2"
    assert rds_region("db.abc123.cn-north-1.rds.amazonaws.com.cn") == "cn-north-1"
    assert rds_region("db.example.com") is None
    assert rds_region("eu-west-1.rds.amazonaws.com.example.com") is None


@needs_botocore
@pytest.mark.usefixtures("aws_env")
async def test_token_form_and_signature() -> None:
    token = await RdsIamToken(RDS_HOST, 5432, "iam_reader")()
    assert token.startswith(
        f"{RDS_HOST}:5432/?Action=connect&DBUser=iam_reader&X-Amz-Algorithm=AWS4-HMAC-SHA256&"
    )
    params = _check_signature(token, RDS_HOST, 5432)
    assert params["X-Amz-Expires"] == "900"
    assert params["X-Amz-SignedHeaders"] == "host"
    assert params["X-Amz-Credential"].startswith(f"{ACCESS_KEY}/")
    assert params["X-Amz-Credential"].endswith("/eu-west-1/rds-db/aws4_request")
    assert SECRET_KEY not in token

    china = await RdsIamToken("db.abc123.cn-north-1.rds.amazonaws.com.cn", 5432, "u")()
    assert "/cn-north-1/rds-db/aws4_request" in dict(parse_qsl(china.partition("?")[2]))["X-Amz-Credential"]

    given = await RdsIamToken("db.internal.example.com", 6543, "u", region="ca-central-1")()
    assert (
        "/ca-central-1/rds-db/"
        in _check_signature(given, "db.internal.example.com", 6543)["X-Amz-Credential"]
    )


@needs_botocore
def test_a_host_without_a_region_needs_one() -> None:
    with pytest.raises(ConfigError, match="needs the AWS region") as caught:
        RdsIamToken("db.internal.example.com", 5432, "u")
    assert caught.value.hint is not None and "region" in caught.value.hint


@needs_botocore
@pytest.mark.usefixtures("aws_env")
async def test_token_is_reused_then_refreshed() -> None:
    clock = Clock()
    token = RdsIamToken(RDS_HOST, 5432, "iam_reader", clock=clock)
    first = await token()
    await asyncio.sleep(1.1)  # a new token would carry a later X-Amz-Date (whole seconds)
    clock.now += 9 * 60
    assert await token() == first  # still reused
    clock.now += 61  # ten minutes and a second since it was signed
    second = await token()
    assert second != first
    assert (
        dict(parse_qsl(second.partition("?")[2]))["X-Amz-Date"]
        > dict(parse_qsl(first.partition("?")[2]))["X-Amz-Date"]
    )
    assert await token() == second
    token.forget()
    await asyncio.sleep(1.1)
    assert await token() != second


@needs_botocore
@pytest.mark.usefixtures("aws_env")
async def test_token_is_the_password(pg: DemoDatabase, role: Role) -> None:
    # The test database stands in for RDS: the role's password is the token the object hands out.
    clock = Clock()
    token = RdsIamToken(RDS_HOST, 5432, role.name, clock=clock)
    await _set_password(pg, role.name, await token())
    conn = await role.connect(token)
    try:
        assert await conn.fetchval("SELECT current_user") == role.name
    finally:
        await conn.close()

    # Ten minutes on, the next connection gets a new token (which this stand-in does not accept).
    await asyncio.sleep(1.1)
    clock.now += 601
    with pytest.raises(asyncpg.InvalidPasswordError):
        await role.connect(token)


@needs_botocore
async def test_no_credentials(monkeypatch: pytest.MonkeyPatch, aws_env: None) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(DatabaseUnavailableError, match="found no AWS credentials"):
        async with asyncio.timeout(60):
            await RdsIamToken(RDS_HOST, 5432, "u")()


def test_missing_botocore_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "botocore", None)  # as if not installed
    with pytest.raises(ConfigError) as caught:
        RdsIamToken(RDS_HOST, 5432, "u")
    assert caught.value.hint == 'pip install "pg-explorer-mcp[aws]"'
