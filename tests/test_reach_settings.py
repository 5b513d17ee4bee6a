"""The server reaching its database as its settings say: through an SSH bastion (a real sshd) and with a
password that rotates while it runs (a real role whose password changes)."""

from __future__ import annotations

import getpass
import secrets
import shlex
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from conftest import DemoDatabase
from mcp_helpers import mcp_client, text_of
from ssh_helpers import Sshd, keygen, sshd_missing_reason


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[tuple[Sshd, Path]]:
    if (reason := sshd_missing_reason()) is not None:
        pytest.skip(reason)
    key = keygen(tmp_path / "id_pg_mcp")
    server = Sshd(tmp_path / "sshd", [key])
    server.start()
    yield server, key
    server.kill()


def _ssh_settings(server: Sshd, key: Path, known_hosts: Path) -> dict[str, str]:
    return {
        "ssh": f"{getpass.getuser()}@127.0.0.1:{server.port}",
        "ssh_key": str(key),
        "ssh_known_hosts": str(known_hosts),
    }


async def test_a_database_behind_a_bastion_is_served_through_the_tunnel_and_recovers(
    pg: DemoDatabase, sshd: tuple[Sshd, Path], tmp_path: Path
) -> None:
    server, key = sshd
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(server.known_hosts_line())
    async with mcp_client(pg.url, **_ssh_settings(server, key, known_hosts), connect_timeout=5) as client:
        first = await client.call_tool("query", {"sql": "SELECT inet_client_addr() IS NOT NULL AS tunnelled"})
        assert not first.is_error, text_of(first)
        server.kill()  # the bastion goes away: its connections with it
        down = await client.call_tool("query", {"sql": "SELECT 1 AS one"})
        assert down.is_error and "SSH tunnel" in text_of(down), text_of(down)
        server.start()
        again = await client.call_tool("query", {"sql": "SELECT 2 AS two"})
        assert not again.is_error, text_of(again)


async def test_an_unknown_bastion_host_key_is_refused_with_the_way_to_trust_it(
    pg: DemoDatabase, sshd: tuple[Sshd, Path], tmp_path: Path
) -> None:
    server, key = sshd
    known_hosts = tmp_path / "known_hosts"
    other = keygen(tmp_path / "not_the_host_key")
    known_hosts.write_text(f"[127.0.0.1]:{server.port} {Path(f'{other}.pub').read_text()}")
    async with mcp_client(pg.url, **_ssh_settings(server, key, known_hosts), connect_timeout=5) as client:
        refused = await client.call_tool("query", {"sql": "SELECT 1 AS one"})
    text = text_of(refused)
    assert refused.is_error and "SSH tunnel" in text and "SHA256:" in text, text
    assert "ssh-keygen -R" in text or "ssh-keyscan" in text, text


@pytest.fixture
async def rotating_role(pg: DemoDatabase) -> AsyncIterator[str]:
    name = f"rotating_{secrets.token_hex(3)}"
    database = urlsplit(pg.admin_url).path.lstrip("/")
    await pg.admin_execute(
        f"CREATE ROLE {name} LOGIN PASSWORD 'first'; GRANT CONNECT ON DATABASE {database} TO {name}; "
        f"GRANT mcp_reader TO {name}"
    )
    yield name
    await pg.admin_execute(
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{name}'; "
        f"DROP OWNED BY {name}; DROP ROLE {name}"
    )


async def test_a_password_that_rotates_while_the_server_runs_is_read_again(
    pg: DemoDatabase, rotating_role: str, tmp_path: Path
) -> None:
    """The password comes from a command (any secret store): after it rotates, the server's next new
    connection is refused once, asks the command again and signs in, so no call fails."""
    secret = tmp_path / "password"
    secret.write_text("first\n")
    parts = urlsplit(pg.url)
    url = parts._replace(netloc=f"{quote(rotating_role)}@{parts.hostname}:{parts.port}").geturl()
    command = f"cat {shlex.quote(str(secret))}"
    async with mcp_client(url, password_command=command, password_cache=3600) as client:
        before = await client.call_tool("query", {"sql": "SELECT current_user AS who"})
        assert not before.is_error, text_of(before)
        await pg.admin_execute(f"ALTER ROLE {rotating_role} PASSWORD 'second'")
        secret.write_text("second\n")
        # every open connection ends: the next call needs a new one, with the new password
        await pg.admin_execute(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{rotating_role}'"
        )
        after = await client.call_tool("query", {"sql": "SELECT current_user AS who"})
    assert not after.is_error, text_of(after)
    assert "first" not in text_of(after) and "second" not in text_of(after)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"ssh": "deploy@bastion"}, "PG_MCP_SSH needs PG_MCP_SSH_KEY"),
        ({"password_command": "cat pw", "aws_iam": True}, "both give the password: choose one"),
    ],
)
def test_reach_settings_that_cannot_work_are_refused_at_start_up(
    settings: dict[str, object], message: str
) -> None:
    from pg_mcp.config import load_settings
    from pg_mcp.errors import ConfigError

    with pytest.raises(ConfigError) as refused:
        load_settings({"database_url": "postgresql://u@db.example.com/d", **settings}, dotenv=False)
    assert message in str(refused.value), refused.value
