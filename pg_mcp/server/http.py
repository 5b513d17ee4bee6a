"""Streamable HTTP: stateless MCP on uvicorn, behind bearer tokens, request limits and health.

Stateless, so any replica answers any request (no sticky sessions). Layers, outermost first: Host and
Origin (421/403, DNS-rebinding protection) on every route; `/healthz` and `/readyz` (never
authenticated, never touching secrets); then for `/mcp` the bearer token (401 with
`WWW-Authenticate`), a per-principal rate limit and concurrency cap (429 with `Retry-After`), the body
size (413) and the server-wide cap on calls in flight. A plain JSON-RPC request is then answered in its
own task by the SDK's handler chain (`single_exchange`); anything else goes through the SDK's
stateless transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field, replace
from typing import Any

from mcp.server.transport_security import TransportSecuritySettings

from pg_mcp.config import TransportSettings
from pg_mcp.database.turns import current_caller
from pg_mcp.errors import ConfigError, PgMcpError
from pg_mcp.guard import GuardPolicy
from pg_mcp.guard.pool import GUARD_WORKERS, POOL
from pg_mcp.server import metrics
from pg_mcp.server.app import PgMcpServer
from pg_mcp.server.http_protocol import ConnectionLimits, bounded_protocol
from pg_mcp.server.oauth import (
    RESOURCE_METADATA_PATH,
    AuthFailure,
    JwtVerifier,
    OAuthSettings,
    challenge,
    protected_resource_metadata,
    resource_metadata_path,
    resource_metadata_url,
)
from pg_mcp.server.principal import Principal, current_principal
from pg_mcp.server.resources import URI_SCHEME
from pg_mcp.server.single_exchange import single_exchange
from pg_mcp.server.tokens import TOKEN_PREFIX, TokenStore

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MCP_PATH = "/mcp"
READY_TIMEOUT = 2.0


#: How long a call waits for a place among the calls in flight before it is told the server is busy.
QUEUE_SECONDS = 5.0
#: Long-lived streams (`subscriptions/listen`): how many one caller and the server keep open, and for
#: how long each lasts before it is ended (the client opens another).
STREAMS_PER_PRINCIPAL = 2
MAX_STREAMS = 64
STREAM_SECONDS = 300.0
#: How long calls cut at shutdown get to send their answer.
CUT_ANSWER_SECONDS = 2.0
#: The JSON-RPC error of a call cut at shutdown (implementation-defined server error range).
SHUTTING_DOWN = -32001
#: The answer to a call its client cancelled (it expects none; the HTTP request still needs one).
CANCELLED_BY_CLIENT = {
    "code": -32800,
    "message": "The call was cancelled by the client; nothing was changed.",
}


@dataclass(frozen=True)
class HttpOptions:
    """The transport settings (`pg_mcp.config.TransportSettings`, one declaration each, defaults in the
    docs/settings.md) and the OAuth settings built from them, as the HTTP app uses them."""

    settings: TransportSettings
    oauth: OAuthSettings | None = None

    @property
    def authenticated(self) -> bool:
        return self.settings.auth_tokens_file is not None or self.oauth is not None

    @property
    def metrics_on(self) -> bool:
        metrics = self.settings.metrics
        return metrics == "on" or (metrics == "auto" and is_loopback(self.settings.host))

    def check(self) -> None:
        """Refuse to serve a non-loopback address without authentication unless told to."""
        host = self.settings.host
        if not is_loopback(host) and not self.authenticated and not self.settings.allow_unauthenticated:
            raise ConfigError(
                f"Refusing to serve {host} without authentication.",
                "Create a token (pg-mcp token add NAME) and set PG_MCP_AUTH_TOKENS_FILE, configure OAuth "
                "(PG_MCP_OAUTH_ISSUER and PG_MCP_OAUTH_AUDIENCE), or pass "
                "--allow-unauthenticated if a trusted proxy in front authenticates callers.",
            )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def transport_security(options: HttpOptions) -> TransportSecuritySettings:
    """DNS-rebinding protection always on: loopback names and the configured hosts and origins."""
    hosts = [
        "127.0.0.1:*",
        "localhost:*",
        "[::1]:*",
        "127.0.0.1",
        "localhost",
        *options.settings.allowed_hosts,
    ]
    if not is_loopback(options.settings.host) and options.settings.host not in ("0.0.0.0", "::"):
        hosts += [options.settings.host, f"{options.settings.host}:*"]
    origins = [
        "http://127.0.0.1:*",
        "http://localhost:*",
        "http://[::1]:*",
        *options.settings.allowed_origins,
    ]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


@dataclass
class Drain:
    """Shutdown owned by the server: at SIGTERM readiness fails at once (a load balancer stops sending),
    new calls are answered 503 (retry elsewhere), calls in flight get the grace period, and those still
    running at its end are cancelled (their statements with them) and answered with a JSON-RPC error
    that says to retry, never a bare 500."""

    grace: float
    draining: bool = False
    calls: dict[asyncio.Task[Any], Any] = field(default_factory=dict)
    """The request task of each call in flight, with its JSON-RPC id."""
    cut: set[asyncio.Task[Any]] = field(default_factory=set)

    async def drain(self, now: bool = False) -> None:
        """Wait for the calls in flight (up to the grace period, or not at all), then cut the rest."""
        self.draining = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (0 if now else self.grace)
        while self.calls and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for task in list(self.calls):
            self.cut.add(task)
            task.cancel()
        end = loop.time() + CUT_ANSWER_SECONDS
        while self.calls and loop.time() < end:  # they answer, then leave
            await asyncio.sleep(0.02)


@dataclass
class ClientCancels:
    """`notifications/cancelled` over stateless HTTP arrives on a request of its own: the call it names
    is found among this replica's calls in flight by the caller and its JSON-RPC id, and cancelled (its
    statement with it). A caller can only cancel its own calls."""

    running: dict[tuple[str, Any], asyncio.Task[Any]] = field(default_factory=dict)
    cancelled: set[asyncio.Task[Any]] = field(default_factory=set)

    def cancel(self, caller: str, messages: list[dict[str, Any]]) -> bool:
        """Cancel the calls a body of cancellations names; False when the body is anything else."""
        named = [_cancelled_id(message) for message in messages]
        if not named or any(request_id is None for request_id in named):
            return False
        for request_id in named:
            task = self.running.get((caller, request_id))
            if task is not None:
                self.cancelled.add(task)
                task.cancel()
        return True


def _cancelled_id(message: dict[str, Any]) -> Any:
    params = message.get("params")
    if message.get("method") != "notifications/cancelled" or not isinstance(params, dict):
        return None
    request_id = params.get("requestId")
    return request_id if isinstance(request_id, str | int) else None


@dataclass
class _Bucket:
    tokens: float
    updated: float
    in_flight: int = 0


@dataclass
class _Limits:
    """Per-principal token buckets and in-flight counts, and the server-wide cap."""

    options: HttpOptions
    buckets: dict[str, _Bucket] = field(default_factory=dict)
    streams: dict[str, int] = field(default_factory=dict)
    calls: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.calls = asyncio.Semaphore(self.options.settings.max_concurrent_calls)

    def admit(self, principal: str) -> float | None:
        """None when the call may start now; else the seconds to wait before retrying."""
        now = time.monotonic()
        burst = 2 * self.options.settings.principal_rate
        bucket = self.buckets.setdefault(principal, _Bucket(burst, now))
        bucket.tokens = min(
            burst, bucket.tokens + (now - bucket.updated) * self.options.settings.principal_rate
        )
        bucket.updated = now
        if bucket.in_flight >= self.options.settings.principal_concurrency:
            return 1.0
        if bucket.tokens < 1:
            return (1 - bucket.tokens) / self.options.settings.principal_rate
        bucket.tokens -= 1
        bucket.in_flight += 1
        return None

    async def acquire_call(self) -> bool:
        """A place among the calls in flight, waiting up to `queue_seconds`; False when none came free.

        A free place is taken at once: only a call that has to queue pays for the timeout (in Python
        3.11 `asyncio.wait_for` runs the wait as a task of its own)."""
        if not self.calls.locked():
            await self.calls.acquire()  # does not suspend: a place is free and nobody waits
            return True
        try:
            async with asyncio.timeout(QUEUE_SECONDS):
                await self.calls.acquire()
        except TimeoutError:
            return False
        return True

    def done(self, principal: str) -> None:
        self.buckets[principal].in_flight -= 1

    def open_stream(self, principal: str) -> bool:
        """A place for a long-lived stream: STREAMS_PER_PRINCIPAL per caller, MAX_STREAMS in all."""
        held = self.streams.get(principal, 0)
        if held >= STREAMS_PER_PRINCIPAL or sum(self.streams.values()) >= MAX_STREAMS:
            return False
        self.streams[principal] = held + 1
        return True

    def close_stream(self, principal: str) -> None:
        self.streams[principal] -= 1
        if not self.streams[principal]:
            del self.streams[principal]


def http_app(server: PgMcpServer, options: HttpOptions, drain: Drain | None = None) -> ASGIApp:
    """The ASGI application `pg-mcp serve --transport http` runs on uvicorn."""
    options.check()
    drain = drain or Drain(options.settings.shutdown_grace)
    tokens = TokenStore(options.settings.auth_tokens_file) if options.settings.auth_tokens_file else None
    mcp_app = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=True,
        json_response=True,
        max_request_body_size=options.settings.max_request_bytes,
        transport_security=transport_security(options),
        host=options.settings.host,
    )
    limits = _Limits(options)
    cancels = ClientCancels()
    recorder = metrics.enable(server.databases.contexts) if options.metrics_on else None
    verifier = JwtVerifier(options.oauth) if options.oauth else None
    metadata_url = resource_metadata_url(options.oauth) if options.oauth else ""
    metadata_paths = (
        {RESOURCE_METADATA_PATH, resource_metadata_path(options.oauth)} if options.oauth else set()
    )

    security = transport_security(options)
    lowlevel = server.lowlevel

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await mcp_app(scope, receive, send)  # lifespan: the session manager and the pools
            return
        refusal = _foreign_request(scope, security)  # before anything else: no route, no rate spent
        if refusal is not None:
            await _json(send, *refusal)
            return
        path = scope.get("path", "")
        if path == "/healthz":
            await _json(send, 200, {"status": "ok"})
            return
        if path == "/readyz":
            if drain.draining:
                await _json(send, 503, {"status": "shutting down"})
                return
            detailed = not options.authenticated or await _identified(tokens, verifier, scope)
            await _ready(server, send, detailed=detailed)
            return
        if path in metadata_paths and options.oauth is not None:
            await _json(
                send, 200, protected_resource_metadata(options.oauth),
                {"access-control-allow-origin": "*", "cache-control": "max-age=300"},
            )  # fmt: skip
            return
        if path == "/metrics" and recorder is not None:
            await _respond(send, 200, recorder.render(), "text/plain; version=0.0.4; charset=utf-8")
            return
        if path.rstrip("/") != MCP_PATH:
            await _json(send, 404, {"error": "not found"})
            return
        if scope.get("method") != "POST":
            # Stateless: no session to delete, and nothing is ever sent unasked, so no GET stream (an
            # idle one would hold a place among the calls in flight for as long as the client lives).
            await _json(
                send, 405, {"error": "method not allowed: POST JSON-RPC messages to /mcp"}, {"allow": "POST"}
            )
            return
        if drain.draining:
            await _json(send, 503, {"error": "shutting down: retry on another replica"}, {"retry-after": "1"})
            return
        client = scope.get("client")
        address = f"{client[0]}:{client[1]}" if client else None
        principal = Principal("anonymous", None, address)
        if options.authenticated:
            found = await _authenticate(tokens, verifier, scope, metadata_url, options, send, address)
            if found is None:
                return
            principal = replace(found, address=address)
        wait = limits.admit(principal.key)
        if wait is not None:
            await _json(
                send, 429, {"error": "too many requests"}, {"retry-after": str(max(1, round(wait + 0.5)))}
            )
            return
        try:
            body = await _whole_body(receive, send, options.settings.max_request_bytes)
            if body is None:
                return
            decoded = _decoded(body)
            messages = _messages(decoded)
            if cancels.cancel(principal.key, messages):
                await _respond(send, 202, b"", "application/json")
                return
            stream = _is_stream(messages)
            foreign = _foreign_subscription(messages, principal, server.database_names) if stream else None
            if foreign is not None:
                error = {
                    "code": -32602,
                    "message": f"There is no resource {foreign[:200]!r} for this caller.",
                }
                await _json(send, 200, {"jsonrpc": "2.0", "id": _request_id(messages), "error": error})
                return
            if stream and not limits.open_stream(principal.key):
                await _json(send, 429, {"error": "too many open streams"}, {"retry-after": "5"})
                return
            answering = None if stream else single_exchange(lowlevel, scope, decoded)
            try:
                await _run_call(
                    answering or mcp_app, scope, body, _request_id(messages), receive, send, principal, limits, drain,
                    cancels, stream=stream,
                )  # fmt: skip
            finally:
                if stream:
                    limits.close_stream(principal.key)
        finally:
            limits.done(principal.key)

    return app


async def _run_call(
    mcp_app: ASGIApp,
    scope: Scope,
    body: bytes,
    request_id: Any,
    receive: Receive,
    send: Send,
    principal: Principal,
    limits: _Limits,
    drain: Drain,
    cancels: ClientCancels,
    *,
    stream: bool,
) -> None:
    """One complete request through the SDK's app, as `principal`: a call holds a place among the calls
    in flight; a long-lived stream (`subscriptions/listen`) does not, and is ended after STREAM_SECONDS
    (the client opens another)."""
    if not stream and not await limits.acquire_call():
        await _json(send, 429, {"error": "server busy"}, {"retry-after": "1"})
        return
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    started = False

    async def sending(message: Message) -> None:
        nonlocal started
        started = True
        await send(message)

    task = asyncio.current_task()
    assert task is not None
    drain.calls[task] = request_id
    if request_id is not None:
        cancels.running[(principal.key, request_id)] = task
    tokens = (current_principal.set(principal), current_caller.set(principal.key))
    try:
        if stream:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STREAM_SECONDS):
                    await _cancelled_on_disconnect(mcp_app, scope, replay, sending)
        else:
            await _cancelled_on_disconnect(mcp_app, scope, replay, sending)
    except asyncio.CancelledError:
        if task in cancels.cancelled:  # by its client, who expects no answer: an empty one closes it
            task.uncancel()
            if not started:
                await _json(send, 200, {"jsonrpc": "2.0", "id": request_id, "error": CANCELLED_BY_CLIENT})
            return
        if task not in drain.cut:
            raise
        task.uncancel()
        if not started:
            error = {"code": SHUTTING_DOWN, "message": "The server is shutting down; the call was cancelled "
                     "(nothing was changed). Retry it."}  # fmt: skip
            await _json(
                send, 503, {"jsonrpc": "2.0", "id": drain.calls[task], "error": error}, {"retry-after": "1"}
            )
    finally:
        drain.calls.pop(task, None)
        drain.cut.discard(task)
        cancels.cancelled.discard(task)
        if cancels.running.get((principal.key, request_id)) is task:
            del cancels.running[(principal.key, request_id)]
        current_caller.reset(tokens[1])
        current_principal.reset(tokens[0])
        if not stream:
            limits.calls.release()


async def _whole_body(receive: Receive, send: Send, limit: int) -> bytes | None:
    """The request's body, read before the call takes any shared place (a body that stops arriving is
    cut by the connection's request deadline, `http_protocol`); None once a 413 was sent or the client
    went away."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            await _json(send, 413, {"error": f"request body over {limit} bytes"})
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _decoded(body: bytes) -> Any:
    """The request body, read once as JSON; None when it is not JSON (the SDK answers that itself)."""
    try:
        return json.loads(body)
    except ValueError:
        return None


