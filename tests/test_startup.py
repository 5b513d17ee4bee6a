"""Start-up does only what `initialize` needs: the rest (databases, parsers, pools) waits for its answer."""

from __future__ import annotations

import asyncio
import gc
import socket
import subprocess
import sys
from typing import cast

import pytest
from mcp_helpers import ROOT, server_env

from pg_mcp import explore
from pg_mcp.cli import main
from pg_mcp.server.stdio import _Writer

INITIALIZE_ANSWER = '{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25"}}\n'


class _Pipe:
    """What `_Writer` uses of an asyncio.StreamWriter, keeping what is written."""

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return False

    async def drain(self) -> None:
        return None


async def test_the_initialize_answer_is_announced_once_and_only_it() -> None:
    pipe, announced = _Pipe(), []
    out = _Writer(
        cast(asyncio.StreamWriter, pipe), on_initialized=lambda: announced.append(len(pipe.written))
    )
    out.expect(1)
    out.watch_initialize(1)
    out.expect(2)
    await out.write('{"jsonrpc":"2.0","id":2,"error":{"code":-32600,"message":"no"}}\n')
    assert announced == []
    await out.write(INITIALIZE_ANSWER)
    assert announced == [2], "announced once the answer is written"
    out.expect(1)  # a second initialize with the same id is answered, not announced again
    await out.write(INITIALIZE_ANSWER)
    assert announced == [2]


def test_a_server_never_initialised_loads_no_parser_and_opens_no_pool() -> None:
    """Over stdio, nothing a call needs is done until the client has its `initialize` answer: a client
    that leaves at once costs no connection, and the parsers, the role report and the tools' modules
    are never imported (`-X importtime` lists every module the process imported)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "pg_mcp", f"postgresql://u:p@127.0.0.1:{port}/db"],
            input=b"", capture_output=True, timeout=120, env=server_env(), cwd=ROOT,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
        with pytest.raises(BlockingIOError):
            listener.accept()  # the server has exited: any connection it made would be waiting here
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.decode().splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "mcp" in imported and "pg_mcp.server.app" in imported, "the listing is complete"
    never = {
        "sqlglot",
        "pglast",
        "tomllib",
        "pg_mcp.guard.sqlglot_reading",
        "pg_mcp.guard.postgres_reading",
        "pg_mcp.database.role_report",
        "pg_mcp.explore.statements",
        "pg_mcp.explore.catalog_tools",
        "pg_mcp.server.http",
        "pg_mcp.server.oauth",
        "asyncpg",
        "pg_mcp.database.executor",
    }
    assert never.isdisjoint(imported), sorted(never & imported)


@pytest.mark.parametrize(
    "argv", [["role-sql"], ["serve", "--max-rows", "many"]], ids=["role-sql", "config error"]
)
def test_the_command_line_leaves_the_collector_on(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """`main` pauses the cyclic garbage collector for start-up only: whoever calls it gets it back on."""
    assert gc.isenabled()
    main(argv)
    assert gc.isenabled()
    capsys.readouterr()


def test_the_tools_are_imported_at_their_first_use() -> None:
    for name in explore.__all__:  # each public name resolves to its module's object
        assert getattr(explore, name) is getattr(sys.modules[getattr(explore, name).__module__], name)
    assert callable(explore.query) and callable(explore.list_tables)
    assert {"DatabaseContext", "query", "table_page"} <= set(dir(explore))
    with pytest.raises(AttributeError):
        _ = explore.no_such_tool  # type: ignore[attr-defined]
