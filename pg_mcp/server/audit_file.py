"""The audit file (`PG_MCP_AUDIT_FILE`): appended line by line, and honest when it cannot be written.

A full or read-only filesystem makes every write fail. Python's logging would print a traceback to
stderr per line and lose the line silently; here a failure is counted (`pg_mcp_audit_failures_total`),
logged once a minute at most, and remembered until a line is written again, so that a server told
to (`PG_MCP_AUDIT_REQUIRED`) refuses calls while their audit would be lost.
"""

from __future__ import annotations

import contextlib
import logging
import time

from pg_mcp.errors import AuditUnavailableError
from pg_mcp.server.metrics import observe_audit_failure

log = logging.getLogger(__name__)

#: Seconds between two log lines about the same failing audit file.
REPORT_EVERY_SECONDS = 60.0


class AuditFile(logging.FileHandler):
    """A FileHandler that flushes each line and reports its failures instead of printing tracebacks."""

    def __init__(self, path: str) -> None:
        super().__init__(path, encoding="utf-8")
        self.failing_since: float | None = None
        self._reported_at: float | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self.stream is None:
                self.stream = self._open()
            self.stream.write(self.format(record) + self.terminator)
            self.stream.flush()
        except Exception as exc:  # OSError (ENOSPC, EROFS) above all: reported, never raised
            self._failed(exc)
            return
        if self.failing_since is not None:
            log.warning("the audit file %s is written again", self.baseFilename)
            self.failing_since = None

    def _failed(self, exc: Exception) -> None:
        stream, self.stream = self.stream, None  # what it buffered is lost; the next line reopens the file
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):
                stream.close()
        now = time.monotonic()
        observe_audit_failure()
        if self.failing_since is None:
            self.failing_since = now
        if self._reported_at is None or now - self._reported_at >= REPORT_EVERY_SECONDS:
            self._reported_at = now
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            log.error(
                "the audit file %s cannot be written (%s); audit lines are being lost",
                self.baseFilename,
                reason,
            )

    @property
    def failing(self) -> bool:
        return self.failing_since is not None


#: The server's audit file, once configured (None: no audit file), and whether calls must stop while
#: it cannot be written (PG_MCP_AUDIT_REQUIRED).
ACTIVE: AuditFile | None = None
REQUIRED = False


def check_writable() -> None:
    """Refuse a call while its audit line would be lost, when the operator asked for that."""
    if REQUIRED and ACTIVE is not None and ACTIVE.failing:
        raise AuditUnavailableError(
            "The audit file cannot be written, and this server refuses calls it cannot audit.",
            "Try again later; the operator must free space on (or fix) the audit file's filesystem.",
        )
