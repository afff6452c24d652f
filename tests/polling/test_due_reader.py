"""Due-order reads shared by the providers' loops: providers asking together share one warehouse
connection and each gets its own rows; a failed open fails each waiting provider with the error;
closing the reader leaves no loop waiting; a provider's candidates are its orders registered
since the bound it asks with, each with its poll state."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from pipeline.intake import make_order, register
from pipeline.polling.due_reader import DueReader
from pipeline.polling.schedule import candidates_since
from pipeline.providers.registry import REGISTRY
from pipeline.warehouse import Warehouse, WarehouseLockedError

PROVIDERS = ("sms4sats", "baanx", "altinn")
EVER = datetime(2000, 1, 1, tzinfo=UTC)
"""A `since` before every order here: each provider's candidates are all of its orders."""


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
        frames = await asyncio.gather(*(reader.read(p, EVER) for p in PROVIDERS))
        return [frame["provider"].unique().to_list() for frame in frames]

    assert asyncio.run(together()) == [["sms4sats"], ["baanx"], []]
    assert counting.opened == 1


def test_a_failed_open_fails_every_waiting_provider(counting: CountingWarehouse) -> None:
    counting.refuse = WarehouseLockedError(counting.path, 4242, 1.0)

    async def together() -> list[object]:
        reader = DueReader(counting)
        return await asyncio.gather(
            *(reader.read(p, EVER) for p in PROVIDERS), return_exceptions=True
        )

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
        reading = asyncio.gather(*(reader.read(p, EVER) for p in PROVIDERS))
        await asyncio.sleep(close_after_s)
        reader.close()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(reading, timeout=5)

    asyncio.run(closed_midway())


def test_candidates_are_the_orders_registered_since_the_bound_with_their_poll_state(
    warehouse: Warehouse,
) -> None:
    """Orders registered before `since` are left out; of the others, one finished with (seen
    terminal and checked after its grace) is left out and one still polled keeps its poll
    state, though its tracking row is read only from `since` on."""
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    since = now - timedelta(hours=1)
    register(
        warehouse,
        [
            make_order("sms4sats", order_id, order_kind="sms_receive", registered_at=at)
            for order_id, at in (
                ("old", since - timedelta(minutes=1)),
                ("finished", since + timedelta(minutes=1)),
                ("polled", since + timedelta(minutes=2)),
                ("new", since + timedelta(minutes=3)),
            )
        ],
        source="test",
    )
    polled_at = since + timedelta(minutes=5)
    with warehouse.connect() as con:
        con.execute(
            "INSERT INTO order_tracking (provider, order_id, last_polled_at, last_state, "
            "last_ok_at, is_terminal, grace_checked) VALUES "
            "('sms4sats', 'old', ?, 'pending', ?, false, false), "
            "('sms4sats', 'finished', ?, 'completed', ?, true, true), "
            "('sms4sats', 'polled', ?, 'pending', ?, false, false)",
            [since - timedelta(minutes=1)] * 2 + [polled_at] * 4,
        )

    frame = asyncio.run(DueReader(warehouse).read("sms4sats", since)).sort("order_id")
    assert frame["order_id"].to_list() == ["new", "polled"]
    assert frame["last_state"].to_list() == [None, "pending"]
    assert frame["last_polled_at"].to_list() == [None, polled_at]


@pytest.mark.parametrize("slug", ["sms4sats", "smsonline", "ordinalsbot", "baanx", "altinn"])
def test_an_order_seen_terminal_at_its_tracking_age_is_a_candidate_for_its_grace_check(
    slug: str,
) -> None:
    """Its re-check falls due past the tracking age, after the grace; read then, or a whole
    tracking age later (a poller stopped meanwhile), it is still among the candidates."""
    policy = REGISTRY.spec(slug).policy
    registered = datetime(2026, 6, 1, tzinfo=UTC)
    seen_terminal = registered + timedelta(seconds=policy.max_tracking_age_s)
    due = seen_terminal + timedelta(seconds=policy.terminal_grace_s)
    for read_at in (due, due + timedelta(seconds=policy.max_tracking_age_s)):
        assert candidates_since(policy, read_at) <= registered
