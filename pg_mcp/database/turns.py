"""Turns at one database's pooled connections, shared fairly between callers.

A turn is the right to hold one pooled connection. First come, first served lets one caller with many
slow statements hold every connection while everybody else waits, so:

- each caller holds at most `share` of the general turns at once, and when a turn comes free the
  waiting caller holding the fewest turns gets it (oldest call first within a caller);
- `reserved` turns are kept for calls that are short: catalog reads are short by construction, and a
  statement may start on a reserved turn, or on a general one beyond its caller's share, and keeps it
  only when the planner's estimate is small (`pg_mcp.database.executor` moves an expensive one to a
  turn within the share before it runs). So a quick call never waits behind slow statements, the
  caller's own or anybody else's, and one busy caller of quick calls may use the whole pool.

Nothing here preempts a running statement: the statement timeout bounds how long a turn is held.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections import deque
from contextvars import ContextVar
from dataclasses import dataclass, field

#: The caller of this process's own transport (stdio): the only caller, so it may use every turn.
LOCAL_CALLER = ""
#: Who the current call is for (set at the request's edge, e.g. "token:alice"); turns are shared by it.
current_caller: ContextVar[str] = ContextVar("pg_mcp_caller", default=LOCAL_CALLER)


@dataclass(eq=False)
class _Waiter:
    caller: str
    short: bool
    order: int
    future: asyncio.Future[Turn] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


@dataclass(frozen=True)
class Turn:
    """One held turn: release it exactly once (`Turns.release`). `short_only`: it was granted to a short
    call beyond what a long one could have had (a reserved turn, or a general one over the caller's
    share), so a statement that plans expensive must give it back first."""

    caller: str
    reserved: bool
    short_only: bool = False


class Turns:
    """General turns shared fairly between callers, and turns reserved for short calls."""

    def __init__(self, capacity: int, reserved: int, share: int = 0) -> None:
        """`share`: the most general turns one caller holds at once (0: half of them, at least one).
        The local caller (stdio) is alone, so it may hold all of them."""
        self.reserved = min(max(0, reserved), capacity - 1)
        self.general = capacity - self.reserved
        self.share = min(share, self.general) if share > 0 else max(1, math.ceil(self.general / 2))
        self._general_free = self.general
        self._reserved_free = self.reserved
        self._held: dict[str, int] = {}
        self._waiting: dict[str, deque[_Waiter]] = {}
        self._order = itertools.count()

    def in_use(self) -> int:
        """Turns held now (for metrics and readiness)."""
        return (self.general - self._general_free) + (self.reserved - self._reserved_free)

    async def acquire(self, caller: str, *, short: bool) -> Turn:
        """A turn for the caller: a general one within its share, or for a short call a reserved one when
        no general turn is free to it. Waits (fairly) until one comes free; cancel to stop waiting."""
        granted = self._grant(caller, short)  # a free turn is one no waiter can take (see `_wake`)
        if granted is not None:
            return granted
        waiter = _Waiter(caller, short, next(self._order))
        self._waiting.setdefault(caller, deque()).append(waiter)
        try:
            return await waiter.future
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled():
                self._give_back(waiter.future.result())  # granted just as the wait was cancelled
            else:
                self._forget(waiter)
            raise

    def release(self, turn: Turn) -> None:
        self._give_back(turn)

    def _grant(self, caller: str, short: bool) -> Turn | None:
        """Take a turn for the caller if one is free to it: a general one within its share; for a short
        call, a general one beyond it while another stays free, else a reserved one."""
        held = self._held.get(caller, 0)
        within_share = held < (self.general if caller == LOCAL_CALLER else self.share)
        # Beyond its share a short call leaves one general turn free: a statement that plans cheap
        # may still run long, and another caller must always find a turn within its own share.
        if self._general_free > (0 if within_share else 1) and (within_share or short):
            self._general_free -= 1
            self._held[caller] = held + 1
            return Turn(caller, reserved=False, short_only=not within_share)
        if short and self._reserved_free:
            self._reserved_free -= 1
            return Turn(caller, reserved=True, short_only=True)
        return None

    def _give_back(self, turn: Turn) -> None:
        if turn.reserved:
            self._reserved_free += 1
        else:
            self._general_free += 1
            held = self._held[turn.caller] - 1
            if held:
                self._held[turn.caller] = held
            else:
                del self._held[turn.caller]
        self._wake()

    def _wake(self) -> None:
        """Hand free turns to waiters: the caller holding the fewest general turns first, then the
        oldest call; a waiter nothing is free to stays, and the next one is tried."""
        while self._waiting and (self._general_free or self._reserved_free):
            candidates = sorted(
                (waiter for queue in self._waiting.values() for waiter in queue),
                key=lambda waiter: (self._held.get(waiter.caller, 0), waiter.order),
            )
            for waiter in candidates:
                granted = self._grant(waiter.caller, waiter.short)
                if granted is not None:
                    self._forget(waiter)
                    waiter.future.set_result(granted)
                    break
            else:
                return

    def _forget(self, waiter: _Waiter) -> None:
        queue = self._waiting.get(waiter.caller)
        if queue is None:
            return
        if waiter in queue:
            queue.remove(waiter)
        if not queue:
            del self._waiting[waiter.caller]