def _messages(decoded: Any) -> list[dict[str, Any]]:
    """The JSON-RPC messages of a decoded request body, as the SDK will read them (a batch is a list)."""
    return [m for m in (decoded if isinstance(decoded, list) else [decoded]) if isinstance(m, dict)]


def _is_stream(messages: list[dict[str, Any]]) -> bool:
    """Whether the request opens a long-lived stream: a `subscriptions/listen` (2026-07-28 protocol)."""
    return any(m.get("method") == "subscriptions/listen" for m in messages)


def _foreign_subscription(
    messages: list[dict[str, Any]], principal: Principal, names: tuple[str, ...]
) -> str | None:
    """A resource URI a `subscriptions/listen` asks for that is not the caller's: one in a database it may
    not use (table URIs name the database when there are several), or not one of this server's at all.
    Answered like a resource that does not exist, as everywhere else."""
    for message in messages:
        if message.get("method") != "subscriptions/listen":
            continue
        params = message.get("params")
        wanted = params.get("notifications") if isinstance(params, dict) else None
        uris = wanted.get("resourceSubscriptions") if isinstance(wanted, dict) else None
        for uri in uris if isinstance(uris, list) else []:
            text = str(uri)
            scheme, _, rest = text.partition("://")
            if scheme != URI_SCHEME:
                return text
            if rest in ("database", "glossary"):  # every caller's, of its own databases
                continue
            if not principal.may_use(rest.split("/", 1)[0] if len(names) > 1 else names[0]):
                return text
    return None


