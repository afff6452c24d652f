"""Records collapsed into cells (`pipeline.cells.read_record_cells`): what each time becomes
on the grid, and that no order is lost or counted twice."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import polars as pl

from pipeline.analytics.events import RECORD_COLUMNS
from pipeline.analytics.metrics import completion_summary
from pipeline.analytics.survival import CENSORED, COMPETING, EVENT, WEIGHT
from pipeline.cells import CELL_GRID, read_record_cells
from pipeline.records import RECORD_TABLES
from pipeline.warehouse import Warehouse, replace_table

AS_OF = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
WINDOW_S, HORIZON_S = 1440.0, 1500.0
"""SMSOnline's horizon: a time half a grid step below it rounds to a step above it."""


def _record(code: int, after: float, by: float | None, time_s: float, **extra: object) -> dict:
    return {
        "provider": "sms4sats",
        "order_id": f"o{after}-{by}-{time_s}-{len(extra)}",
        "order_kind": "sms_receive",
        "service": "tg",
        "country": "de",
        "origin_at": AS_OF - timedelta(days=2, minutes=5),
        "registered_at": AS_OF - timedelta(days=2),
        "event_code": code,
        "lower_s": after,
        "upper_s": by,
        "event_after_s": after,
        "event_by_s": by,
        "time_s": time_s,
        **extra,
    }


EXPIRY_COLUMNS = {
    **RECORD_COLUMNS,
    "window_s": pl.Float64(),
    "horizon_s": pl.Float64(),
    "window_documented": pl.Boolean(),
}


def _cells(warehouse: Warehouse, rows: list[dict], *, expiry: bool = False) -> pl.DataFrame:
    """`rows` stored as the completion records (or the expiry records, with a 600 s window),
    the other record tables empty, and read back as cells."""
    if expiry:
        rows = [{**r, "window_s": WINDOW_S, "horizon_s": HORIZON_S, "window_documented": True}
                for r in rows]  # fmt: skip
    table = "expiry_records" if expiry else "completion_records"
    with warehouse.transaction() as con:
        for name in RECORD_TABLES:
            columns = EXPIRY_COLUMNS if name == "expiry_records" else RECORD_COLUMNS
            replace_table(con, name, pl.DataFrame(rows if name == table else [], schema=columns))
        return read_record_cells(con, AS_OF)[table]


def _near(value: float, target: float) -> bool:
    """`value` is `target` on the grid: at most half a step away."""
    return abs(math.log(value / target)) <= CELL_GRID / 2 + 1e-12


def test_nearby_times_share_a_cell_and_every_time_moves_half_a_step_at_most(
    warehouse: Warehouse,
) -> None:
    cells = _cells(
        warehouse,
        [
            _record(EVENT, 100.0, 100.0, 100.0),  # provider event times 0.2 % apart
            _record(EVENT, 100.2, 100.2, 100.2),
            _record(EVENT, 99.0, 101.0, 100.0),  # seen between two polls
            _record(CENSORED, 250.0, None, 250.0),  # still open at its last poll
            _record(COMPETING, 0.0, 40.0, 20.0),  # before the first poll
        ],
    ).sort("event_code", "event_after_s")
    assert cells[WEIGHT].sum() == 5
    exact = cells.filter(pl.col("event_code") == EVENT, pl.col(WEIGHT) == 2).row(0, named=True)
    assert exact["event_after_s"] == exact["event_by_s"]
    assert abs(math.log(exact["event_by_s"] / 100.1)) <= CELL_GRID
    interval = cells.filter(pl.col("event_code") == EVENT, pl.col(WEIGHT) == 1).row(0, named=True)
    assert _near(interval["event_after_s"], 99.0) and _near(interval["event_by_s"], 101.0)
    assert abs(math.log(interval["resolution_s"] / 2.0)) <= CELL_GRID
    open_order = cells.filter(pl.col("event_code") == CENSORED).row(0, named=True)
    assert _near(open_order["event_after_s"], 250.0) and _near(open_order["time_s"], 250.0)
    assert open_order["event_by_s"] is None and open_order["resolution_s"] is None
    competing = cells.filter(pl.col("event_code") == COMPETING).row(0, named=True)
    assert competing["event_after_s"] == 0.0  # the origin stays where it is


