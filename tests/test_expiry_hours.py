"""Expiry rates by hour of creation (`pipeline.expiry_hours`): a refresh estimates only the
hours whose orders changed, and the table is the one estimating every hour gives."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest
from daily_orders import daily_orders, refreshed_at_once, store_until
from polars.testing import assert_frame_equal

from pipeline import expiry_hours
from pipeline.analytics.metrics import expiry_over_time
from pipeline.cells import cells_relation
from pipeline.derived import refresh_derived
from pipeline.warehouse import Warehouse, query

HOURS = ["provider", "order_kind", "bucket_start"]


def _hours_estimated(monkeypatch: pytest.MonkeyPatch) -> list[set[datetime]]:
    """Each call's hours of creation, as `expiry_rates_by_hour` asks for estimates."""
    calls: list[set[datetime]] = []

    def recording(records: pl.DataFrame, **kwargs: object) -> pl.DataFrame:
        calls.append(set(records["origin_at"].to_list()))
        return expiry_over_time(records)

    monkeypatch.setattr(expiry_hours, "expiry_over_time", recording)
    return calls


def _every_hour_afresh(warehouse: Warehouse, without: datetime | None = None) -> pl.DataFrame:
    """Every hour (but `without`) estimated from cells counted afresh from the expiry records."""
    with warehouse.transaction() as con:
        counted = cells_relation(con, "expiry_records", counted=True)
        cells = query(con, f"SELECT * EXCLUDE (registered_at) FROM {counted}")
    return expiry_over_time(cells.filter(pl.col("origin_at") != without) if without else cells)


def test_a_refresh_estimates_only_the_hours_whose_orders_changed(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    orders, observations = daily_orders()
    first = orders["registered_at"].min()
    assert isinstance(first, datetime)
    # Mid-batch: orders of the last hour before the cut are still open and change after it.
    cut = first + timedelta(days=29, seconds=900)
    store_until(warehouse, orders, observations, cut)
    refresh_derived(warehouse, as_of=cut)
    old_hours = set(warehouse.read("SELECT bucket_start FROM expiry_rates_over_time")[
        "bucket_start"].to_list())  # fmt: skip
    assert len(old_hours) >= 30

    calls = _hours_estimated(monkeypatch)
    end = cut + timedelta(days=2)
    store_until(warehouse, orders, observations, end)
    refresh_derived(warehouse, as_of=end)

    (estimated,) = calls
    assert estimated, "the two new days' hours are estimated"
    assert all(hour >= cut - timedelta(hours=1) for hour in estimated), sorted(estimated)[:3]
    assert estimated & old_hours, "an hour with orders open at the cut is estimated again"
    stored = warehouse.read("SELECT * FROM expiry_rates_over_time").sort(HOURS)
    assert set(stored["bucket_start"].to_list()) == old_hours | estimated
    assert_frame_equal(stored, _every_hour_afresh(warehouse), check_dtypes=False)


def test_rows_stored_by_another_release_are_all_estimated_again(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    newest = refreshed_at_once(warehouse)
    with warehouse.connect() as con:
        con.execute("ALTER TABLE expiry_rates_over_time DROP COLUMN ci_low")
    calls = _hours_estimated(monkeypatch)
    refresh_derived(warehouse, as_of=newest)
    expected = _every_hour_afresh(warehouse)
    assert set().union(*calls) == set(expected["bucket_start"].to_list())
    stored = warehouse.read("SELECT * FROM expiry_rates_over_time").sort(HOURS)
    assert_frame_equal(stored, expected, check_dtypes=False)


def test_fingerprints_of_another_release_have_every_hour_estimated_again(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    newest = refreshed_at_once(warehouse)
    with warehouse.connect() as con:  # an earlier release kept them as 64-bit sums
        con.execute(
            f"CREATE OR REPLACE TABLE {expiry_hours.FINGERPRINTS} AS SELECT provider, "
            "order_kind, bucket_start, 0::UBIGINT AS fingerprint FROM expiry_rates_over_time"
        )
    calls = _hours_estimated(monkeypatch)
    refresh_derived(warehouse, as_of=newest)
    expected = _every_hour_afresh(warehouse)
    assert set().union(*calls) == set(expected["bucket_start"].to_list())
    stored = warehouse.read("SELECT * FROM expiry_rates_over_time").sort(HOURS)
    assert_frame_equal(stored, expected, check_dtypes=False)
    calls.clear()
    refresh_derived(warehouse, as_of=newest)
    assert calls == [set()], "once re-estimated, an unchanged hour is not estimated again"


def test_an_hour_left_without_orders_loses_its_row(warehouse: Warehouse) -> None:
    refreshed_at_once(warehouse)
    with warehouse.transaction() as con:
        (gone,) = con.execute("SELECT min(origin_at) FROM _expiry_cells").fetchone() or (None,)
        assert gone is not None
        # As when the records of its orders were rebuilt with another hour of creation.
        con.execute("DELETE FROM _expiry_cells WHERE origin_at = ?", [gone])
        expiry_hours.refresh_expiry_hours(con)
    stored = warehouse.read("SELECT * FROM expiry_rates_over_time").sort(HOURS)
    assert gone not in set(stored["bucket_start"].to_list())
    assert_frame_equal(stored, _every_hour_afresh(warehouse, without=gone), check_dtypes=False)
