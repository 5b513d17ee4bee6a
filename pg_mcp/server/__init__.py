"""MCP wiring: the server, its tools, resources and prompts, error conversion and the transports."""

from pg_mcp.server.app import build_server

__all__ = ["build_server"]
