"""Prometheus metrics for the HTTP server (`/metrics`), recorded at the same edge as the audit log.

Nothing is recorded, and prometheus-client is not even imported, until `enable()` is called: a stdio
server pays nothing for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pg_mcp.explore import DatabaseContext

_active: Metrics | None = None


class Metrics:
    """The server's counters and histograms in a registry of their own, plus pool gauges read at scrape."""

    def __init__(self, contexts: Mapping[str, DatabaseContext]) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.calls = Counter(
            "pg_mcp_calls", "Tool calls and resource reads, by tool, database and outcome.",
            ["tool", "database", "outcome"], registry=self.registry,
        )  # fmt: skip
        self.seconds = Histogram(
            "pg_mcp_call_seconds", "Time to answer a tool call or resource read.", ["tool"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )  # fmt: skip
        self.refusals = Counter(
            "pg_mcp_guard_refusals",
            "Statements the guard refused, by rule.",
            ["rule"],
            registry=self.registry,
        )
        self.rows = Counter(
            "pg_mcp_rows_returned", "Rows returned to callers.", ["tool"], registry=self.registry
        )
        self.cut = Counter(
            "pg_mcp_results_cut",
            "Results cut by the row cap or the byte budget.",
            ["tool"],
            registry=self.registry,
        )
        self.database_errors = Counter(
            "pg_mcp_database_errors", "Calls that failed on the database side, by database and cause.",
            ["database", "cause"], registry=self.registry,
        )  # fmt: skip
        self.auth_failures = Counter(
            "pg_mcp_auth_failures", "Requests refused by authentication, by reason.", ["reason"],
            registry=self.registry,
        )  # fmt: skip
        self.audit_failures = Counter(
            "pg_mcp_audit_failures", "Audit lines that could not be written to the audit file.",
            registry=self.registry,
        )  # fmt: skip
        self.registry.register(_PoolCollector(contexts))

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class _PoolCollector:
    """Pool size, idle and in-use connections per database, read from asyncpg when scraped."""

    def __init__(self, contexts: Mapping[str, DatabaseContext]) -> None:
        self.contexts = contexts

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily(
            "pg_mcp_pool_connections",
            "Pooled connections per database, by state.",
            labels=["database", "state"],
        )
        for name, context in self.contexts.items():
            size, idle = context.db.pool_usage()
            family.add_metric([name, "open"], size)
            family.add_metric([name, "idle"], idle)
            family.add_metric([name, "in_use"], size - idle)
        yield family

    def describe(self) -> Iterable[Any]:
        return []


def enable(contexts: Mapping[str, DatabaseContext]) -> Metrics:
    global _active
    _active = Metrics(contexts)
    return _active


def observe_call(tool: str, database: str, outcome: str, seconds: float, rows: int | None, cut: bool) -> None:
    if _active is None:
        return
    _active.calls.labels(tool, database, outcome).inc()
    _active.seconds.labels(tool).observe(seconds)
    if outcome.startswith("refused:"):
        _active.refusals.labels(outcome.removeprefix("refused:")).inc()
    elif outcome in ("error:QueryError", "error:DatabaseUnavailableError", "error:ServerBusyError"):
        _active.database_errors.labels(database, outcome.removeprefix("error:")).inc()
    if rows:
        _active.rows.labels(tool).inc(rows)
    if cut:
        _active.cut.labels(tool).inc()


def observe_auth_failure(reason: str) -> None:
    if _active is not None:
        _active.auth_failures.labels(reason).inc()


def observe_audit_failure() -> None:
    if _active is not None:
        _active.audit_failures.inc()