def _request_id(messages: list[dict[str, Any]]) -> Any:
    """The JSON-RPC id of a single request (None for anything else), for an answer of our own."""
    request_id = messages[0].get("id") if len(messages) == 1 else None
    return request_id if isinstance(request_id, str | int) else None


def _foreign_request(scope: Scope, security: TransportSecuritySettings) -> tuple[int, dict[str, str]] | None:
    """421 for a Host, 403 for an Origin this server does not answer to (DNS rebinding), on every route."""
    headers = {k: v for k, v in scope.get("headers", []) if k in (b"host", b"origin")}
    host = headers.get(b"host", b"").decode("latin-1")
    if not _matches(host, security.allowed_hosts):
        return 421, {"error": "invalid Host header"}
    origin = headers.get(b"origin")
    if origin is not None and not _matches(origin.decode("latin-1"), security.allowed_origins):
        return 403, {"error": "invalid Origin header"}
    return None


def _matches(value: str, allowed: list[str]) -> bool:
    """`value` is one of `allowed`, where `name:*` stands for the name with any port."""
    if not value:
        return False
    return any(
        value == pattern
        or (pattern.endswith(":*") and value.startswith(pattern[:-1]) and value[len(pattern) - 1 :].isdigit())
        for pattern in allowed
    )


async def _cancelled_on_disconnect(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Run one request; if the client goes away before the response is complete, cancel it, which
    cancels the tool call and so its statement on the PostgreSQL server."""
    body_read = asyncio.Event()
    responded = False
    disconnected = False
    request = asyncio.current_task()
    assert request is not None

    async def receiving() -> Message:
        message = await receive()
        if message["type"] == "http.request" and not message.get("more_body", False):
            body_read.set()
        return message

    async def sending(message: Message) -> None:
        nonlocal responded
        await send(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            responded = True

    async def watch() -> None:
        nonlocal disconnected
        await body_read.wait()
        message = await receive()
        if message["type"] == "http.disconnect" and not responded:
            disconnected = True
            request.cancel()

    watcher = asyncio.create_task(watch())
    try:
        await app(scope, receiving, sending)
    except asyncio.CancelledError:
        if not disconnected:
            raise
        log.info("client %s went away; its call was cancelled", scope.get("client"))
    finally:
        watcher.cancel()


async def _authenticate(
    tokens: TokenStore | None,
    verifier: JwtVerifier | None,
    scope: Scope,
    metadata_url: str,
    options: HttpOptions,
    send: Send,
    address: str | None,
) -> Principal | None:
    """The caller's principal from its bearer token, or None once the refusal has been sent: a static
    token (`pgmcp_…`) is checked against the tokens file, anything else as an OAuth JWT."""
    value = _bearer(scope)
    scopes = options.oauth.required_scopes if options.oauth else ()
    challenge_header = challenge(metadata_url, scopes) if verifier else 'Bearer realm="pg-mcp"'
    if value is None:
        metrics.observe_auth_failure("missing_token")
        await _json(send, 401, {"error": "unauthorized"}, {"www-authenticate": challenge_header})
        return None
    if _is_static(value, tokens, verifier):
        assert tokens is not None
        try:
            found = tokens.verify(value)
        except ConfigError as exc:  # fail closed: an unreadable tokens file admits nobody
            log.error("%s", exc.message)
            found = None
        if found is None:
            metrics.observe_auth_failure("invalid_token")
            log.warning("authentication failed from %s", address)
            await _json(
                send, 401, {"error": "invalid_token"},
                {"www-authenticate": 'Bearer realm="pg-mcp", error="invalid_token"'},
            )  # fmt: skip
        return found
    assert verifier is not None
    try:
        return await verifier.verify(value)
    except AuthFailure as failure:
        metrics.observe_auth_failure(failure.error)
        log.warning("authentication failed from %s: %s", address, failure.description)
        await _json(send, failure.status, failure.body(), failure.headers(metadata_url))
        return None


def _bearer(scope: Scope) -> str | None:
    """The request's bearer token, if it carries one."""
    header = next((v for k, v in scope.get("headers", []) if k == b"authorization"), b"")
    scheme, _, value = header.decode("latin-1").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _is_static(value: str, tokens: TokenStore | None, verifier: JwtVerifier | None) -> bool:
    """A token for the tokens file (`pgmcp_…`, or any token when OAuth is off); else an OAuth JWT."""
    return tokens is not None and (verifier is None or value.startswith(TOKEN_PREFIX))


async def _identified(tokens: TokenStore | None, verifier: JwtVerifier | None, scope: Scope) -> bool:
    """Whether the request carries a valid token (no refusal is sent: readiness answers either way)."""
    value = _bearer(scope)
    if value is None:
        return False
    if _is_static(value, tokens, verifier):
        assert tokens is not None
        try:
            return tokens.verify(value) is not None
        except ConfigError:
            return False
    if verifier is None:
        return False
    try:
        await verifier.verify(value)
    except AuthFailure:
        return False
    return True


async def _ready(server: PgMcpServer, send: Send, *, detailed: bool) -> None:
    """200 when every database answers within READY_TIMEOUT on its own probe connection (outside the
    pool, so busy callers never make a replica look down) and the guard checks a real statement; else
    503. Only a caller with a token (or a server without authentication) is told which and why."""
    contexts = server.databases.contexts

    async def probe(name: str) -> str | None:
        try:
            await contexts[name].db.probe(READY_TIMEOUT)
        except PgMcpError as exc:
            return f"{name}: {exc.message}"
        return None

    failures = [f for f in await asyncio.gather(_guard_ready(), *(probe(name) for name in contexts)) if f]
    status, body = (503, {"status": "unavailable"}) if failures else (200, {"status": "ready"})
    if detailed:
        body["databases"] = failures or list(contexts)  # type: ignore[assignment]
    await _json(send, status, body)


async def _guard_ready() -> str | None:
    """Whether the guard checks statements: a real one, through a worker (never from the verdict cache).
    Workers all busy with slow statements are not a failure: every one is ended at its deadline."""
    try:
        await asyncio.wait_for(
            asyncio.wrap_future(POOL.submit("SELECT 1 AS ready", 1, GuardPolicy())), READY_TIMEOUT
        )
    except TimeoutError:
        return None if POOL.live_workers() == GUARD_WORKERS else "guard: its worker processes are not running"
    except PgMcpError as exc:
        return f"guard: {exc.message}"
    return None


async def _json(send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    await _respond(send, status, json.dumps(body).encode(), "application/json", headers)


async def _respond(
    send: Send, status: int, payload: bytes, content_type: str, headers: dict[str, str] | None = None
) -> None:
    raw_headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(payload)).encode())]
    raw_headers += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


