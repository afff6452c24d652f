"""Due-order reads shared by the providers' loops: one warehouse connection for every provider
that asks at about the same time.

Opening the warehouse costs far more than a provider's due query: DuckDB builds a database
instance on each open, about 11 ms of CPU on a 2-core machine whatever the file holds. A pass asks
for every provider at once, so its six opens become one; in a window, loops that ask while a read
is running share the next one. Each provider still gets its own rows, or its own error.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import polars as pl

from pipeline.polling.schedule import DUE_QUERY
from pipeline.warehouse import Warehouse
from pipeline.warehouse.store import query

Read = pl.DataFrame | Exception
"""A provider's due orders, or why they could not be read."""


class DueReader:
    """Reads providers' rows of `DUE_QUERY`, batching the providers that wait."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self._waiting: list[tuple[str, datetime, asyncio.Future[pl.DataFrame]]] = []
        self._reading: asyncio.Task[None] | None = None

    async def read(self, provider: str, since: datetime) -> pl.DataFrame:
        """`provider`'s candidates registered `since` then (`schedule.candidates_since`), read
        with those of every provider asking meanwhile.

        Raises:
            WarehouseLockedError: another process held the warehouse too long.
            Exception: whatever else kept this provider's rows from being read.
        """
        future: asyncio.Future[pl.DataFrame] = asyncio.get_running_loop().create_future()
        self._waiting.append((provider, since, future))
        if self._reading is None or self._reading.done():
            # Starts after the tasks already scheduled, so a pass's providers all join it.
            self._reading = asyncio.create_task(self._read_waiting())
        return await future

    def close(self) -> None:
        """Stop waiting for a read in progress (its thread finishes on its own, as before)."""
        if self._reading is not None:
            self._reading.cancel()
        for *_, future in self._waiting:
            future.cancel()
        self._waiting = []

    async def _read_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                reads = await asyncio.to_thread(
                    self._read, list(dict.fromkeys((p, since) for p, since, _ in batch))
                )
            except asyncio.CancelledError:  # closed: nobody waits forever for this batch
                for *_, future in batch:
                    future.cancel()
                raise
            except Exception as error:  # no connection: every provider of the batch failed
                reads = {(provider, since): error for provider, since, _ in batch}
            for provider, since, future in batch:
                if future.done():  # its loop stopped waiting
                    continue
                outcome = reads[provider, since]
                if isinstance(outcome, Exception):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    def _read(self, asked: list[tuple[str, datetime]]) -> dict[tuple[str, datetime], Read]:
        reads: dict[tuple[str, datetime], Read] = {}
        with self.warehouse.connect() as con:
            for provider, since in asked:
                try:
                    reads[provider, since] = query(con, DUE_QUERY, [since, provider, since])
                except Exception as error:
                    reads[provider, since] = error
        return reads
