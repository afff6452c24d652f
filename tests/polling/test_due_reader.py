"""Due-order reads shared by the providers' loops: providers asking together share one warehouse
connection and each gets its own rows; a failed open fails each waiting provider with the error;
closing the reader leaves no loop waiting."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import duckdb
import pytest

from pipeline.intake import make_order, register
from pipeline.polling.due_reader import DueReader
from pipeline.warehouse import Warehouse, WarehouseLockedError

PROVIDERS = ("sms4sats", "baanx", "altinn")


class CountingWarehouse(Warehouse):
    """A warehouse that counts its connections (and can be made to refuse them)."""

    def __init__(self, warehouse: Warehouse) -> None:
        super().__init__(warehouse.path)
        self.opened = 0
        self.refuse: Exception | None = None
        self.delay_s = 0.0

    @contextlib.contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        self.opened += 1
        time.sleep(self.delay_s)
        if self.refuse is not None:
            raise self.refuse
        with super().connect(read_only=read_only) as con:
            yield con


@pytest.fixture
def counting(warehouse: Warehouse) -> CountingWarehouse:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    register(
        warehouse,
        [
            make_order("sms4sats", "1125699791", order_kind="sms_receive", created_at=created),
            make_order("baanx", "c411ca33-53dd-4d4f-b959-6c6dffcc88e5", created_at=created),
        ],
        source="test",
    )
    return CountingWarehouse(warehouse)


def test_providers_asking_together_share_one_connection(counting: CountingWarehouse) -> None:
    async def together() -> list[list[str]]:
        reader = DueReader(counting)
        frames = await asyncio.gather(*(reader.read(p) for p in PROVIDERS))
        return [frame["provider"].unique().to_list() for frame in frames]

    assert asyncio.run(together()) == [["sms4sats"], ["baanx"], []]
    assert counting.opened == 1


def test_a_failed_open_fails_every_waiting_provider(counting: CountingWarehouse) -> None:
    counting.refuse = WarehouseLockedError(counting.path, 4242, 1.0)

    async def together() -> list[object]:
        reader = DueReader(counting)
        return await asyncio.gather(*(reader.read(p) for p in PROVIDERS), return_exceptions=True)

    outcomes = asyncio.run(together())
    assert all(isinstance(outcome, WarehouseLockedError) for outcome in outcomes)
    assert counting.opened == 1


@pytest.mark.parametrize("close_after_s", [0.0, 0.1], ids=["before the read", "during it"])
def test_closing_leaves_no_reader_waiting(
    counting: CountingWarehouse, close_after_s: float
) -> None:
    counting.delay_s = 0.5

    async def closed_midway() -> None:
        reader = DueReader(counting)
        reading = asyncio.gather(*(reader.read(p) for p in PROVIDERS))
        await asyncio.sleep(close_after_s)
        reader.close()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(reading, timeout=5)

    asyncio.run(closed_midway())
