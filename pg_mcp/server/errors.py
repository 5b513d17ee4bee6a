"""The one conversion of errors into what a client sees: tool errors, or JSON-RPC errors by class."""

from __future__ import annotations

import logging

from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, TextContent

from pg_mcp.errors import PgMcpError

log = logging.getLogger(__name__)


def tool_error(exc: BaseException) -> CallToolResult:
    """A failed tool call: our errors with their message, anything else without internals or traceback."""
    if isinstance(exc, PgMcpError):
        return error_result(str(exc))
    log.error("internal error in a tool: %s", type(exc).__name__)
    return error_result(
        f"Internal error ({type(exc).__name__}); the server is still running. Try again or simplify."
    )


def request_error(exc: PgMcpError) -> MCPError:
    """A failed request other than a tool call: the JSON-RPC code the error's class declares."""
    return MCPError(code=exc.code, message=str(exc))


def error_result(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)
