"""The report's charts keep everything they draw inside the figure: a long finding in a chart
title is wrapped onto more lines instead of being cut at the right edge (matplotlib neither wraps
titles nor keeps them inside the figure), and time axes use the unit the tables use."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pipeline.report import charts
from pipeline.report.data import ReportData, load

LONG_TITLE = (
    "The naive median understates time to success by over 5% for 4 of 5 providers, and "
    "ordinalsbot is slowest of all: half of its orders succeed only within 2.8 min (smsonline: "
    "6.7 s)"
)
SHORT_TITLE = "baanx is fastest"
EDGE_TOLERANCE_PX = 1.0


@pytest.fixture(scope="module")
def data(published: Path) -> ReportData:
    return load(published)


ChartCall = Callable[[ReportData, str], bytes | None]
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


def _draw(
    monkeypatch: pytest.MonkeyPatch, data: ReportData, chart: ChartCall, title: str
) -> Figure:
    """Draw `chart` and hand back its figure as it was saved."""
    drawn: list[Figure] = []
    save = charts._png

    def keep(figure: Figure, *args: object) -> bytes:
        drawn.append(figure)
        return save(figure, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(charts, "_png", keep)
    png = chart(data, title)
    assert png is not None and png.startswith(b"\x89PNG")
    [figure] = drawn
    return figure


@pytest.mark.parametrize("name", list(CHARTS))
@pytest.mark.parametrize("title", [LONG_TITLE, SHORT_TITLE], ids=["long", "short"])
def test_nothing_drawn_outside_the_figure(
    monkeypatch: pytest.MonkeyPatch, data: ReportData, name: str, title: str
) -> None:
    figure = _draw(monkeypatch, data, CHARTS[name], title)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    drawn = figure.get_tightbbox(renderer).transformed(figure.dpi_scale_trans)
    frame = figure.bbox
    assert drawn.x0 >= frame.x0 - EDGE_TOLERANCE_PX, (name, drawn, frame)
    assert drawn.x1 <= frame.x1 + EDGE_TOLERANCE_PX, (name, drawn, frame)
    assert drawn.y0 >= frame.y0 - EDGE_TOLERANCE_PX, (name, drawn, frame)
    assert drawn.y1 <= frame.y1 + EDGE_TOLERANCE_PX, (name, drawn, frame)
    [axes] = [a for a in figure.axes if a.get_title(loc="left")]
    shown = axes.get_title(loc="left")
    assert " ".join(shown.split()) == title  # wrapped, never shortened
    assert ("\n" in shown) == (title == LONG_TITLE)


def test_time_axes_use_the_unit_of_the_longest_time(
    monkeypatch: pytest.MonkeyPatch, data: ReportData
) -> None:
    # Synthetic fast-profile orders: codes within seconds, inscriptions within minutes.
    completion = _draw(monkeypatch, data, CHARTS["time to completion"], SHORT_TITLE)
    assert completion.axes[0].get_xlabel() == "time since the order was created (minutes)"
    longest_s = data.completion_curves["time_s"].max()
    assert completion.axes[0].get_xlim()[1] == pytest.approx(longest_s / 60, rel=0.1)  # type: ignore[operator]
    monkeypatch.undo()
    code = _draw(monkeypatch, data, CHARTS["time to code"], SHORT_TITLE)
    assert code.axes[0].get_xlabel() == "time since the order was created (seconds)"
    assert data.code_curves["time_s"].max() < 60  # type: ignore[operator]
    assert code.axes[0].get_xlim()[1] <= 60 * 1.1


def test_a_curve_is_drawn_up_to_where_it_is_known(
    monkeypatch: pytest.MonkeyPatch, data: ReportData
) -> None:
    """Past its last point a curve stays flat until `known_until_s`, and the axis follows."""
    known_until_s = 600.0
    followed = data.code_curves.with_columns(pl.lit(known_until_s).alias("known_until_s"))
    figure = _draw(
        monkeypatch,
        data,
        lambda _, title: charts.cumulative_incidence_chart(followed, title=title, ylabel="codes"),
        SHORT_TITLE,
    )
    axes = figure.axes[0]
    assert axes.get_xlabel() == "time since the order was created (minutes)"
    assert axes.get_xlim()[1] == pytest.approx(known_until_s / 60, rel=0.1)
    for line in axes.get_lines():
        if line.get_gid() is not None:
            assert np.asarray(line.get_xdata())[-1] == pytest.approx(known_until_s / 60)
