"""The report's cumulative-incidence curves agree with the medians in the table beside them: both
come from the interval-censored NPMLE, so the line the chart draws for a provider crosses 50 %
at that provider's `median_s`. The report reads them from table `incidence_curves`. The curve is
drawn with straight segments (the NPMLE rises linearly inside a polling interval), starts at
(0, 0) and stops at `known_until_s`."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pipeline.analytics.curves import provider_curves
from pipeline.analytics.metrics import code_records
from pipeline.analytics.survival import QUANTILE_TOLERANCE
from pipeline.cells import CELL_GRID, read_record_cells
from pipeline.report import charts
from pipeline.report.data import ReportData, load
from pipeline.warehouse import Warehouse, query

HALF = 0.5
RELATIVE_TOLERANCE = 1e-6
"""The crossing is read off the drawn points exactly; only float rounding separates the two."""


@pytest.fixture(scope="module")
def data(published: Path) -> ReportData:
    return load(published)


def _drawn(curves: pl.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The lines the report's chart draws, by provider, as (seconds, share) points."""
    plot = charts.cumulative_incidence_chart(curves, title="curves", ylabel="share")
    assert plot is not None
    seconds = charts.curves_unit(curves).seconds
    return {key: (line.x * seconds, line.y) for key, line in plot.lines().items()}


def _first_crossing(x: np.ndarray, y: np.ndarray, level: float) -> float:
    """Where the polyline (x, y) first reaches `level` (NaN if it never does); a sum of masses
    that should be exactly `level` may miss it by rounding, as the estimator allows for."""
    hit = np.flatnonzero(y >= level - QUANTILE_TOLERANCE)
    if hit.size == 0:
        return float("nan")
    j = int(hit[0])
    if j == 0 or y[j] <= y[j - 1]:
        return float(x[j])
    share = min(max((level - y[j - 1]) / (y[j] - y[j - 1]), 0.0), 1.0)
    return float(x[j - 1] + share * (x[j] - x[j - 1]))


@pytest.mark.parametrize(
    ("curves_field", "table_field"),
    [("code_curves", "time_to_code"), ("completion_curves", "time_to_completion")],
)
def test_drawn_curve_crosses_half_at_the_tables_median(
    data: ReportData, curves_field: str, table_field: str
) -> None:
    curves: pl.DataFrame = getattr(data, curves_field)
    table: pl.DataFrame = getattr(data, table_field)
    lines = _drawn(curves)
    medians = table.filter(pl.col("median_s").is_not_null())
    assert not medians.is_empty()
    for provider, median_s in medians.select("provider", "median_s").iter_rows():
        x, y = lines[provider]
        crossing = _first_crossing(x, y, HALF)
        assert crossing == pytest.approx(median_s, rel=RELATIVE_TOLERANCE), provider


def test_the_check_tells_npmle_from_the_midpoint_estimate(data: ReportData) -> None:
    """Somewhere the midpoint median differs from the NPMLE's by more than the tolerance above,
    so a curve drawn from the midpoint estimate would fail the agreement test."""
    both = pl.concat(
        [
            t.select("provider", "median_s", "midpoint_median_s")
            for t in (data.time_to_code, data.time_to_completion)
        ]
    ).drop_nulls()
    differs = (
        (both["median_s"] - both["midpoint_median_s"]).abs() > RELATIVE_TOLERANCE * both["median_s"]
    ).any()
    assert differs


def test_curves_are_straight_segments_that_stop_where_they_are_known(data: ReportData) -> None:
    curves = data.code_curves
    lines = _drawn(curves)
    assert set(lines) == set(curves["provider"].unique())
    for provider, (x, y) in lines.items():
        assert (x[0], y[0]) == (0.0, 0.0)
        assert np.all(np.diff(x) >= 0) and np.all(np.diff(y) >= -1e-12)
        part = curves.filter(pl.col("provider") == provider)
        known_until = part["known_until_s"].max()
        expected_end = known_until if known_until is not None else part["time_s"].max()
        assert x[-1] == pytest.approx(expected_end)
        assert y[-1] == pytest.approx(part["cif"].max())


def test_the_report_reads_the_stored_curves(
    published: Path, data: ReportData, tmp_path: Path
) -> None:
    """The curves come from table `incidence_curves`, not from the status history: with the
    history gone the report still has them, as stored; and they are what the analytics compute
    (from the records collapsed into cells), within the cells' grid of the records one by one."""
    copy = tmp_path / "published.duckdb"
    shutil.copy(published, copy)
    with Warehouse(copy).connect() as con:
        history = query(con, "SELECT * FROM status_history")
        orders = query(con, "SELECT * FROM orders")
        cells = read_record_cells(con, datetime.now(UTC))["code_records"]
        con.execute("DELETE FROM status_history")
        con.execute("DELETE FROM orders")
    without_history = load(copy)
    assert_frame_equal(without_history.code_curves, data.code_curves)
    assert without_history.completion_counts == data.completion_counts
    recomputed, counts = provider_curves(cells)
    assert_frame_equal(data.code_curves, recomputed)
    assert data.code_counts == counts
    one_by_one, _ = provider_curves(code_records(history, orders))
    for provider in counts:
        on_grid, exact = (_median(c.filter(provider=provider)) for c in (recomputed, one_by_one))
        assert (on_grid is None) == (exact is None)
        if on_grid is not None and exact is not None:
            # Widened bounds move a small sample's median most: 1.7 % for sms4sats here.
            assert abs(on_grid / exact - 1) <= 4 * CELL_GRID, provider


def _median(curve: pl.DataFrame) -> float | None:
    """Where a curve first reaches one half."""
    value = curve.filter(pl.col("cif") >= 0.5)["time_s"].min()
    return float(value) if isinstance(value, float) else None