def serve_http(server: PgMcpServer, options: HttpOptions) -> None:
    """Run on uvicorn until SIGTERM/SIGINT/SIGHUP: readiness fails, calls in flight get the grace
    period, the rest are cut with an answer to retry (a second signal cuts them at once), the pools
    close, and the process exits 0."""
    import uvicorn

    settings = options.settings
    drain = Drain(settings.shutdown_grace)
    app = http_app(server, options, drain)
    limits = ConnectionLimits(settings.max_connections, settings.request_timeout, settings.max_header_bytes)
    config = uvicorn.Config(
        app,
        http=bounded_protocol(limits),
        proxy_headers=bool(settings.trusted_proxies),  # uvicorn trusts loopback's X-Forwarded-For otherwise
        forwarded_allow_ips=list(settings.trusted_proxies) or None,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=round(settings.shutdown_grace + CUT_ANSWER_SECONDS + 3),  # a backstop
        lifespan="on",
    )
    _graceful_server(config, drain).run()


def _graceful_server(config: Any, drain: Drain) -> Any:
    """uvicorn's server, with SIGTERM, SIGINT and SIGHUP handled on the event loop by `Drain` (a second
    signal cuts the calls in flight at once) and the process ending with code 0: uvicorn itself
    re-raises the signal once it has stopped, which would end the process with -15."""
    import uvicorn

    class Server(uvicorn.Server):
        draining: asyncio.Task[None] | None = None

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            loop = asyncio.get_running_loop()
            signals = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
            for sig in signals:
                loop.add_signal_handler(sig, self._stop)
            try:
                yield
            finally:
                for sig in signals:
                    loop.remove_signal_handler(sig)

        def _stop(self) -> None:
            """Runs on the event loop (not inside whatever code the signal interrupted)."""
            first = self.draining is None
            self.draining = asyncio.get_running_loop().create_task(self._drain(now=not first))

        async def _drain(self, now: bool) -> None:
            await drain.drain(now=now)
            self.should_exit = True

    return Server(config)
