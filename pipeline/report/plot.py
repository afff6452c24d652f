"""A chart as data (`Plot`: axes, layers of marks, a legend) and its layout as SVG.

The chart functions (`pipeline.report.charts`) say what to draw in data units; `Plot.svg` lays
it out: the title wrapped to the chart's width, margins sized to the tick labels, axis titles
and legend measured (`pipeline.report.svg.text_width`), so nothing is drawn outside the image
and the plot area takes what is left. A chart whose title and legend leave too little room
grows taller rather than squeezing the plot; a tick label or legend entry too long for its
place is shortened with an ellipsis. Marks are clipped to the plot area, and points that are
not finite numbers are left out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal

import numpy as np

from pipeline.report.svg import Canvas, FloatArray, Scale, shorten, simplify, text_width, wrap

TITLE_SIZE = 15.0
LABEL_SIZE = 12.0
TICK_SIZE = 11.0
LEGEND_SIZE = 11.0
LINE_HEIGHT = 1.3
"""Line spacing, in font sizes."""
PAD = 10.0
"""Room kept between anything drawn and the image's edge."""
TICK_LENGTH = 4.0
TICK_GAP = 3.0
MIN_PLOT_HEIGHT = 140.0
GRID_COLOUR = "#e5e5e5"
AXIS_COLOUR = "#444444"
TEXT_COLOUR = "#222222"
BAND_OPACITY = 0.18
SIMPLIFY_PX = 0.25
"""Largest distance (pixels) a drawn line may stray from its data: curves of a thousand points
shrink to the few dozen a reader can see."""
SWATCH = 16.0
"""Width of a legend entry's sample."""
MAX_TICK_LABEL_SHARE = 0.3
"""Widest a y tick label may be, as a share of the chart's width (longer ones are shortened
with an ellipsis; the tables beside the chart have them in full)."""
MAX_LEGEND_SHARE = 0.45
"""Widest a legend entry inside the plot may be, as a share of the plot's width."""
CLIP_SLACK = 6.0
"""How far past the plot area marks may reach (a marker on an axis keeps its round)."""


@dataclasses.dataclass(frozen=True)
class Axis:
    """One axis: its range, tick positions and their labels (a label may hold line breaks),
    its title, and optionally a colour per tick label. `inverted`: values grow downwards (a y
    axis of categories listed from the top)."""

    lo: float
    hi: float
    ticks: Sequence[float]
    labels: Sequence[str]
    title: str = ""
    label_colours: Sequence[str] | None = None
    inverted: bool = False


@dataclasses.dataclass(frozen=True)
class Line:
    """A polyline through (x, y); `key` names it in the SVG (`data-key`), for readers."""

    x: FloatArray
    y: FloatArray
    colour: str
    width: float = 2.0
    opacity: float | None = None
    dash: str | None = None
    key: str | None = None


@dataclasses.dataclass(frozen=True)
class Band:
    """The area between `low` and `high` over x (a confidence band)."""

    x: FloatArray
    low: FloatArray
    high: FloatArray
    colour: str
    opacity: float = BAND_OPACITY


@dataclasses.dataclass(frozen=True)
class Markers:
    x: FloatArray
    y: FloatArray
    colour: str
    shape: Literal["circle", "square"] = "circle"
    hollow: bool = False
    size: float = 7.0


@dataclasses.dataclass(frozen=True)
class Bars:
    """Horizontal bars at y positions `y`, from `start` for `length`, `thickness` tall (in y
    units)."""

    y: FloatArray
    start: FloatArray
    length: FloatArray
    colour: str
    thickness: float = 0.6


@dataclasses.dataclass(frozen=True)
class ErrorBars:
    """Vertical intervals from `low` to `high` at x, with caps."""

    x: FloatArray
    low: FloatArray
    high: FloatArray
    colour: str
    width: float = 1.2
    cap: float = 6.0


Layer = Line | Band | Markers | Bars | ErrorBars


