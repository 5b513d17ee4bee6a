"""A stateless request answered in its own task gets the answer the SDK's transport gives it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from conftest import DemoDatabase
from factories import server_for
from starlette.types import ASGIApp, Message

from pg_mcp.server.app import PgMcpServer
from pg_mcp.server.single_exchange import single_exchange

HEADERS = [(b"accept", b"application/json, text/event-stream"), (b"content-type", b"application/json"),
           (b"host", b"127.0.0.1:8000")]  # fmt: skip

REQUESTS: list[tuple[str, dict[str, Any] | None]] = [
    ("ping", None),
    ("tools/list", {}),
    (
        "tools/call",
        {"name": "query", "arguments": {"sql": "SELECT id, status FROM sales.orders WHERE id = 7"}},
    ),
    ("tools/call", {"name": "query", "arguments": {"sql": "DELETE FROM sales.orders"}}),
    ("tools/call", {"name": "query", "arguments": {"sql": 42}}),
    ("tools/call", {"name": "query", "arguments": {"sql": "SELECT 1", "surplus": True}}),
    ("tools/call", {"name": "no_such_tool", "arguments": {}}),
    ("tools/call", {"arguments": {}}),
    ("tools/call", {"name": "describe_table", "arguments": {"table": "sales.orders"}}),
    ("resources/list", {}),
    ("resources/templates/list", {}),
    ("resources/read", {"uri": "postgres://nowhere/at/all"}),
    ("prompts/list", {}),
    ("no/such/method", {}),
]


def scope(headers: list[tuple[bytes, bytes]] = HEADERS) -> dict[str, Any]:
    return {"type": "http", "http_version": "1.1", "method": "POST", "scheme": "http", "path": "/mcp",
            "raw_path": b"/mcp", "query_string": b"", "root_path": "", "headers": headers,
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "asgi": {"version": "3.0"}}  # fmt: skip


async def post(app: ASGIApp, message: Any, headers: list[tuple[bytes, bytes]] = HEADERS) -> tuple[int, Any]:
    """Status and decoded JSON body of one POST through an ASGI app."""
    body = json.dumps(message).encode()
    sent: list[Message] = []
    given = False

    async def receive() -> Message:
        nonlocal given
        if given:
            return {"type": "http.disconnect"}
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope(headers), receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(payload) if payload else None


@asynccontextmanager
async def served(pg: DemoDatabase) -> AsyncIterator[tuple[PgMcpServer, ASGIApp]]:
    """The server and the SDK's stateless app of it, running."""
    server = server_for(pg.url)
    sdk_app = server.streamable_http_app(stateless_http=True, json_response=True, host="127.0.0.1")
    async with server.session_manager.run():
        yield server, sdk_app


@pytest.mark.parametrize(("method", "params"), REQUESTS, ids=[f"{m} {p}"[:60] for m, p in REQUESTS])
async def test_the_answer_is_the_sdk_transports(
    pg: DemoDatabase, method: str, params: dict[str, Any] | None
) -> None:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": 7, "method": method}
    if params is not None:
        message["params"] = params
    async with served(pg) as (server, sdk_app):
        answering = single_exchange(server.lowlevel, scope(), message)
        assert answering is not None
        ours = await post(answering, message)
        theirs = await post(sdk_app, message)
    assert ours == theirs
    assert ours[0] == 200 and ours[1]["id"] == 7


@pytest.mark.parametrize(
    ("message", "headers"),
    [
        ({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}, HEADERS),
        ({"jsonrpc": "2.0", "method": "notifications/initialized"}, HEADERS),
        ([{"jsonrpc": "2.0", "id": 1, "method": "ping"}], HEADERS),
        ({"jsonrpc": "2.0", "id": 1, "result": {}}, HEADERS),
        ({"jsonrpc": "1.0", "id": 1, "method": "ping"}, HEADERS),
        ({"jsonrpc": "2.0", "id": [1], "method": "ping"}, HEADERS),
        ({"jsonrpc": "2.0", "id": 1, "method": "ping"}, [*HEADERS, (b"mcp-protocol-version", b"2026-07-28")]),
        ({"jsonrpc": "2.0", "id": 1, "method": "ping"}, [*HEADERS, (b"mcp-protocol-version", b"1999-01-01")]),
        ({"jsonrpc": "2.0", "id": 1, "method": "ping"}, [(b"accept", b"text/event-stream"), HEADERS[1]]),
        ({"jsonrpc": "2.0", "id": 1, "method": "ping"}, [HEADERS[0], (b"content-type", b"text/plain")]),
    ],
    ids=[
        "initialize",
        "notification",
        "batch",
        "response",
        "not 2.0",
        "bad id",
        "modern",
        "unknown version",
        "no json accepted",
        "not json",
    ],
)
def test_anything_else_goes_to_the_sdk_transport(
    pg: DemoDatabase, message: Any, headers: list[tuple[bytes, bytes]]
) -> None:
    assert single_exchange(server_for(pg.url).lowlevel, scope(headers), message) is None


async def test_a_handshake_version_header_is_the_answers_version(pg: DemoDatabase) -> None:
    headers = [*HEADERS, (b"mcp-protocol-version", b"2025-06-18")]
    message = {"jsonrpc": "2.0", "id": "a", "method": "tools/list", "params": {}}
    async with served(pg) as (server, sdk_app):
        answering = single_exchange(server.lowlevel, scope(headers), message)
        assert answering is not None
        assert await post(answering, message, headers) == await post(sdk_app, message, headers)
