"""The report's charts keep everything they draw inside the image: a long finding in a chart
title is wrapped onto more lines (never shortened), tick labels, axis titles and legends get the
room they need, and time axes use the unit the tables use."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from svg_reading import drawn, parse, size, title_lines

from pipeline.report import charts
from pipeline.report.data import ReportData, load
from pipeline.report.plot import Plot

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
