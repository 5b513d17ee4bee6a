"""The HTTP server against hostile connections: slow or huge heads, too many connections, bodies that
stop arriving, foreign Host headers, long-lived streams. A real server process on a loopback port."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx2
import pytest
from conftest import DemoDatabase
from test_http import INIT, HttpServer, _post, http_server


@pytest.fixture(scope="module")
def server(pg: DemoDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    with http_server(
        tmp_path_factory.mktemp("limits"), pg.url, "--request-timeout", "1", "--max-connections", "20",
        "--max-header-bytes", "4096", "--max-concurrent-calls", "2", "--principal-rate", "3",
    ) as running:  # fmt: skip
        yield running


def _connect(server: HttpServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def _answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_a_request_that_stops_arriving_is_answered_408_and_closed(server: HttpServer) -> None:
    silent, half_head, half_body = _connect(server), _connect(server), _connect(server)
    half_head.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    half_body.sendall(
        b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 400\r\n\r\n{"
    )
    assert _answer(silent) == b"", "a connection that never sent a byte is closed without a word"
    assert _answer(half_head).startswith(b"HTTP/1.1 408")
    assert _answer(half_body) == b"", "a body cut short closes the connection; the call never started"
    assert httpx2.get(f"{server.url}/healthz").status_code == 200


def test_a_huge_head_is_refused_431_before_it_is_read_whole(server: HttpServer) -> None:
    sock = _connect(server)
    sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ")
    sent = 0
    with pytest.raises(OSError):  # the server closes the connection long before 48 MB are sent
        while sent < 48_000_000:
            sock.sendall(b"a" * 65536)
            sent += 65536
    assert sent < 48_000_000
    assert httpx2.get(f"{server.url}/healthz").status_code == 200


def test_connections_held_open_at_the_cap_give_way_to_new_callers(server: HttpServer) -> None:
    """The cap is 20: 25 connections that send nothing, then real requests, which are served while the
    oldest silent connections are closed to make room."""
    held = [_connect(server) for _ in range(25)]
    try:
        answers = [httpx2.get(f"{server.url}/healthz").status_code for _ in range(3)]
        assert answers == [200, 200, 200]
        held[0].settimeout(5)
        assert _answer(held[0]) == b"", "the oldest silent connection was closed for the newcomers"
    finally:
        for sock in held:
            sock.close()


def test_a_foreign_host_is_refused_on_every_route_before_it_spends_any_rate(server: HttpServer) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/mcp"):
        response = httpx2.get(f"{server.url}{path}", headers={"host": "attacker.example"})
        assert response.status_code == 421, (path, response.status_code)
    evil_origin = httpx2.get(f"{server.url}/readyz", headers={"origin": "http://attacker.example"})
    assert evil_origin.status_code == 403
    for _ in range(30):
        _post(server.url, INIT, host="attacker.example")
    assert _post(server.url, INIT).status_code == 200, "refused requests did not spend the caller's rate"


def test_bodies_that_stop_early_never_hold_a_call_slot(
    pg: DemoDatabase, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Six bodies that stop early stay open (a request deadline of 60 s) while a real call is served by
    a server that runs two calls at once: they never took a call's place."""
    with http_server(
        tmp_path_factory.mktemp("bodies"), pg.url, "--request-timeout", "60", "--max-concurrent-calls", "2"
    ) as running:
        stalled = [_connect(running) for _ in range(6)]
        for sock in stalled:
            sock.sendall(
                b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\naccept: application/json, text/event-stream\r\n"
                b'content-type: application/json\r\ncontent-length: 400\r\n\r\n{"jsonrpc"'
            )
        try:
            assert _post(running.url, INIT).status_code == 200, "the server-wide cap (2) is not held by them"
            for sock in stalled:
                sock.setblocking(False)
                with pytest.raises(BlockingIOError):  # still open, nothing answered: truly stalled
                    sock.recv(1)
        finally:
            for sock in stalled:
                sock.close()


def test_readiness_without_a_token_on_a_loopback_server_without_auth_names_databases(
    server: HttpServer,
) -> None:
    ready = httpx2.get(f"{server.url}/readyz")
    assert ready.status_code == 200 and "databases" in ready.json()


async def test_readiness_stays_ready_while_every_pooled_connection_is_busy(
    pg: DemoDatabase, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Readiness probes each database on a connection of its own: slow calls holding the whole pool
    never make a replica look down to its load balancer."""
    import asyncio
    import json

    from test_http import JSON_HEADERS

    slow = "SELECT count(*) FROM generate_series(1, 300000000) AS pg_mcp_ready_probe"
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "query", "arguments": {"sql": slow}},
    }
    with http_server(
        tmp_path_factory.mktemp("ready"), pg.url, "--pool-max", "1", "--pool-min", "1"
    ) as running:
        async with httpx2.AsyncClient(timeout=60) as http:
            calls = [
                asyncio.create_task(
                    http.post(f"{running.url}/mcp", content=json.dumps(call), headers=JSON_HEADERS)
                )
                for _ in range(3)
            ]
            for _ in range(200):
                await asyncio.sleep(0.05)
                busy = await pg.admin_fetch(
                    "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_mcp_ready_probe%' "
                    "AND query NOT LIKE 'EXPLAIN%' AND state = 'active' AND pid <> pg_backend_pid()"
                )
                if busy[0][0] >= 1:
                    break
            ready = await http.get(f"{running.url}/readyz", timeout=10)
            for task in calls:
                task.cancel()
            await asyncio.gather(*calls, return_exceptions=True)
    assert ready.status_code == 200, ready.text


def test_a_caller_holds_two_long_lived_streams_and_the_server_64() -> None:
    from pg_mcp.config import TransportSettings
    from pg_mcp.server.http import MAX_STREAMS, STREAMS_PER_PRINCIPAL, HttpOptions, _Limits

    limits = _Limits(HttpOptions(TransportSettings()))
    assert [limits.open_stream("a") for _ in range(3)] == [True, True, False]
    others = [limits.open_stream(f"caller{n}") for n in range(MAX_STREAMS)]
    assert others.count(True) == MAX_STREAMS - STREAMS_PER_PRINCIPAL, "64 in all"
    limits.close_stream("a")
    assert limits.open_stream("caller0"), "a closed stream frees its place"
