"""Progress of a long call, for a client that asked for it (a progress token on the request).

A call still running after a second reports, every second, how long it has run and how many rows it
has fetched, until it ends: a client that resets its timeout on progress then waits for a long query
instead of failing it. A client that sent no token gets nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pg_mcp.database.fetch_progress import FetchProgress, fetch_progress

#: Seconds before the first report, and between reports.
REPORT_AFTER = 1.0
REPORT_EVERY = 1.0


@asynccontextmanager
async def progress_reported(context: Any) -> AsyncIterator[None]:
    """Report the progress of the call run inside once it has run REPORT_AFTER seconds.

    `context` is the SDK's tool Context (None for calls made without one). The SDK sends nothing when
    the request carried no progress token; a call shorter than REPORT_AFTER costs one timer."""
    if context is None:
        yield
        return
    fetched = FetchProgress()
    token = fetch_progress.set(fetched)
    started = time.monotonic()
    reporters: list[asyncio.Task[None]] = []
    timer = asyncio.get_running_loop().call_later(
        REPORT_AFTER, lambda: reporters.append(asyncio.create_task(_report(context, fetched, started)))
    )
    try:
        yield
    finally:
        timer.cancel()
        for reporter in reporters:
            reporter.cancel()
        await asyncio.gather(*reporters, return_exceptions=True)
        fetch_progress.reset(token)


async def _report(context: Any, fetched: FetchProgress, started: float) -> None:
    """Every REPORT_EVERY seconds: elapsed seconds (always increasing, as progress must) and what was
    fetched; stops quietly if the client can no longer be told."""
    with contextlib.suppress(Exception):
        while True:
            elapsed = time.monotonic() - started
            message = f"running for {elapsed:.0f} s"
            if fetched.rows:
                message += f", {fetched.rows:,} rows fetched"
            await context.report_progress(round(elapsed, 1), None, message)
            await asyncio.sleep(REPORT_EVERY)
