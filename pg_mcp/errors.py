"""One error hierarchy. Each class says what the client gets; server/errors.py converts them in one place."""

from typing import ClassVar

from mcp_types import INTERNAL_ERROR, INVALID_PARAMS

#: In the server-defined range: the database cannot be reached, or has no connection free, right now.
DATABASE_UNAVAILABLE = -32000

__all__ = ["DATABASE_UNAVAILABLE", "INTERNAL_ERROR", "INVALID_PARAMS"]


class PgMcpError(Exception):
    """An error whose message is safe to show to the client: what went wrong and what to try next.

    In a tool call every one of these is a tool error (`isError`) with this text; elsewhere
    (resources, listings) it answers the JSON-RPC `code` its class declares.
    """

    code: ClassVar[int] = INTERNAL_ERROR
    #: Whether the same call may succeed if simply sent again a little later.
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\nHint: {self.hint}" if self.hint else self.message


class ConfigError(PgMcpError):
    """A setting is missing or invalid."""


class InvalidArgumentError(PgMcpError):
    """An argument the caller gave is out of range or malformed."""

    code = INVALID_PARAMS


class GuardError(PgMcpError):
    """The guard refused a statement; `rule` names the rule that fired."""

    code = INVALID_PARAMS

    def __init__(self, rule: str, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.rule = rule

    def __str__(self) -> str:
        return f"Refused (rule {self.rule}): {super().__str__()}"


class NotFoundError(PgMcpError):
    """A database, schema, table or column does not exist or is not exposed."""

    code = INVALID_PARAMS  # what the SDK answers for an unknown resource


class QueryError(PgMcpError):
    """PostgreSQL rejected or aborted a statement."""

    code = INVALID_PARAMS


class DatabaseUnavailableError(PgMcpError):
    """The database cannot be reached right now."""

    code = DATABASE_UNAVAILABLE
    retryable = True


class ServerBusyError(PgMcpError):
    """Every connection this caller may use is running a statement; none came free in time."""

    code = DATABASE_UNAVAILABLE
    retryable = True


class AuditUnavailableError(PgMcpError):
    """The audit file cannot be written, and the operator asked for calls to stop meanwhile."""

    retryable = True
