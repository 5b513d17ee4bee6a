"""What ages with the catalog (its reach model, the expanded limits): read again once, beside the calls,
which go on with what they have; a change that must count is read before the call goes on."""

from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any

import asyncpg
import pytest
from conftest import DemoDatabase
from factories import database_for

from pg_mcp.database import lineage, reach
from pg_mcp.guard.access import AccessPolicy
from pg_mcp.guard.analysed import CatalogReach

NO_LIMITS = AccessPolicy()


def recorded(monkeypatch: pytest.MonkeyPatch, module: ModuleType, name: str) -> list[Any]:
    """What `module.name` returns from now on (from the real database), in order."""
    made: list[Any] = []
    real = getattr(module, name)

    async def recording(*args: object, **kwargs: object) -> Any:
        value = await real(*args, **kwargs)
        made.append(value)
        return value

    monkeypatch.setattr(module, name, recording)
    return made


@pytest.fixture
def readings(monkeypatch: pytest.MonkeyPatch) -> list[CatalogReach]:
    """Every model `read_reach` reads, in order."""
    return recorded(monkeypatch, reach, "read_reach")


async def test_an_aged_model_is_read_again_once_while_calls_go_on_with_it(
    pg: DemoDatabase, readings: list[CatalogReach]
) -> None:
    db = database_for(pg.url)
    try:
        model = reach.ReachModel((), max_age=0.05)
        first = await model.get(db, NO_LIMITS)
        assert readings == [first]
        await asyncio.sleep(0.1)
        served = await asyncio.gather(*(model.get(db, NO_LIMITS) for _ in range(20)))
        assert all(m is first for m in served), "no call waits for the new reading"
        refreshing = model.aging.remaking
        assert refreshing is not None
        await refreshing
        assert len(readings) == 2, "twenty calls, one reading"
        assert await model.get(db, NO_LIMITS) is readings[1]
    finally:
        await db.close()


async def test_a_fresh_model_or_other_limits_are_read_before_the_call_goes_on(
    pg: DemoDatabase, readings: list[CatalogReach]
) -> None:
    db = database_for(pg.url)
    try:
        model = reach.ReachModel(())
        first = await model.get(db, NO_LIMITS)
        fresh = await model.get(db, NO_LIMITS, fresh=True)
        assert fresh is not first and readings == [first, fresh]
        limited = AccessPolicy(schemas=frozenset({"sales"}))
        assert await model.get(db, limited) is readings[2]
        assert await model.get(db, limited) is readings[2]
    finally:
        await db.close()


async def test_a_reading_that_fails_beside_the_calls_leaves_the_model_and_is_tried_again(
    pg: DemoDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = database_for(pg.url)
    try:
        model = reach.ReachModel((), max_age=0.05)
        first = await model.get(db, NO_LIMITS)
        real = reach.read_reach

        async def failing(*args: object, **kwargs: object) -> CatalogReach:
            raise ConnectionResetError

        monkeypatch.setattr(reach, "read_reach", failing)
        await asyncio.sleep(0.1)
        assert await model.get(db, NO_LIMITS) is first
        refreshing = model.aging.remaking
        assert refreshing is not None
        await refreshing
        assert model.aging.remaking is None
        monkeypatch.setattr(reach, "read_reach", real)
        assert await model.get(db, NO_LIMITS) is first, "the old model serves while the next reading runs"
        refreshing = model.aging.remaking
        assert refreshing is not None
        await refreshing
        assert await model.get(db, NO_LIMITS) is not first
    finally:
        await db.close()


@pytest.fixture
def expansions(monkeypatch: pytest.MonkeyPatch) -> list[AccessPolicy]:
    """Every policy `expand_policy` expands, in order."""
    return recorded(monkeypatch, lineage, "expand_policy")


async def test_old_limits_are_expanded_again_once_and_changed_ones_at_once(
    pg: DemoDatabase, expansions: list[AccessPolicy]
) -> None:
    db = database_for(pg.url)
    admin = await asyncpg.connect(pg.admin_url)
    try:
        policy = lineage.LineagePolicy(AccessPolicy(schemas=frozenset({"sales"})), max_age=0.05)
        first = await policy.get(db)
        assert expansions == [first]
        await asyncio.sleep(0.1)
        served = await asyncio.gather(*(policy.get(db) for _ in range(10)))
        assert all(p is first for p in served), "no call waits for an expansion that is only old"
        refreshing = policy.aging.remaking
        assert refreshing is not None
        await refreshing
        assert len(expansions) == 2
        await admin.execute("CREATE VIEW sales.lineage_probe AS SELECT id FROM sales.orders")
        changed = await policy.get(db)
        assert changed is expansions[2], "a changed catalog is expanded before the call goes on"
    finally:
        await admin.execute("DROP VIEW IF EXISTS sales.lineage_probe")
        await admin.close()
        await db.close()