def test_times_keep_their_order_on_the_grid(warehouse: Warehouse) -> None:
    """Orders polled on one schedule: the poll that saw most of them done saw the others still
    open. The open orders must not move before the outcomes' upper bound (bounds rounded
    outwards and open times downwards did that, and the median became unknown), and no two
    times may swap."""
    rows = [_record(EVENT, 152.93, 168.17, 160.5) for _ in range(77)]
    rows += [_record(COMPETING, 152.93, 168.17, 160.5) for _ in range(13)]
    rows += [_record(CENSORED, 168.17, None, 168.17) for _ in range(10)]
    rows += [_record(CENSORED, 168.25, None, 168.25)]
    cells = _cells(warehouse, rows)
    upper = cells.filter(pl.col("event_code") != CENSORED)["event_by_s"].max()
    at_the_poll = cells.filter(pl.col("event_code") == CENSORED)["time_s"].max()
    assert at_the_poll == upper
    # Open orders seen at or after every outcome's upper bound stay at or after it.
    assert cells.filter(pl.col("event_code") == CENSORED)["time_s"].min() >= upper
    summary = completion_summary(cells)
    assert summary.filter(pl.col("group_level") == "provider")["median_s"].item() is not None


def test_registration_becomes_the_shortest_window_that_holds_it(warehouse: Warehouse) -> None:
    ages = [timedelta(minutes=10), timedelta(hours=5), timedelta(days=3), timedelta(days=90)]
    rows = [
        _record(EVENT, 10.0 * (k + 1), 10.0 * (k + 1), 10.0 * (k + 1), registered_at=AS_OF - age)
        for k, age in enumerate(ages)
    ]
    cells = _cells(warehouse, [*rows, _record(EVENT, 50.0, 50.0, 50.0, registered_at=None)])
    got = cells.sort("time_s")["registered_at"].to_list()
    assert got[:3] == [
        AS_OF - timedelta(hours=1),
        AS_OF - timedelta(days=1),
        AS_OF - timedelta(days=7),
    ]
    assert got[3] < AS_OF - timedelta(days=30)  # only in the all-time window
    assert got[4] is None  # in no window, as before


def test_expiry_times_never_cross_the_horizon(warehouse: Warehouse) -> None:
    just_before = HORIZON_S - 0.5
    cells = _cells(
        warehouse,
        [
            _record(EVENT, just_before, just_before, just_before),
            # Followed to just short of the horizon: the rate there stays unknown.
            _record(CENSORED, just_before, None, just_before),
            _record(CENSORED, HORIZON_S, None, HORIZON_S),
            _record(COMPETING, 1600.0, 1600.0, 1600.0),
            _record(CENSORED, 5_000.0, None, 5_000.0),
            _record(EVENT, 9_000.0, 9_000.0, 9_000.0),
        ],
        expiry=True,
    )
    followed = cells.filter(pl.col("event_code") == CENSORED, pl.col("time_s") <= HORIZON_S)
    short, full = sorted(followed["time_s"].to_list())
    assert just_before * (1 - CELL_GRID) <= short < HORIZON_S  # not followed to the horizon
    assert full == HORIZON_S  # followed exactly to the horizon: still reaches it
    expired = cells.filter(pl.col("event_code") == EVENT, pl.col("time_s") <= HORIZON_S)
    assert expired[WEIGHT].sum() == 1  # the expiry just inside the horizon stays in it
    after = cells.filter(pl.col("time_s") > HORIZON_S)
    assert after["time_s"].unique().to_list() == [HORIZON_S + 1]  # later times are one time
    assert after[WEIGHT].sum() == 3


def test_an_interval_narrower_than_a_step_stays_an_interval(warehouse: Warehouse) -> None:
    """Polls 2 s apart at 1,500 s: both bounds round to one point, which would read as an exact
    time (and switch the smoothing off for a provider polled so): it keeps a step's width."""
    cells = _cells(warehouse, [_record(EVENT, 1503.0, 1505.0, 1504.0)])
    row = cells.row(0, named=True)
    assert row["event_after_s"] < row["event_by_s"]
    assert _near(row["event_by_s"], 1505.0)
    assert row["event_after_s"] <= 1503.0
    assert abs(math.log(row["event_by_s"] / row["event_after_s"]) - CELL_GRID) < 1e-9
