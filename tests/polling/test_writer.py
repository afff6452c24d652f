"""The polling run's single writer: nothing submitted is lost, not the rows that arrive while a
flush is writing, nor those that meet a warehouse held by another process."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from warehouse_holder import held

from pipeline.model import Observation
from pipeline.polling import writer as writer_module
from pipeline.polling.writer import BatchWriter
from pipeline.warehouse import Warehouse

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _obs(order_id: str, provider: str = "baanx") -> Observation:
    return Observation(
        provider=provider,
        order_id=order_id,
        order_kind="product_order",
        polled_at=T0 + timedelta(seconds=len(order_id)),
        state="pending",
        is_terminal=False,
        http_status=200,
    )


def _stored(warehouse: Warehouse) -> set[str]:
    return set(warehouse.read("SELECT order_id FROM observations")["order_id"])


def test_rows_arriving_during_the_last_flush_are_written(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = writer_module.write_batches

    def slow_write(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.3)
        return original(*args, **kwargs)

    monkeypatch.setattr(writer_module, "write_batches", slow_write)

    async def main() -> BatchWriter:
        writer = BatchWriter(warehouse, flush_every_s=0.05)
        stop = asyncio.Event()
        writer.submit("baanx", [_obs("a")])
        running = asyncio.create_task(writer.run(stop))
        await asyncio.sleep(0.15)  # the first flush is writing now
        writer.submit("sms4sats", [_obs("b", "sms4sats")])
        stop.set()
        await running
        return writer

    writer = asyncio.run(main())
    assert _stored(warehouse) == {"a", "b"}
    assert writer.pending() == 0 and writer.totals.written == 2


def test_rows_wait_while_another_process_holds_the_warehouse(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "warehouse.duckdb", lock_timeout_s=0.3)
    warehouse.initialise()
    writer = BatchWriter(warehouse)
    writer.submit("baanx", [_obs("a"), _obs("bb")])
    writer.submit("altinn", [_obs("ccc", "altinn")])
    with held(warehouse.path):
        asyncio.run(writer.flush())
    assert writer.pending() == 3  # kept, not dropped
    assert writer.totals.errors and "locked" in writer.totals.errors[0]
    asyncio.run(writer.flush())
    assert writer.pending() == 0
    assert _stored(warehouse) == {"a", "bb", "ccc"}
