"""Turns at a database's connections: fair between callers, with room kept for short calls."""

from __future__ import annotations

import asyncio

import pytest
from conftest import DemoDatabase
from factories import context_for, database_for, unguarded

from pg_mcp import explore
from pg_mcp.database.turns import LOCAL_CALLER, Turns, current_caller
from pg_mcp.guard import CheckedQuery

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_caller_holds_its_share_and_short_calls_keep_their_turn() -> None:
    turns = Turns(5, reserved=1)
    assert (turns.general, turns.share) == (4, 2)
    first = [await turns.acquire("a", short=False) for _ in range(2)]
    waiting = asyncio.create_task(turns.acquire("a", short=False))
    await asyncio.sleep(0)
    assert not waiting.done(), "a third general turn is over a's share"
    beyond = await turns.acquire("a", short=True)
    assert not beyond.reserved and beyond.short_only, "a short call may take a free turn beyond the share"
    other = await turns.acquire("b", short=False)
    assert not other.short_only, "b has a share of its own"
    kept = await turns.acquire("a", short=True)
    assert kept.reserved and kept.short_only, "with every general turn taken, short calls have their own"
    late = asyncio.create_task(turns.acquire("c", short=True))
    await asyncio.sleep(0)
    assert not late.done()
    turns.release(kept)
    assert (await asyncio.wait_for(late, 5)).reserved
    turns.release(first[0])
    await asyncio.sleep(0)
    assert not waiting.done(), "a still holds two (one beyond its share): its long call waits"
    turns.release(beyond)
    assert (await asyncio.wait_for(waiting, 5)).caller == "a"
    for turn in [first[1], other, await late]:
        turns.release(turn)
    assert turns.in_use() == 1


async def test_a_freed_turn_goes_to_the_waiting_caller_holding_fewest() -> None:
    turns = Turns(3, reserved=0, share=3)
    held = [await turns.acquire("a", short=False) for _ in range(3)]
    order: list[str] = []

    async def wait(caller: str) -> None:
        turn = await turns.acquire(caller, short=False)
        order.append(caller)
        await asyncio.sleep(0.01)
        turns.release(turn)

    tasks = [asyncio.create_task(wait(caller)) for caller in ("a", "a", "b")]
    await asyncio.sleep(0)
    turns.release(held[0])
    await asyncio.sleep(0)
    assert order == ["b"], "b holds none, a holds two: b first though it came last"
    for turn in held[1:]:
        turns.release(turn)
    await asyncio.gather(*tasks)
    assert turns.in_use() == 0


async def test_a_cancelled_wait_takes_no_turn() -> None:
    turns = Turns(1, reserved=0, share=1)
    held = await turns.acquire("a", short=False)
    waiting = asyncio.create_task(turns.acquire("b", short=False))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    turns.release(held)
    assert turns.in_use() == 0 and (await turns.acquire("c", short=False)).caller == "c"


def _sleep(seconds: float) -> CheckedQuery:
    return unguarded(f"SELECT pg_sleep({seconds})", 1)


async def test_one_caller_with_slow_statements_never_starves_another(pg: DemoDatabase) -> None:
    """Caller a sends four slow statements (its share is two of the pool's four general connections);
    b's slow statement and a short catalog read do not wait for a's."""
    db = database_for(pg.url, pool_max=5)
    finished: list[str] = []

    async def call(caller: str, name: str, work: asyncio.Future[object] | None = None) -> None:
        current_caller.set(caller)
        if name.startswith("catalog"):
            await db.fetch_fixed("SELECT count(*) FROM pg_catalog.pg_class")
        else:
            await db.run_query(_sleep(1.0))
        finished.append(name)

    try:
        await db.connect()
        slow_a = [asyncio.create_task(call("a", f"a{i}")) for i in range(4)]
        await asyncio.sleep(0.2)
        others = [asyncio.create_task(call("b", "b0")), asyncio.create_task(call("c", "catalog"))]
        await asyncio.gather(*slow_a, *others)
    finally:
        await db.close()
    assert finished.index("b0") < finished.index("a2") and finished.index("b0") < finished.index("a3"), (
        finished
    )
    assert finished[0] == "catalog", finished


async def test_a_quick_lookup_passes_the_callers_own_slow_statements(pg: DemoDatabase) -> None:
    """Over stdio (one caller) every general connection runs a slow statement; a primary-key lookup
    plans cheap on the connection kept for short calls and answers while they all still run."""
    context = context_for(pg.url, pool_max=3)
    db = context.db
    done: list[str] = []
    current_caller.set(LOCAL_CALLER)

    async def slow(i: int) -> None:
        await db.run_query(_sleep(25.0))
        done.append(f"slow{i}")

    slow_calls = [asyncio.create_task(slow(i)) for i in range(2)]
    try:
        while db.pool_usage()[0] - db.pool_usage()[1] < 2:  # both general connections are busy
            await asyncio.sleep(0.05)
        result = await explore.query(context, "SELECT id, name FROM hr.departments WHERE id = 1")
        done.append("lookup")
    finally:
        for call in slow_calls:
            call.cancel()
        await asyncio.gather(*slow_calls, return_exceptions=True)
        await db.close()
    assert "rows" in (result.structured or {}), result.text
    assert done == ["lookup"], done


async def test_short_calls_beyond_a_share_leave_a_turn_for_another_caller() -> None:
    """A statement that plans cheap may still run long: one caller's short calls never take the last
    general turn, so another caller's call finds one within its own share."""
    turns = Turns(5, reserved=1)
    held = []
    for _ in range(6):
        waiting = asyncio.create_task(turns.acquire("a", short=True))
        await asyncio.sleep(0)
        if not waiting.done():
            waiting.cancel()
            break
        held.append(waiting.result())
    assert len(held) == 4, "two within the share, one beyond it, and the kept one"
    assert (await asyncio.wait_for(turns.acquire("b", short=False), 1)).caller == "b"
