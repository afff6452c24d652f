"""The report's charts keep everything they draw inside the image: a long finding in a chart
title is wrapped onto more lines (never shortened), tick labels, axis titles and legends get the
room they need, and time axes use the unit the tables use."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from svg_reading import clip_box, clipped_groups, drawn, parse, size, title_lines

from pipeline.report import charts
from pipeline.report.data import ReportData, load
from pipeline.report.plot import ErrorBars, Plot

LONG_TITLE = (
    "The naive median understates time to success by over 5% for 4 of 5 providers, and "
    "ordinalsbot is slowest of all: half of its orders succeed only within 2.8 min (smsonline: "
    "6.7 s)"
)
SHORT_TITLE = "baanx is fastest"
EDGE_TOLERANCE_PX = 0.5


@pytest.fixture(scope="module")
def data(published: Path) -> ReportData:
    return load(published)


ChartCall = Callable[[ReportData, str], Plot | None]
CHARTS: dict[str, ChartCall] = {
    "time to code": lambda d, title: charts.cumulative_incidence_chart(
        d.code_curves, title=title, ylabel="orders with their code", counts=d.code_counts
    ),
    "time to completion": lambda d, title: charts.cumulative_incidence_chart(
        d.completion_curves, title=title, ylabel="orders that succeeded"
    ),
    "expiry over time": lambda d, title: charts.expiry_over_time_chart(
        d.expiry_rates_over_time, title=title
    ),
    "error mix": lambda d, title: charts.error_mix_chart(d.error_mix, title=title),
    "latency": lambda d, title: charts.latency_chart(d.reliability, title=title),
    "naive vs aware": lambda d, title: charts.naive_vs_aware_chart(
        d.time_to_completion, title=title
    ),
}


def _plot(data: ReportData, name: str, title: str) -> Plot:
    plot = CHARTS[name](data, title)
    assert plot is not None
    return plot


@pytest.mark.parametrize("name", list(CHARTS))
@pytest.mark.parametrize("title", [LONG_TITLE, SHORT_TITLE], ids=["long", "short"])
def test_nothing_drawn_outside_the_image(data: ReportData, name: str, title: str) -> None:
    root = parse(_plot(data, name, title).svg())
    width, height = size(root)
    for element, (x0, y0, x1, y1) in drawn(root):
        where = (name, element.tag, element.attrib, element.text)
        assert x0 >= -EDGE_TOLERANCE_PX and y0 >= -EDGE_TOLERANCE_PX, where
        assert x1 <= width + EDGE_TOLERANCE_PX and y1 <= height + EDGE_TOLERANCE_PX, where
    shown = title_lines(root)
    assert " ".join(shown) == title  # wrapped, never shortened
    assert (len(shown) > 1) == (title == LONG_TITLE)


@pytest.mark.parametrize("name", list(CHARTS))
def test_tick_labels_and_plot_do_not_overlap(data: ReportData, name: str) -> None:
    """The y tick labels end left of the plot area and the x tick labels start below it."""
    root = parse(_plot(data, name, SHORT_TITLE).svg())
    boxes = drawn(root)
    axes = [b for e, b in boxes if e.tag.endswith("line") and e.get("stroke") == "#444444"]
    left = min(b[0] for b in axes)
    bottom = max(b[3] for b in axes if b[1] == b[3] - 1.0)  # the horizontal axis line
    for element, (_, y0, x1, _) in boxes:
        if element.tag.endswith("text") and element.get("text-anchor") == "end":
            assert x1 <= left, (name, element.text)
        if element.tag.endswith("text") and element.get("text-anchor") == "middle":
            assert y0 >= bottom or x1 <= left, (name, element.text)


def test_time_axes_use_the_unit_of_the_longest_time(data: ReportData) -> None:
    # Synthetic fast-profile orders: codes within seconds, inscriptions within minutes.
    completion = _plot(data, "time to completion", SHORT_TITLE)
    assert completion.x.title == "time since the order was created (minutes)"
    longest_s = data.completion_curves["time_s"].max()
    assert completion.x.hi == pytest.approx(longest_s / 60, rel=0.1)  # type: ignore[operator]
    code = _plot(data, "time to code", SHORT_TITLE)
    assert code.x.title == "time since the order was created (seconds)"
    assert data.code_curves["time_s"].max() < 60  # type: ignore[operator]
    assert code.x.hi <= 60 * 1.1


def test_a_curve_is_drawn_up_to_where_it_is_known(data: ReportData) -> None:
    """Past its last point a curve stays flat until `known_until_s`, and the axis follows."""
    known_until_s = 600.0
    followed = data.code_curves.with_columns(pl.lit(known_until_s).alias("known_until_s"))
    plot = charts.cumulative_incidence_chart(followed, title=SHORT_TITLE, ylabel="codes")
    assert plot is not None
    assert plot.x.title == "time since the order was created (minutes)"
    assert plot.x.hi == pytest.approx(known_until_s / 60, rel=0.1)
    lines = plot.lines()
    assert set(lines) == set(followed["provider"].unique())
    for line in lines.values():
        assert line.x[-1] == pytest.approx(known_until_s / 60)
        assert line.y[-1] == line.y[-2]


def test_every_drawn_line_is_a_keyed_polyline_per_provider(data: ReportData) -> None:
    plot = _plot(data, "time to code", SHORT_TITLE)
    root = parse(plot.svg())
    keyed = {e.get("data-key") for e in root.iter() if e.get("data-key")}
    assert keyed == set(data.code_curves["provider"].unique())


def _odd_charts() -> dict[str, Plot | None]:
    """Charts of data at the edges: one point, null and NaN intervals, infinities, zeros,
    negative and huge values, a label far too long for the axis."""
    nan, inf = float("nan"), float("inf")
    curves = pl.DataFrame(
        {
            "provider": ["sms4sats", "smsonline", "smsonline", "ordinalsbot"],
            "time_s": [12.0, 5.0, 9.0, 1e9],
            "cif": [0.4, 0.2, nan, 0.5],
            "cif_low": [None, 0.1, None, nan],
            "cif_high": [None, inf, None, 0.9],
            "known_until_s": [None, 9.0, 9.0, inf],
        }
    )
    hour = datetime(2026, 1, 5, 9, tzinfo=UTC)
    rates = pl.DataFrame(
        {
            "provider": ["sms4sats", "baanx"],
            "bucket_start": [hour, hour],
            "expiry_rate": [None, 0.02],
            "ci_low": [None, None],
            "ci_high": [None, None],
            "resolved_share_expired": [0.03, 0.02],
            "resolved_share_ci_low": [0.0, 0.0],
            "resolved_share_ci_high": [None, 0.04],  # undefined where the share is not
        }
    )
    long_name = "a provider whose name goes on " * 8
    reliability = pl.DataFrame(
        {
            "provider": ["sms4sats", long_name, "baanx"],
            "latency_p50_ms": [None, -5.0, 2e9],
            "latency_p95_ms": [120.0, 30.0, 3e9],
        }
    )
    mix = pl.DataFrame(
        {
            "provider": ["sms4sats", long_name],
            "error_class": [None, "timeout " * 20],
            "polls": [10, 1],
            "share": [0.0, 1e-9],
        }
    )
    medians = pl.DataFrame(
        {
            "provider": ["sms4sats", "altinn"],
            "naive_median_s": [0.0, None],
            "median_s": [None, 30.0],
            "median_ci_low_s": [None, None],
            "median_ci_high_s": [None, inf],
        }
    )
    return {
        "curves": charts.cumulative_incidence_chart(
            curves, title=LONG_TITLE, ylabel="y", counts={"sms4sats": 1}
        ),
        "expiry": charts.expiry_over_time_chart(rates, title=SHORT_TITLE),
        "latency": charts.latency_chart(reliability, title=SHORT_TITLE),
        "mix": charts.error_mix_chart(mix, title=SHORT_TITLE),
        "naive": charts.naive_vs_aware_chart(medians, title=SHORT_TITLE),
    }


@pytest.mark.parametrize("name", ["curves", "expiry", "latency", "mix", "naive"])
def test_data_at_the_edges_draws_a_readable_chart(name: str) -> None:
    plot = _odd_charts()[name]
    assert plot is not None
    document = plot.svg()
    assert b"nan" not in document.lower() and b"inf" not in document.lower()
    root = parse(document)
    width, height = size(root)
    for element, (x0, y0, x1, y1) in drawn(root):
        where = (name, element.tag, element.attrib, element.text)
        assert x0 >= -EDGE_TOLERANCE_PX and y0 >= -EDGE_TOLERANCE_PX, where
        assert x1 <= width + EDGE_TOLERANCE_PX and y1 <= height + EDGE_TOLERANCE_PX, where
    # The plot area keeps a width and a height, and every mark is clipped to it.
    x0, y0, x1, y1 = clip_box(root)
    assert x1 - x0 > 0.25 * width and y1 - y0 > 100
    marks = [e for e in root.iter() if e.tag.endswith(("polyline", "polygon"))]
    assert all(any(e in g.iter() for g in clipped_groups(root)) for e in marks)


def test_an_interval_without_an_upper_bound_stays_on_the_axis() -> None:
    """A resolved share whose interval has no upper end is drawn up to 100 %, and the axis
    goes that far (it was sized by the points alone)."""
    plot = _odd_charts()["expiry"]
    assert plot is not None
    [bars] = [layer for layer in plot.layers if isinstance(layer, ErrorBars)][:1]
    assert bars.high.max() == 1.0
    assert plot.y.hi >= 1.0
