"""One stateless JSON-RPC request over HTTP, answered in the request's own task.

For every stateless POST, the SDK's Streamable HTTP transport builds a transport, a pair of memory
streams, a dispatcher and a task in the session manager's task group, and passes the request through
them to the server's handler chain. For a plain request that chain is all that answers it. So a
request of that shape (every tool call is one) is handed to the chain directly, through the SDK's
single-exchange entry (`mcp.server.runner.serve_one`, which the SDK itself uses for 2026-07-28
requests). The answer is the same, for about 0.33 ms of CPU less per request: a `ping` costs 57 µs
in-process instead of 387.

Only a POST that the SDK's transport would pass to the chain unchanged is answered here: one JSON-RPC
request (not `initialize`; not a notification, a response or a batch), with a JSON content type, an
Accept that takes JSON, and no protocol version header or one of the handshake versions. Everything
else goes to the SDK's transport, which answers or refuses it as before.

As in the SDK's JSON-response mode, a notification the handler sends (progress, a log message) has
no wire, and the server cannot send requests to the client. A handler failure that is not an MCP
error or a validation error is logged and answered with a generic internal error, never its text.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import pydantic_core
from mcp.server.connection import Connection
from mcp.server.lowlevel.server import Server
from mcp.server.runner import serve_one
from mcp.server.streamable_http import check_accept_headers
from mcp.shared.exceptions import NoBackChannelError
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp.shared.jsonrpc_dispatcher import handler_exception_to_error_data
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp_types import DEFAULT_NEGOTIATED_VERSION, INTERNAL_ERROR, ErrorData, JSONRPCRequest, RequestId
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

_JSON = "application/json"


@dataclass
class _Exchange:
    """The dispatch context of one request answered here (`mcp.shared.dispatcher.DispatchContext`):
    no way back to the client, and nowhere for a notification to go."""

    transport: TransportContext
    request_id: RequestId
    message_metadata: ServerMessageMetadata
    cancel_requested: anyio.Event = field(default_factory=anyio.Event)
    can_send_request: bool = field(default=False, init=False)

    async def send_raw_request(
        self, method: str, params: Mapping[str, Any] | None, opts: Any = None
    ) -> dict[str, Any]:
        raise NoBackChannelError(method)

    async def notify(self, method: str, params: Mapping[str, Any] | None, opts: Any = None) -> None:
        return None

    async def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        return None


def single_exchange(server: Server[None], scope: Scope, message: Any) -> ASGIApp | None:
    """The app that answers `message` (the request body, decoded) in its own task, or None when the
    SDK's transport must see it."""
    version = _handshake_version(scope)
    if version is None or not isinstance(message, dict) or message.get("method") == "initialize":
        return None
    if "id" not in message or not isinstance(message.get("method"), str):
        return None  # a notification or a response: the SDK acknowledges or refuses it
    try:
        request = JSONRPCRequest.model_validate(message, by_name=False)
    except ValidationError:
        return None  # the SDK says what is wrong with it

    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()  # the body, already read: taking it lets the caller watch for a disconnect
        context = _Exchange(
            transport=TransportContext(kind="streamable-http", can_send_request=False),
            request_id=request.id,
            message_metadata=ServerMessageMetadata(request_context=Request(scope, receive)),
        )
        connection = Connection.from_envelope(version, None, None)
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": request.id}
        try:
            reply["result"] = await serve_one(
                server, context, request.method, request.params, connection=connection, lifespan_state=None
            )
        except Exception as exc:
            error = handler_exception_to_error_data(exc)
            if error is None:
                log.exception("handler for %r raised", request.method)
                error = ErrorData(code=INTERNAL_ERROR, message="Internal server error")
            reply["error"] = error.model_dump(by_alias=True, exclude_none=True)
        body = pydantic_core.to_json(reply)
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", _JSON.encode()), (b"content-length", str(len(body)).encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})

    return answer


def _handshake_version(scope: Scope) -> str | None:
    """The protocol version a request answered here runs at, or None when its headers send it to the
    SDK's transport: a content type other than JSON, an Accept without JSON, or a version header the
    handshake era does not know (the 2026-07-28 entry, or a refusal)."""
    request = Request(scope)
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    accepts_json, _ = check_accept_headers(request)
    if content_type != _JSON or not accepts_json:
        return None
    version = request.headers.get(MCP_PROTOCOL_VERSION_HEADER)
    if version is None:
        return DEFAULT_NEGOTIATED_VERSION
    return version if version in HANDSHAKE_PROTOCOL_VERSIONS else None
