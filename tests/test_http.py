"""Streamable HTTP on a real uvicorn: tokens, limits, health, two stateless replicas, shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from conftest import DemoDatabase
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_helpers import ROOT, password_of, run_cli, server_env, text_of

from pg_mcp.cli import main
from pg_mcp.errors import ConfigError
from pg_mcp.local_pg import free_port
from pg_mcp.server.tokens import TokenStore

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}  # fmt: skip
JSON_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


class HttpServer:
    """`pg-mcp serve --transport http` as a subprocess on a free loopback port."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._log_file = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pg_mcp", "serve", "--transport", "http", "--port", str(self.port), *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._log_file, env=env, cwd=ROOT,
        )  # fmt: skip
        for _ in range(300):
            try:
                if httpx2.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx2.HTTPError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"the HTTP server did not start: {log.read_text()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self._log_file.close()
        return code


@contextmanager
def http_server(tmp_path: Path, *args: str, **env: str) -> Iterator[HttpServer]:
    server = HttpServer(list(args), server_env(**env), tmp_path / f"server-{free_port()}.log")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def setup(pg: DemoDatabase, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Two names for the demo database, and tokens: for all databases, for `copy` only, for bursts."""
    tmp_path = tmp_path_factory.mktemp("http")
    config = tmp_path / "pg-mcp.toml"
    config.write_text(f'[databases.shop]\nurl = "{pg.url}"\n[databases.copy]\nurl = "{pg.url}"\n')
    tokens = tmp_path / "tokens.json"
    store = TokenStore(tokens)
    made = {
        name: store.add(name, databases)
        for name, databases in (("alice", None), ("bob", ("copy",)), ("dave", None), ("erin", None))
    }
    return {"config": str(config), "tokens": str(tokens), "dir": str(tmp_path), **made}


@pytest.fixture(scope="module")
def server(setup: dict[str, str]) -> Iterator[HttpServer]:
    """One server for the tests that do not need their own: small body limit, a low rate per caller."""
    with http_server(
        Path(setup["dir"]), "--config", setup["config"], "--auth-tokens-file", setup["tokens"],
        "--max-request-bytes", "2048", "--principal-rate", "5", "--log-format", "json",
    ) as running:  # fmt: skip
        yield running


@asynccontextmanager
async def mcp_over_http(url: str, token: str | None) -> AsyncIterator[Client]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    async with (
        create_mcp_http_client(headers=headers) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http), mode="legacy") as client,
    ):
        yield client


def _post(url: str, body: Any, token: str | None = None, **headers: str) -> httpx2.Response:
    sent = {**JSON_HEADERS, **({"authorization": f"Bearer {token}"} if token else {}), **headers}
    return httpx2.post(f"{url}/mcp", content=json.dumps(body), headers=sent, timeout=30)


async def test_a_token_holder_uses_the_tools_and_the_audit_names_it(
    pg: DemoDatabase, setup: dict[str, str], server: HttpServer
) -> None:
    async with mcp_over_http(server.url, setup["alice"]) as client:
        tools = await client.list_tools()
        result = await client.call_tool("query", {"sql": "SELECT 1 AS one", "database": "copy"})
    log = server.log
    assert "query" in {t.name for t in tools.tools}
    assert not result.is_error and result.structured_content["rows"] == [[1]], text_of(result)
    lines = [json.loads(line) for line in log.read_text().splitlines()]  # --log-format json: every line
    audit = [line["audit"] for line in lines if line["logger"] == "pg_mcp.audit"]
    assert any(e["principal"] == "alice" and e["client"].startswith("127.0.0.1:") for e in audit), audit
    assert setup["alice"] not in log.read_text() and password_of(pg.url) not in log.read_text()


def test_a_forwarded_for_header_is_not_believed_from_an_unconfigured_proxy(
    setup: dict[str, str], server: HttpServer
) -> None:
    time.sleep(1)  # this module's server allows 5 requests/s per caller
    call = {"jsonrpc": "2.0", "id": 9, "method": "tools/call",
            "params": {"name": "query", "arguments": {"sql": "SELECT 9 AS forwarded_probe", "database": "copy"}}}  # fmt: skip
    answer = _post(server.url, call, token=setup["dave"], **{"x-forwarded-for": "10.9.9.9"})
    assert answer.status_code == 200, answer.text
    lines = [json.loads(line) for line in server.log.read_text().splitlines()]
    audit = [line["audit"] for line in lines if line["logger"] == "pg_mcp.audit"]
    [entry] = [e for e in audit if "forwarded_probe" in (e.get("sql") or "")]
    assert entry["client"].startswith("127.0.0.1:"), "loopback is not a trusted proxy unless configured"


def test_requests_without_a_valid_token_are_refused(setup: dict[str, str], server: HttpServer) -> None:
    missing = _post(server.url, INIT)
    wrong = _post(server.url, INIT, token="pgmcp_not-a-token")
    right = _post(server.url, INIT, token=setup["erin"])
    revoked = run_cli("token", "revoke", "erin", "--file", setup["tokens"])
    after = _post(server.url, INIT, token=setup["erin"])
    health = httpx2.get(f"{server.url}/healthz")
    ready = httpx2.get(f"{server.url}/readyz")
    ready_with_token = httpx2.get(f"{server.url}/readyz", headers={"authorization": f"Bearer {setup['bob']}"})
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert wrong.status_code == 401
    assert right.status_code == 200 and right.json()["result"]["serverInfo"]["name"] == "pg-mcp"
    assert revoked.returncode == 0 and after.status_code == 401, "a revoked token stops working at once"
    assert health.status_code == 200 and ready.status_code == 200
    assert ready.json() == {"status": "ready"}, "without a token, readiness names no database"
    assert ready_with_token.json() == {"status": "ready", "databases": ["shop", "copy"]}


async def test_a_token_limited_to_one_database_sees_only_that_one(
    setup: dict[str, str], server: HttpServer
) -> None:
    async with mcp_over_http(server.url, setup["bob"]) as client:
        other = await client.call_tool("list_schemas", {"database": "shop"})
        own = await client.call_tool("query", {"sql": "SELECT current_database() AS db"})
        listed = await client.list_resources()
        overview = await client.read_resource("postgres://database")
    assert other.is_error and "There is no database 'shop'" in text_of(other)
    assert "Databases: copy (default copy)" in text_of(other)
    assert not own.is_error, text_of(own)
    assert all(
        r.uri == "postgres://database" or r.uri.startswith("postgres://copy/") for r in listed.resources
    )
    [content] = overview.contents
    text = getattr(content, "text", "")
    assert text.startswith("Databases: copy (default copy).") and "## shop" not in text, text[:200]
    time.sleep(2)  # this module's server allows 5 requests/s per caller: bob's burst comes back
    initialized = _post(server.url, INIT, token=setup["bob"]).json()["result"]
    listed_tools = _post(server.url, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, token=setup["bob"])
    everything = _post(server.url, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, token=setup["alice"])
    assert "shop" not in initialized.get("instructions", "") and "shop" not in listed_tools.text
    assert "shop" in everything.text, "a token for every database sees them all"
    discover = {"jsonrpc": "2.0", "id": 3, "method": "server/discover", "params": {"_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}}  # fmt: skip
    discovered = _post(
        server.url,
        discover,
        token=setup["bob"],
        **{"mcp-protocol-version": "2026-07-28", "mcp-method": "server/discover"},
    )
    assert discovered.status_code == 200 and discovered.json()["result"]["cacheScope"] == "private"
    assert "shop" not in discovered.text
    listen = {"jsonrpc": "2.0", "id": 4, "method": "subscriptions/listen",
              "params": {"notifications": {"resourceSubscriptions": ["postgres://shop/sales/orders"]}}}  # fmt: skip
    foreign = _post(server.url, listen, token=setup["bob"]).json()
    assert foreign["id"] == 4 and foreign["error"]["code"] == -32602, foreign
    escaped = json.dumps(listen).replace("subscriptions/listen", "subscriptions\\/listen")  # same JSON
    for body in (
        escaped,
        json.dumps([listen]),
    ):  # an escaped method name, a batch: read as the SDK reads them
        sent = {**JSON_HEADERS, "authorization": f"Bearer {setup['bob']}"}
        answer = httpx2.post(f"{server.url}/mcp", content=body, headers=sent, timeout=30)
        assert "-32602" in answer.text and "postgres://shop" in answer.text, answer.text
    lines = [json.loads(line) for line in server.log.read_text().splitlines()]
    audit = [line["audit"] for line in lines if line["logger"] == "pg_mcp.audit"]
    refused = [e for e in audit if e["principal"] == "bob" and e["tool"] == "list_schemas"]
    assert refused and refused[-1]["outcome"] == "error:NotFoundError" and refused[-1]["issuer"] == "token"


async def test_host_origin_body_size_and_rate_are_checked(setup: dict[str, str], server: HttpServer) -> None:
    token = setup["alice"]
    bad_host = _post(server.url, INIT, token=token, host="evil.example:80")
    bad_origin = _post(server.url, INIT, token=token, origin="http://evil.example")
    too_big = _post(server.url, {**INIT, "pad": "x" * 10_000}, token=token)
    headers = {**JSON_HEADERS, "authorization": f"Bearer {setup['dave']}"}
    async with httpx2.AsyncClient(
        timeout=30
    ) as http:  # 24 at once: past the burst of 10 however slow the machine
        burst = await asyncio.gather(
            *(http.post(f"{server.url}/mcp", content=json.dumps(INIT), headers=headers) for _ in range(24))
        )
    assert bad_host.status_code == 421
    assert bad_origin.status_code == 403
    assert too_big.status_code == 413
    refused = [answer for answer in burst if answer.status_code == 429]
    assert refused and int(refused[0].headers["retry-after"]) >= 1
    assert any(answer.status_code == 200 for answer in burst), "the first calls of a burst are served"


def test_a_public_address_without_authentication_is_refused(pg: DemoDatabase, tmp_path: Path) -> None:
    refused = run_cli("serve", "--transport", "http", "--host", "0.0.0.0", "--port", str(free_port()), pg.url)
    assert refused.returncode == 2
    assert "Refusing to serve 0.0.0.0 without authentication" in refused.stderr
    with http_server(tmp_path, "--host", "0.0.0.0", "--allow-unauthenticated", pg.url) as server:
        metrics = httpx2.get(f"{server.url}/metrics")
    log = server.log.read_text()
    assert " WARNING " in log and "WITHOUT authentication" in log
    assert metrics.status_code == 404, "metrics are not served on a public bind unless enabled"


async def test_two_stateless_replicas_answer_any_request(setup: dict[str, str], tmp_path: Path) -> None:
    args = ["--config", setup["config"], "--auth-tokens-file", setup["tokens"]]
    with http_server(tmp_path, *args) as first, http_server(tmp_path, *args) as second:
        token = setup["alice"]
        answers = []
        for i in range(6):  # a sessionless client alternating between the replicas
            target = (first, second)[i % 2]
            call = {"jsonrpc": "2.0", "id": 10 + i, "method": "tools/call",
                    "params": {"name": "query", "arguments": {"sql": f"SELECT {i} AS n"}}}  # fmt: skip
            answers.append(_post(target.url, call, token=token))
        async with mcp_over_http(first.url, token) as session_client:  # an older, session-based client
            before = await session_client.call_tool("query", {"sql": "SELECT 1 AS n"})
        async with mcp_over_http(second.url, token) as session_client:
            after = await session_client.call_tool("query", {"sql": "SELECT 2 AS n"})
    for i, answer in enumerate(answers):
        assert answer.status_code == 200, answer.text
        assert answer.json()["result"]["structuredContent"]["rows"] == [[i]]
    assert not before.is_error and not after.is_error


def test_sigterm_ends_an_idle_server_cleanly(pg: DemoDatabase, tmp_path: Path) -> None:
    server = HttpServer([pg.url], server_env(), tmp_path / "server.log")
    assert server.stop() == 0
    assert "Traceback" not in server.log.read_text()


async def test_a_client_that_goes_away_has_its_query_stopped_on_the_server(
    pg: DemoDatabase, setup: dict[str, str], server: HttpServer
) -> None:
    marker = "pg_mcp_http_disconnect"
    slow = f"SELECT count(*) FROM generate_series(1, 300000000) AS {marker}"
    call = {"jsonrpc": "2.0", "id": 5, "method": "tools/call",
            "params": {"name": "query", "arguments": {"sql": slow}}}  # fmt: skip
    async with httpx2.AsyncClient() as http:
        request = asyncio.create_task(
            http.post(
                f"{server.url}/mcp",
                content=json.dumps(call),
                timeout=60,
                headers={**JSON_HEADERS, "authorization": f"Bearer {setup['alice']}"},
            )
        )
        running: list[Any] = []
        for _ in range(200):
            await asyncio.sleep(0.05)
            running = await pg.admin_fetch(
                "SELECT pid FROM pg_stat_activity WHERE query LIKE $1 AND state = 'active' "
                "AND query NOT LIKE 'EXPLAIN%' AND pid <> pg_backend_pid()",
                f"%{marker}%",
            )
            if running:
                break
        assert running, "the query started"
        request.cancel()  # the client disconnects mid-query
        await asyncio.gather(request, return_exceptions=True)
    for _ in range(100):
        running = await pg.admin_fetch(
            "SELECT pid FROM pg_stat_activity WHERE query LIKE $1 AND state = 'active' "
            "AND pid <> pg_backend_pid()",
            f"%{marker}%",
        )
        if not running:
            break
        await asyncio.sleep(0.1)
    assert not running, "the query was cancelled on the server when its client went away"


def test_token_commands_store_only_a_hash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tokens = str(tmp_path / "t.json")
    created = main(["token", "add", "carol", "--databases", "a,b", "--file", tokens])
    secret = capsys.readouterr().out.strip()
    again = main(["token", "add", "carol", "--file", tokens])
    again_err = capsys.readouterr().err
    main(["token", "list", "--file", tokens])
    listing = capsys.readouterr().out
    revoked = main(["token", "revoke", "carol", "--file", tokens])
    missing = main(["token", "revoke", "carol", "--file", tokens])
    assert created == 0 and secret.startswith("pgmcp_") and len(secret) > 40
    assert secret not in Path(tokens).read_text() and oct(Path(tokens).stat().st_mode & 0o777) == "0o600"
    assert again == 2 and "exists already" in again_err
    assert listing.startswith("carol\ta, b\t")
    assert revoked == 0 and missing == 2 and "No token named 'carol'" in capsys.readouterr().err


async def test_metrics_count_calls_refusals_auth_failures_and_pools(
    setup: dict[str, str], server: HttpServer
) -> None:
    async with mcp_over_http(server.url, setup["alice"]) as client:
        await client.call_tool("query", {"sql": "SELECT 1 AS one", "database": "shop"})
        await client.call_tool("query", {"sql": "DELETE FROM sales.orders", "database": "shop"})
    _post(server.url, INIT, token="pgmcp_wrong")
    scraped = httpx2.get(f"{server.url}/metrics")
    text = scraped.text
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    assert 'pg_mcp_calls_total{database="shop",outcome="ok",tool="query"}' in text
    assert 'pg_mcp_guard_refusals_total{rule="not_read_only"}' in text
    assert 'pg_mcp_auth_failures_total{reason="invalid_token"}' in text
    assert 'pg_mcp_pool_connections{database="shop",state="open"}' in text
    assert "pg_mcp_call_seconds_bucket" in text and setup["alice"] not in text


async def test_oauth_access_tokens_from_an_identity_provider(pg: DemoDatabase, tmp_path: Path) -> None:
    from test_oauth import AUDIENCE, Issuer, claims, rs256

    issuer = Issuer()
    tokens = tmp_path / "tokens.json"
    static = TokenStore(tokens).add("ci", None)
    try:
        with http_server(
            tmp_path, "--oauth-issuer", issuer.url, "--oauth-audience", AUDIENCE, "--oauth-scopes", "db:read",
            "--auth-tokens-file", str(tokens), pg.url,
        ) as server:  # fmt: skip
            beside = _post(server.url, INIT, token=static)
            valid = rs256(claims(issuer.url, pg_mcp_databases=["demo"]))
            async with mcp_over_http(server.url, valid) as client:
                answer = await client.call_tool("query", {"sql": "SELECT 1 AS one"})
            missing = _post(server.url, INIT)
            no_scope = _post(server.url, INIT, token=rs256(claims(issuer.url, scope="openid")))
            other_database = _post(server.url, INIT, token=rs256(claims(issuer.url, pg_mcp_databases=["hr"])))
            metadata = httpx2.get(f"{server.url}/.well-known/oauth-protected-resource/mcp")
    finally:
        issuer.stop()
    assert not answer.is_error and answer.structured_content["rows"] == [[1]], text_of(answer)
    assert missing.status_code == 401 and "resource_metadata=" in missing.headers["www-authenticate"]
    assert (
        no_scope.status_code == 403 and 'error="insufficient_scope"' in no_scope.headers["www-authenticate"]
    )
    assert other_database.status_code == 200, "authenticated; it just sees no database"
    assert metadata.status_code == 200 and metadata.json()["authorization_servers"] == [issuer.url]
    assert beside.status_code == 200, "static tokens keep working beside OAuth"


def test_only_post_is_served_so_no_idle_stream_holds_a_place(
    setup: dict[str, str], server: HttpServer
) -> None:
    token = {"authorization": f"Bearer {setup['alice']}", "accept": "text/event-stream"}
    streams = [httpx2.get(f"{server.url}/mcp", headers=token, timeout=10) for _ in range(10)]  # > 8 in flight
    deleted = httpx2.delete(f"{server.url}/mcp", headers=token, timeout=10)
    still = _post(server.url, {"jsonrpc": "2.0", "id": 1, "method": "ping"}, token=setup["alice"])
    assert {r.status_code for r in streams} == {405} and streams[0].headers["allow"] == "POST"
    assert deleted.status_code == 405
    assert still.status_code == 200, "idle GET streams cannot lock a caller out"


async def test_sigterm_with_a_call_in_flight_cancels_it_on_the_server_and_exits_0(
    pg: DemoDatabase, tmp_path: Path
) -> None:
    marker = "pg_mcp_http_sigterm"
    slow = f"SELECT count(*) FROM generate_series(1, 300000000) AS {marker}"
    active = (
        "SELECT pid FROM pg_stat_activity WHERE query LIKE $1 AND state = 'active' "
        "AND query NOT LIKE 'EXPLAIN%' AND pid <> pg_backend_pid()"
    )
    server = HttpServer(["--shutdown-grace", "1", pg.url], server_env(), tmp_path / "server.log")
    call = {
        "jsonrpc": "2.0",
        "id": 5,
        "method": "tools/call",
        "params": {"name": "query", "arguments": {"sql": slow}},
    }
    async with httpx2.AsyncClient() as http:
        request = asyncio.create_task(
            http.post(f"{server.url}/mcp", content=json.dumps(call), headers=JSON_HEADERS, timeout=60)
        )
        running: list[Any] = []
        for _ in range(200):
            await asyncio.sleep(0.05)
            if running := await pg.admin_fetch(active, f"%{marker}%"):
                break
        assert running, "the query started"
        server.proc.send_signal(signal.SIGTERM)  # the grace period (1 s) ends before the query does
        await asyncio.sleep(0.2)
        ready = await http.get(f"{server.url}/readyz")
        late = await http.post(
            f"{server.url}/mcp", content=json.dumps({**call, "id": 6}), headers=JSON_HEADERS
        )
        answer = await request
        code = await asyncio.to_thread(server.stop)
    for _ in range(100):
        if not (running := await pg.admin_fetch(active, f"%{marker}%")):
            break
        await asyncio.sleep(0.1)
    assert ready.status_code == 503, "readiness fails first: the load balancer stops sending"
    assert late.status_code == 503 and late.headers["retry-after"], "a new call is told to go elsewhere"
    assert answer.status_code == 503 and answer.json()["id"] == 5, answer.text
    assert answer.json()["error"]["code"] == -32001 and "Retry" in answer.json()["error"]["message"]
    assert code == 0 and "Traceback" not in server.log.read_text()
    assert not running, "the call left in flight was cancelled on the PostgreSQL server"


def test_token_databases_are_names_and_never_all_by_accident(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tokens = str(tmp_path / "t.json")
    empty = main(["token", "add", "x", "--databases", "", "--file", tokens])
    empty_err = capsys.readouterr().err
    wrong_case = main(["token", "add", "y", "--databases", "RTH_A", "--file", tokens])
    wrong_err = capsys.readouterr().err
    assert empty == 2 and "names no database" in empty_err
    assert wrong_case == 2 and "not a database name" in wrong_err
    assert not Path(tokens).exists() or "sha256" not in Path(tokens).read_text()


def test_a_tokens_file_replaced_with_the_same_size_and_time_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    store = TokenStore(path)
    old = store.add("rotated", None)
    assert store.verify(old) is not None
    stat = path.stat()
    replacement = TokenStore(tmp_path / "other.json")
    new = replacement.add("rotated", None)  # same name, same length: the same size
    (tmp_path / "other.json").replace(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    assert store.verify(old) is None and store.verify(new) is not None


def test_a_tokens_file_being_rewritten_keeps_the_last_good_tokens_for_a_while(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    store = TokenStore(path)
    token = store.add("steady", None)
    assert store.verify(token) is not None
    path.write_text('{"tokens": [')  # half written
    assert store.verify(token) is not None, "within the grace period the last good set holds"
    store.GRACE_SECONDS = 0.0
    time.sleep(0.01)
    with pytest.raises(ConfigError):
        store.verify(token)


async def test_a_second_sigterm_cuts_the_calls_in_flight_at_once(pg: DemoDatabase, tmp_path: Path) -> None:
    marker = "pg_mcp_second_sigterm"
    slow = f"SELECT count(*) FROM generate_series(1, 300000000) AS {marker}"
    server = HttpServer(["--shutdown-grace", "60", pg.url], server_env(), tmp_path / "server.log")
    call = {
        "jsonrpc": "2.0",
        "id": "a",
        "method": "tools/call",
        "params": {"name": "query", "arguments": {"sql": slow}},
    }
    async with httpx2.AsyncClient() as http:
        request = asyncio.create_task(
            http.post(f"{server.url}/mcp", content=json.dumps(call), headers=JSON_HEADERS, timeout=60)
        )
        for _ in range(200):
            await asyncio.sleep(0.05)
            if await pg.admin_fetch(
                "SELECT 1 FROM pg_stat_activity WHERE query LIKE $1 AND query NOT LIKE 'EXPLAIN%' "
                "AND state = 'active' AND pid <> pg_backend_pid()", f"%{marker}%",
            ):  # fmt: skip
                break
        server.proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        server.proc.send_signal(signal.SIGTERM)
        answer = await asyncio.wait_for(request, 30)  # well before the 60 s grace period
        code = await asyncio.to_thread(server.stop)
    assert answer.status_code == 503 and answer.json()["error"]["code"] == -32001, answer.text
    assert code == 0 and "Traceback" not in server.log.read_text()


async def test_a_call_its_client_cancels_is_stopped_on_the_server(
    pg: DemoDatabase, setup: dict[str, str], server: HttpServer
) -> None:
    """`notifications/cancelled` comes on a request of its own (stateless HTTP): the call it names is
    stopped, with its statement, and answered; another caller cannot cancel it."""
    marker = "pg_mcp_http_cancelled"
    slow = f"SELECT count(*) FROM generate_series(1, 300000000) AS {marker}"
    call = {"jsonrpc": "2.0", "id": 41, "method": "tools/call",
            "params": {"name": "query", "arguments": {"sql": slow}}}  # fmt: skip
    running_sql = (
        "SELECT pid FROM pg_stat_activity WHERE query LIKE $1 AND state = 'active' "
        "AND query NOT LIKE 'EXPLAIN%' AND pid <> pg_backend_pid()"
    )
    cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 41}}
    async with httpx2.AsyncClient() as http:
        alice = {**JSON_HEADERS, "authorization": f"Bearer {setup['alice']}"}
        request = asyncio.create_task(
            http.post(f"{server.url}/mcp", content=json.dumps(call), timeout=60, headers=alice)
        )
        running: list[Any] = []
        for _ in range(200):
            await asyncio.sleep(0.05)
            if running := await pg.admin_fetch(running_sql, f"%{marker}%"):
                break
        assert running, "the query started"
        dave = {**JSON_HEADERS, "authorization": f"Bearer {setup['dave']}"}
        other = await http.post(f"{server.url}/mcp", content=json.dumps(cancel), timeout=30, headers=dave)
        assert other.status_code == 202
        await asyncio.sleep(0.5)
        assert not request.done() and await pg.admin_fetch(running_sql, f"%{marker}%"), "not dave's call"
        own = await http.post(f"{server.url}/mcp", content=json.dumps(cancel), timeout=30, headers=alice)
        assert own.status_code == 202
        answer = await asyncio.wait_for(request, 30)
    assert answer.json()["error"]["code"] == -32800, answer.text
    for _ in range(100):
        if not (running := await pg.admin_fetch(running_sql, f"%{marker}%")):
            break
        await asyncio.sleep(0.1)
    assert not running, "the cancelled call's statement was stopped on the server"
