"""What is derived from the catalog and ages: made again beside the calls, once, when it is only old.

Under load, every call in flight would find an old value at the same moment and make it again, each
waiting for its own reading of the catalog. Here the first call to find it old starts one remaking,
and every call goes on with the value it has until the new one is in. What must be current (a value
missing, or one a change in the catalog has made wrong) is made by its owner before the call goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Aging:
    """When a derived value was made, and the one remaking of it that runs beside the calls."""

    def __init__(self, max_age: float, what: str) -> None:
        self.max_age = max_age
        self._what = what
        self._made_at = 0.0
        #: The remaking under way, if one is.
        self.remaking: asyncio.Task[None] | None = None

    def old(self) -> bool:
        return time.monotonic() - self._made_at > self.max_age

    def newest(self, started: float) -> bool:
        """Whether a making begun at `started` (time.monotonic) is the newest so far, which it then
        records: one begun earlier never replaces a later one."""
        if started < self._made_at:
            return False
        self._made_at = started
        return True

    def remake_beside(self, remake: Callable[[], Awaitable[object]]) -> None:
        """Start `remake` unless one runs already; a failure is logged, and the next call that finds
        the value old tries again."""
        if self.remaking is None:
            self.remaking = asyncio.get_running_loop().create_task(self._run(remake))

    async def _run(self, remake: Callable[[], Awaitable[object]]) -> None:
        try:
            await remake()
        except Exception as exc:
            log.debug("%s could not be made again (%s)", self._what, type(exc).__name__)
        finally:
            self.remaking = None
