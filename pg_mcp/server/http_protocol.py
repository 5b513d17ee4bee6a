"""uvicorn's HTTP/1.1 protocol (httptools) with the limits a server facing untrusted clients needs.

uvicorn bounds none of these by itself: a connection that never sends a request, or sends its headers
a byte at a time (slowloris), stays open for good; headers have no size cap (llhttp keeps reading);
and connections are not counted. Each connection here must deliver every request whole, headers and
body, within `request_seconds` of its first byte (or of the connection, for the first one), keep its
headers under `max_header_bytes`, and be one of at most `max_connections`; otherwise it gets a plain
408, 431 or 503 and is closed (a connection that never sent a byte is just closed). At the cap, a new
connection first evicts the oldest one that is only waiting for or trickling a request (so that
connections held open cannot lock callers out); it is refused only when every other one is busy.
Idle keep-alive connections are closed by uvicorn's own timer.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large", 503: b"Service Unavailable"}


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int
    request_seconds: float
    max_header_bytes: int


class BoundedHttpProtocol(HttpToolsProtocol):
    """One HTTP connection, held to `limits` (set on a subclass by `bounded_protocol`)."""

    limits: ClassVar[ConnectionLimits]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._in_headers = True
        self._header_bytes = 0
        self._opened_at = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._opened_at = self.loop.time()
        if len(self.connections) > self.limits.max_connections and not self._evict_one():
            self._refuse(503, "too many connections")
            return
        self._arm()

    def _waiting_for_a_request(self) -> bool:
        """Idle between requests, or still receiving a request's head: nothing of ours is running."""
        return self._in_headers and (self.cycle is None or self.cycle.response_complete)

    def _evict_one(self) -> bool:
        """At the cap, close the oldest connection that is only waiting for (or trickling) a request, so
        that held-open connections cannot lock callers out; False when every other one is busy."""
        waiting = [
            c for c in self.connections
            if isinstance(c, BoundedHttpProtocol) and c is not self and c._waiting_for_a_request()
        ]  # fmt: skip
        if not waiting:
            return False
        oldest = min(waiting, key=lambda c: c._opened_at)
        if oldest._header_bytes:
            oldest._refuse(408, "request not received in time")
        elif not oldest.transport.is_closing():
            oldest.transport.close()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._deadline is None:  # the first byte of a request on a kept-alive connection
            self._arm()
        if self._in_headers:
            self._header_bytes += len(data)
        super().data_received(data)
        if self._in_headers and self._header_bytes > self.limits.max_header_bytes:
            self._refuse(431, "request headers too large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._header_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self._in_headers = True
        super().on_response_complete()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.limits.request_seconds, self._late)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _late(self) -> None:
        """The request did not arrive whole in time: say so if part of one came, and close. An idle
        connection is closed without a word: a client sending its request just then would otherwise
        read the 408 as the answer to it (it retries on a new connection instead)."""
        self._deadline = None
        started = self._in_headers and self._header_bytes > 0
        if started and (self.cycle is None or self.cycle.response_complete):
            self._refuse(408, "request not received in time")
        elif not self.transport.is_closing():
            self.transport.close()  # idle; or mid-body, where the application sees the client go away

    def _refuse(self, status: int, message: str) -> None:
        if self.transport.is_closing():
            return
        body = message.encode()
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (status, _REASONS[status], len(body), body)
        )
        self.transport.close()


def bounded_protocol(limits: ConnectionLimits) -> type[BoundedHttpProtocol]:
    """The protocol class uvicorn instantiates per connection, bound to these limits."""
    return type("BoundedHttpProtocol", (BoundedHttpProtocol,), {"limits": limits})
