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
from pipeline.cells import count_record_cells
from pipeline.derived import refresh_derived
from pipeline.warehouse import Warehouse


def _hours_estimated(monkeypatch: pytest.MonkeyPatch) -> list[set[datetime]]:
    """Each call's hours of creation, as `expiry_rates_by_hour` asks for estimates."""
    calls: list[set[datetime]] = []

    def recording(records: pl.DataFrame, **kwargs: object) -> pl.DataFrame:
        calls.append(set(records["origin_at"].to_list()))
        return expiry_over_time(records)

    monkeypatch.setattr(expiry_hours, "expiry_over_time", recording)
    return calls


def _every_hour_afresh(warehouse: Warehouse, as_of: datetime) -> pl.DataFrame:
    with warehouse.transaction() as con:
        return expiry_over_time(count_record_cells(con, as_of)["expiry_records"])


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
    stored = warehouse.read("SELECT * FROM expiry_rates_over_time")
    assert set(stored["bucket_start"].to_list()) == old_hours | estimated
    assert_frame_equal(stored, _every_hour_afresh(warehouse, end), check_dtypes=False)


def test_rows_stored_by_another_release_are_all_estimated_again(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    newest = refreshed_at_once(warehouse)
    with warehouse.connect() as con:
        con.execute("ALTER TABLE expiry_rates_over_time DROP COLUMN ci_low")
    calls = _hours_estimated(monkeypatch)
    refresh_derived(warehouse, as_of=newest)
    expected = _every_hour_afresh(warehouse, newest)
    assert set().union(*calls) == set(expected["bucket_start"].to_list())
    stored = warehouse.read("SELECT * FROM expiry_rates_over_time")
    assert_frame_equal(stored, expected, check_dtypes=False)