@dataclasses.dataclass(frozen=True)
class LegendEntry:
    label: str
    colour: str
    sample: Literal["line", "marker", "hollow", "box"] = "line"


@dataclasses.dataclass(frozen=True)
class Plot:
    """A chart: `size` (pixels, the height a minimum), title, axes, layers drawn in order, and
    a legend inside the plot's lower right corner or centred below it."""

    size: tuple[float, float]
    title: str
    x: Axis
    y: Axis
    layers: Sequence[Layer]
    legend: Sequence[LegendEntry] = ()
    legend_inside: bool = False

    def lines(self) -> dict[str, Line]:
        """The lines that have a key, by key."""
        return {layer.key: layer for layer in self.layers if isinstance(layer, Line) and layer.key}

    def svg(self) -> bytes:
        """The chart as an SVG document."""
        return _Layout(self).draw()


def _lines(label: str) -> list[str]:
    return label.split("\n")


def _widest(labels: Sequence[str], size: float) -> float:
    return max((text_width(line, size) for label in labels for line in _lines(label)), default=0.0)


def _legend_rows(entries: Sequence[LegendEntry], width: float) -> list[list[LegendEntry]]:
    """Entries flowed into rows no wider than `width`."""
    rows: list[list[LegendEntry]] = []
    used = width
    for entry in entries:
        need = _entry_width(entry)
        if rows and used + need <= width:
            rows[-1].append(entry)
            used += need
        else:
            rows.append([entry])
            used = need
    return rows


def _entry_width(entry: LegendEntry) -> float:
    return SWATCH + 5.0 + text_width(entry.label, LEGEND_SIZE) + 16.0


def _fitted(entries: Sequence[LegendEntry], width: float) -> list[LegendEntry]:
    """`entries` with each label shortened so the entry is at most `width` wide."""
    room = width - SWATCH - 21.0
    return [dataclasses.replace(e, label=shorten(e.label, LEGEND_SIZE, room)) for e in entries]


