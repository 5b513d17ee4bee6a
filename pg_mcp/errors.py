"""One error hierarchy; server.py turns these into MCP tool errors."""


class PgMcpError(Exception):
    """An error whose message is safe to show to the client: what went wrong and what to try next."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\nHint: {self.hint}" if self.hint else self.message


class ConfigError(PgMcpError):
    """A setting is missing or invalid."""


class GuardError(PgMcpError):
    """The guard refused a statement; `rule` names the rule that fired."""

    def __init__(self, rule: str, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.rule = rule

    def __str__(self) -> str:
        return f"Refused (rule {self.rule}): {super().__str__()}"


class NotFoundError(PgMcpError):
    """A schema, table or column does not exist or is not exposed."""


class QueryError(PgMcpError):
    """PostgreSQL rejected or aborted a statement."""


class DatabaseUnavailableError(PgMcpError):
    """The database cannot be reached right now."""
