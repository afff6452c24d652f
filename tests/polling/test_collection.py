"""Garbage collection during polling runs: the youngest generation's threshold is raised for the
run and restored after it, nested and concurrent runs share one setting, and a process that
turned the collector's automatic runs off keeps them off."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import httpx
import pytest

from pipeline.polling.client import Poller
from pipeline.polling.collection import GEN0_THRESHOLD, fewer_collections
from pipeline.polling.tick import run_tick, run_window
from pipeline.providers.registry import ADAPTERS
from pipeline.settings import Settings
from pipeline.warehouse import Warehouse


@pytest.fixture(autouse=True)
def default_thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*saved)


def test_raised_during_the_block_and_restored_after() -> None:
    with fewer_collections():
        assert gc.get_threshold() == (GEN0_THRESHOLD, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_restored_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError
    assert gc.get_threshold() == (700, 10, 10)


def test_nested_blocks_restore_once_the_outermost_ends() -> None:
    with fewer_collections():
        with fewer_collections():
            assert gc.get_threshold()[0] == GEN0_THRESHOLD
        assert gc.get_threshold()[0] == GEN0_THRESHOLD
    assert gc.get_threshold() == (700, 10, 10)


def test_a_higher_threshold_is_kept() -> None:
    gc.set_threshold(GEN0_THRESHOLD * 2, 10, 10)
    with fewer_collections():
        assert gc.get_threshold()[0] == GEN0_THRESHOLD * 2


def test_disabled_automatic_collection_stays_disabled() -> None:
    gc.set_threshold(0, 10, 10)
    with fewer_collections():
        assert gc.get_threshold()[0] == 0
    assert gc.get_threshold()[0] == 0


def test_polling_runs_leave_the_process_as_they_found_it(warehouse: Warehouse) -> None:
    seen: list[tuple[int, int, int]] = []

    async def runs() -> None:
        transport = httpx.MockTransport(lambda request: httpx.Response(500))
        async with Poller(Settings.from_env({}), ADAPTERS, transport=transport) as poller:
            seen.append(gc.get_threshold())
            await run_tick(warehouse, poller)
            await run_window(warehouse, poller, duration_s=0.1, tick_s=0.05)

    asyncio.run(runs())
    assert seen == [(700, 10, 10)]
    assert gc.get_threshold() == (700, 10, 10)