class _Layout:
    """Where everything of one `Plot` goes, then its drawing."""

    def __init__(self, plot: Plot) -> None:
        self.plot = plot
        width, min_height = plot.size
        self.width = width
        self.title = wrap(plot.title, TITLE_SIZE, width - 2 * PAD, bold=True)
        self.y_labels = [
            shorten(label, TICK_SIZE, MAX_TICK_LABEL_SHARE * width) for label in plot.y.labels
        ]
        x_tick_lines = max((len(_lines(label)) for label in plot.x.labels), default=0)
        x_tick_half = _widest(plot.x.labels, TICK_SIZE) / 2.0
        left = PAD + (LABEL_SIZE * LINE_HEIGHT if plot.y.title else 0.0)
        left += _widest(self.y_labels, TICK_SIZE) + TICK_GAP + TICK_LENGTH
        self.left = max(left, PAD + x_tick_half)
        self.right = width - PAD - x_tick_half
        self.x_title = wrap(plot.x.title, LABEL_SIZE, self.right - self.left)
        if plot.legend_inside:
            self.legend = _fitted(plot.legend, MAX_LEGEND_SHARE * (self.right - self.left))
            self.legend_rows: list[list[LegendEntry]] = []
        else:
            self.legend = _fitted(plot.legend, width - 2 * PAD)
            self.legend_rows = _legend_rows(self.legend, width - 2 * PAD)
        self.top = PAD + len(self.title) * TITLE_SIZE * LINE_HEIGHT + 8.0
        self.x_ticks_end = TICK_LENGTH + TICK_GAP + x_tick_lines * TICK_SIZE * LINE_HEIGHT
        below = (
            self.x_ticks_end
            + 4.0
            + len(self.x_title) * LABEL_SIZE * LINE_HEIGHT
            + len(self.legend_rows) * LEGEND_SIZE * 1.6
            + PAD
        )
        self.height = max(min_height, self.top + below + MIN_PLOT_HEIGHT)
        self.bottom = self.height - below
        # The y title is one line turned upright, as long as the plot is tall.
        self.y_title = shorten(plot.y.title, LABEL_SIZE, self.bottom - self.top)
        self.sx = Scale(plot.x.lo, plot.x.hi, self.left, self.right)
        y_from, y_to = (self.top, self.bottom) if plot.y.inverted else (self.bottom, self.top)
        self.sy = Scale(plot.y.lo, plot.y.hi, y_from, y_to)
        self.canvas = Canvas(width, self.height)

    def draw(self) -> bytes:
        self._grid()
        slack = CLIP_SLACK
        self.canvas.clip(
            self.left - slack,
            self.top - slack,
            self.right - self.left + 2 * slack,
            self.bottom - self.top + 2 * slack,
        )
        for layer in self.plot.layers:
            self._layer(layer)
        self.canvas.end_clip()
        self._axes()
        self._titles()
        self._legend()
        return self.canvas.svg(self.plot.title)

    def _grid(self) -> None:
        c = self.canvas
        for tick in self.plot.x.ticks:
            x = self.sx(tick)
            c.line(x, self.top, x, self.bottom, GRID_COLOUR, 0.8)
        for tick in self.plot.y.ticks:
            y = self.sy(tick)
            c.line(self.left, y, self.right, y, GRID_COLOUR, 0.8)

    def _layer(self, layer: Layer) -> None:
        c = self.canvas
        if isinstance(layer, Line):
            finite = np.isfinite(layer.x) & np.isfinite(layer.y)
            x, y = self.sx.many(layer.x[finite]), self.sy.many(layer.y[finite])
            kept = simplify(x, y, SIMPLIFY_PX)
            c.polyline(
                x[kept],
                y[kept],
                layer.colour,
                layer.width,
                opacity=layer.opacity,
                key=layer.key,
                dash=layer.dash,
            )
        elif isinstance(layer, Band):
            finite = np.isfinite(layer.x) & np.isfinite(layer.low) & np.isfinite(layer.high)
            x = self.sx.many(layer.x[finite])
            low, high = self.sy.many(layer.low[finite]), self.sy.many(layer.high[finite])
            lower, upper = simplify(x, low, SIMPLIFY_PX), simplify(x, high, SIMPLIFY_PX)
            c.polygon(
                np.concatenate([x[upper], x[lower][::-1]]),
                np.concatenate([high[upper], low[lower][::-1]]),
                layer.colour,
                layer.opacity,
            )
        elif isinstance(layer, Markers):
            finite = np.isfinite(layer.x) & np.isfinite(layer.y)
            xs, ys = self.sx.many(layer.x[finite]), self.sy.many(layer.y[finite])
            for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
                c.marker(
                    x, y, layer.colour, shape=layer.shape, hollow=layer.hollow, size=layer.size
                )
        elif isinstance(layer, Bars):
            half = layer.thickness / 2.0
            finite = np.isfinite(layer.y) & np.isfinite(layer.start) & np.isfinite(layer.length)
            rows = zip(layer.y[finite], layer.start[finite], layer.length[finite], strict=True)
            for y, start, length in rows:
                x0, x1 = self.sx(start), self.sx(start + length)
                y0, y1 = sorted((self.sy(y - half), self.sy(y + half)))
                if x1 > x0:
                    c.rect(x0, y0, x1 - x0, y1 - y0, layer.colour)
        else:
            half = layer.cap / 2.0
            finite = np.isfinite(layer.x) & np.isfinite(layer.low) & np.isfinite(layer.high)
            xs = self.sx.many(layer.x[finite])
            ends = zip(xs.tolist(), layer.low[finite], layer.high[finite], strict=True)
            for centre, low, high in ends:
                y0, y1 = self.sy(low), self.sy(high)
                c.line(centre, y0, centre, y1, layer.colour, layer.width)
                for cap in (y0, y1):
                    c.line(centre - half, cap, centre + half, cap, layer.colour, layer.width)

    def _axes(self) -> None:
        c, plot = self.canvas, self.plot
        c.line(self.left, self.bottom, self.right, self.bottom, AXIS_COLOUR, 1.0)
        c.line(self.left, self.top, self.left, self.bottom, AXIS_COLOUR, 1.0)
        for tick, label in zip(plot.x.ticks, plot.x.labels, strict=True):
            x = self.sx(tick)
            c.line(x, self.bottom, x, self.bottom + TICK_LENGTH, AXIS_COLOUR, 1.0)
            for i, line in enumerate(_lines(label)):
                baseline = (
                    self.bottom + TICK_LENGTH + TICK_GAP + (i + 0.8) * TICK_SIZE * LINE_HEIGHT
                )
                c.text(x, baseline, line, TICK_SIZE, anchor="middle")
        colours = plot.y.label_colours or [TEXT_COLOUR] * len(self.y_labels)
        for tick, label, colour in zip(plot.y.ticks, self.y_labels, colours, strict=True):
            y = self.sy(tick)
            c.line(self.left - TICK_LENGTH, y, self.left, y, AXIS_COLOUR, 1.0)
            c.text(
                self.left - TICK_LENGTH - TICK_GAP,
                y + TICK_SIZE * 0.35,
                label,
                TICK_SIZE,
                anchor="end",
                colour=colour,
            )

    def _titles(self) -> None:
        c = self.canvas
        for i, line in enumerate(self.title):
            baseline = PAD + (i + 0.8) * TITLE_SIZE * LINE_HEIGHT
            c.text(PAD, baseline, line, TITLE_SIZE, weight="bold")
        centre = (self.left + self.right) / 2.0
        for i, line in enumerate(self.x_title):
            baseline = self.bottom + self.x_ticks_end + 4.0 + (i + 0.8) * LABEL_SIZE * LINE_HEIGHT
            c.text(centre, baseline, line, LABEL_SIZE, anchor="middle")
        if self.y_title:
            middle = (self.top + self.bottom) / 2.0
            baseline = PAD + 0.8 * LABEL_SIZE * LINE_HEIGHT
            c.text(baseline, middle, self.y_title, LABEL_SIZE, anchor="middle", rotate=-90.0)

    def _legend(self) -> None:
        entries = self.legend
        if not entries:
            return
        row_height = LEGEND_SIZE * 1.6
        if self.plot.legend_inside:
            box_width = max(_entry_width(e) for e in entries)
            x0 = self.right - box_width - 4.0
            y0 = self.bottom - len(entries) * row_height - 6.0
            for i, entry in enumerate(entries):
                self._entry(entry, x0 + 4.0, y0 + (i + 0.5) * row_height + 1.0)
            return
        y = self.height - PAD - len(self.legend_rows) * row_height
        for row in self.legend_rows:
            x = (self.width - sum(_entry_width(e) for e in row) + 16.0) / 2.0
            for entry in row:
                self._entry(entry, x, y + row_height / 2.0)
                x += _entry_width(entry)
            y += row_height

    def _entry(self, entry: LegendEntry, x: float, middle: float) -> None:
        """One legend entry whose sample starts at x, centred on `middle`."""
        c = self.canvas
        if entry.sample == "line":
            c.line(x, middle, x + SWATCH, middle, entry.colour, 2.0)
        elif entry.sample == "box":
            c.rect(x + 2.0, middle - 5.0, SWATCH - 4.0, 10.0, entry.colour)
        else:
            c.marker(
                x + SWATCH / 2.0,
                middle,
                entry.colour,
                shape="circle",
                hollow=entry.sample == "hollow",
                size=7.0,
            )
        c.text(x + SWATCH + 5.0, middle + LEGEND_SIZE * 0.35, entry.label, LEGEND_SIZE)
