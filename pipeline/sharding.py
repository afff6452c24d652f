"""Polling shards: N poller processes (on one machine or many), each owning a share of the
orders, none waiting for another.

Shard K of N owns the orders whose `hash(provider, order_id) % N` is K (DuckDB's hash: the same
in every process that runs the same DuckDB release, so run every shard from one install). It
keeps its orders and their polling state in a warehouse of its own,
`<data dir>/shards/shard-K-of-N.duckdb`, which no other process opens, and writes what it polls
to the poll log (`pipeline.polllog`), which the main warehouse folds in at each refresh. Orders
are registered in the main warehouse as always (`pipeline track`, the inbox); before each tick
a shard copies its new orders from there, reading it for a moment, and keeps polling the
orders it has if the main warehouse is busy.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Sequence
from pathlib import Path

from pipeline.logstorage import FolderStorage, LogUnavailableError
from pipeline.polling.client import Poller
from pipeline.polling.tick import TickResult, run_window
from pipeline.polllog import SPOOL_SUFFIX, LogStore
from pipeline.providers.registry import ADAPTERS
from pipeline.settings import SHARDS_FOLDER, Settings
from pipeline.warehouse import Warehouse, WarehouseLockedError, append
from pipeline.warehouse.connection import connection
from pipeline.warehouse.store import query

logger = logging.getLogger(__name__)

SYNC_LOCK_WAIT_S = 0.5
"""How long a shard waits for the main warehouse when copying new orders (then tries again
at the next tick)."""
_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclasses.dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (0 ≤ index < count)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index}/{self.count}: need 0 <= K < N")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`K/N` → shard K of N.

        Raises:
            ValueError: not of that form, or K not below N.
        """
        match = _SPEC.match(text)
        if match is None:
            raise ValueError(f"{text!r}: expected K/N, e.g. 0/2")
        return cls(int(match.group(1)), int(match.group(2)))

    @property
    def name(self) -> str:
        """`shard-K-of-N`: names its warehouse and its log files."""
        return f"shard-{self.index}-of-{self.count}"

    def state_path(self, data_dir: Path) -> Path:
        """The shard's own warehouse (its orders and their polling state)."""
        return data_dir / SHARDS_FOLDER / f"{self.name}.duckdb"

    def spool_path(self, data_dir: Path) -> Path:
        """Where the shard keeps log files an object store did not take, until it does."""
        return self.state_path(data_dir).with_name(f"{self.name}{SPOOL_SUFFIX}")

    @property
    def owns_sql(self) -> str:
        """A SQL condition on `provider` and `order_id` true for this shard's orders."""
        return f"hash(provider, order_id) % {self.count} = {self.index}"


def sync_orders(main: Warehouse, state: Warehouse, shard: Shard) -> int | None:
    """Copy the shard's orders registered in `main` since the last copy into `state`.

    Returns:
        How many orders were new, or None when `main` was busy (or not there yet) and nothing
        was copied.
    """
    if not main.path.is_file():
        return None
    with state.connect() as con:
        newest = con.execute("SELECT max(registered_at) FROM orders").fetchall()[0][0]
    try:
        with connection(main.path, read_only=True, lock_timeout_s=SYNC_LOCK_WAIT_S) as con:
            # Orders registered in the same instant as the newest one copied may have come
            # after the copy: that instant is read again (appending skips the ones stored).
            orders = query(
                con,
                f"SELECT * FROM orders WHERE {shard.owns_sql} "
                "AND (CAST(? AS TIMESTAMPTZ) IS NULL OR registered_at >= ?)",
                [newest, newest],
            )
    except WarehouseLockedError:
        logger.info("%s: main warehouse busy; polling the orders already copied", shard.name)
        return None
    with state.transaction() as con:
        return append(con, "orders", orders)


def shard_store(settings: Settings, shard: Shard) -> tuple[Warehouse, LogStore]:
    """The shard's own warehouse, with its orders copied from the main one, and the log store
    its answers go to."""
    state = Warehouse(shard.state_path(settings.data_dir), lock_timeout_s=settings.lock_timeout_s)
    state.initialise()
    sync_orders(main_warehouse(settings), state, shard)
    log = settings.poll_log()
    spool = (
        None
        if isinstance(log, FolderStorage)
        else FolderStorage(shard.spool_path(settings.data_dir))
    )
    return state, LogStore(log, state, shard.name, spool)


def main_warehouse(settings: Settings) -> Warehouse:
    """The warehouse every shard copies its orders from and the refresh folds the log into."""
    return Warehouse(settings.warehouse_path, lock_timeout_s=settings.lock_timeout_s)


async def poll_shard(
    settings: Settings,
    shard: Shard,
    *,
    providers: Sequence[str],
    duration_s: float,
    tick_s: float,
) -> TickResult:
    """Poll shard `shard`'s orders for `duration_s` seconds, answers to the poll log: what
    `pipeline poll --shard K/N --duration S` and the Dagster job `poll_shard` run."""
    state, store = shard_store(settings, shard)
    main = main_warehouse(settings)

    def copy_new_orders() -> None:
        sync_orders(main, state, shard)

    async with Poller(settings, {slug: ADAPTERS[slug] for slug in providers}) as poller:
        result = await run_window(
            state,
            poller,
            duration_s=duration_s,
            providers=providers,
            tick_s=tick_s,
            before_tick=copy_new_orders,
            store=store,
        )
    try:
        store.send_spool()  # a window that wrote nothing has not tried
    except LogUnavailableError as error:  # the spool itself failed: its files stay
        logger.warning("%s: spool not sent: %s", shard.name, error)
    return result
