"""The single warehouse writer of a polling run.

DuckDB allows one writer, so the providers' loops never write themselves: they hand their
observations to a `BatchWriter`, which writes about once a second from a worker thread, all
providers' rows together (`write_batches`: should the warehouse refuse them, each provider's
rows in their own transaction, so a refused batch never costs another provider's rows).
While another process holds the warehouse, rows wait in memory and are written once it is free;
polling goes on meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
from collections.abc import Callable, Sequence

from pipeline.ingest import BatchResult, write_batches
from pipeline.logstorage import LogUnavailableError
from pipeline.model import Observation
from pipeline.warehouse import Warehouse, WarehouseLockedError

logger = logging.getLogger(__name__)

FLUSH_EVERY_S = 1.0

ObservationStore = Callable[[Sequence[Observation]], tuple[BatchResult, dict[str, Exception]]]
"""Where a flush goes: the warehouse (`write_batches`, the default) or a shard's log
(`pipeline.polllog.LogStore`). Returns what was stored and, per provider, why rows were not."""


@dataclasses.dataclass
class WriteTotals:
    """What the writer stored, and what it could not."""

    written: int = 0
    quarantined: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)


class BatchWriter:
    """Collects observations per provider and writes them in the background.

    Use `submit` from the event loop; `flush` writes everything pending (one thread at a time);
    `run` flushes every `flush_every_s` until told to stop, then once more.
    """

    def __init__(
        self,
        warehouse: Warehouse,
        *,
        flush_every_s: float = FLUSH_EVERY_S,
        store: ObservationStore | None = None,
    ) -> None:
        self.store = store or functools.partial(write_batches, warehouse)
        self.flush_every_s = flush_every_s
        self.totals = WriteTotals()
        self._pending: dict[str, list[Observation]] = {}
        self._lock = asyncio.Lock()

    def submit(self, provider: str, observations: Sequence[Observation]) -> None:
        """Queue a provider's observations for the next flush."""
        if observations:
            self._pending.setdefault(provider, []).extend(observations)

    def pending(self, provider: str | None = None) -> int:
        """Observations waiting to be written (for one provider, or all)."""
        if provider is not None:
            return len(self._pending.get(provider, ()))
        return sum(len(rows) for rows in self._pending.values())

    async def flush(self) -> None:
        """Write everything pending. Rows refused for a lock stay pending for the next flush."""
        async with self._lock:
            batches, self._pending = self._pending, {}
            if not batches:
                return
            left = await asyncio.to_thread(self._write, batches)
            for provider, rows in left.items():
                self._pending[provider] = rows + self._pending.get(provider, [])

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every `flush_every_s` seconds until `stop` is set, then once more."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.flush_every_s)
            await self.flush()
        # Rows may have arrived while the last flush was writing.
        await self.flush()

    def _write(self, batches: dict[str, list[Observation]]) -> dict[str, list[Observation]]:
        """Write every provider's batch; returns the batches that must wait
        (the warehouse locked, or the poll log's storage not answering)."""
        rows = [row for provider_rows in batches.values() for row in provider_rows]
        try:
            result, failed = self.store(rows)
        except (WarehouseLockedError, LogUnavailableError) as error:
            waiting = ", ".join(f"{len(r)} {provider}" for provider, r in batches.items())
            self._record_error(f"observations wait ({waiting}): {error}")
            return batches
        except Exception as error:  # a broken warehouse: say so, keep polling
            for provider, provider_rows in batches.items():
                self._record_error(
                    f"{len(provider_rows)} {provider} observations not stored: "
                    f"{type(error).__name__}"
                )
            return {}
        self._count(result)
        for provider, reason in failed.items():
            self._record_error(
                f"{len(batches.get(provider, ()))} {provider} observations not stored: "
                f"{type(reason).__name__}"
            )
        return {}

    def _count(self, result: BatchResult) -> None:
        self.totals.written += result.written
        self.totals.quarantined += result.quarantined

    def _record_error(self, message: str) -> None:
        logger.error("%s", message)
        self.totals.errors.append(message)
