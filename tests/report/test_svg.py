"""The SVG writer under the report's charts: text measured and wrapped, round ticks, scales,
escaping that keeps any text well-formed, and line simplification that stays within its
tolerance."""

from __future__ import annotations

import itertools
from xml.etree import ElementTree

import numpy as np
import pytest

from pipeline.report.plot import MIN_PLOT_HEIGHT, Axis, Line, Plot
from pipeline.report.svg import Scale, decimals, escape, simplify, text_width, ticks, wrap


def test_text_width_follows_the_glyphs_and_the_size() -> None:
    assert text_width("iiii", 12) < text_width("MMMM", 12)
    assert text_width("median", 24) == pytest.approx(2 * text_width("median", 12))
    assert text_width("", 12) == 0.0
    # Outside ASCII a character counts a full em, as wide as the widest Latin capitals.
    assert text_width("名前", 10) == pytest.approx(20.0)


@pytest.mark.parametrize("width", [60.0, 150.0, 400.0])
def test_wrap_keeps_every_word_and_fits_what_can_fit(width: float) -> None:
    text = "The naive median understates time to success for 4 of 5 providers (sms4sats: 6.7 s)"
    lines = wrap(text, 12, width)
    assert all(text_width(line, 12) <= width for line in lines)
    if all(text_width(word, 12) <= width for word in text.split()):
        assert " ".join(lines) == text
    else:  # a word wider than a line is cut across lines
        assert "".join(lines).replace(" ", "") == text.replace(" ", "")
    assert len(wrap(text, 12, 10_000)) == 1
    assert wrap("", 12, 100) == []


@pytest.mark.parametrize(
    ("lo", "hi"), [(0.0, 1.0), (0.0, 0.037), (0.0, 285.0), (0.0, 27.3), (-0.6, 4.6), (0.0, 3e6)]
)
def test_ticks_are_round_and_inside_the_range(lo: float, hi: float) -> None:
    values = ticks(lo, hi)
    assert 3 <= len(values) <= 12
    assert lo - 1e-9 <= values[0] and values[-1] <= hi + 1e-9
    steps = np.diff(values)
    assert np.allclose(steps, steps[0])
    mantissa = steps[0] / 10 ** np.floor(np.log10(steps[0]))
    assert any(mantissa == pytest.approx(m) for m in (1.0, 2.0, 2.5, 5.0))


def test_scale_maps_the_range_onto_pixels() -> None:
    up = Scale(0.0, 10.0, 100.0, 20.0)  # a y axis: larger values higher up
    assert up(0.0) == 100.0 and up(10.0) == 20.0 and up(5.0) == 60.0
    assert up.many(np.array([0.0, 10.0])).tolist() == [100.0, 20.0]


def test_escaped_text_is_always_well_formed() -> None:
    nasty = "<b>&amp;\"'\x00\x07\x1b\ud800\ufffe ok"
    element = ElementTree.fromstring(f'<t a="{escape(nasty)}">{escape(nasty)}</t>')
    assert element.text == element.attrib["a"] == "<b>&amp;\"'" + "\ufffd" * 5 + " ok"


def test_simplified_lines_stay_within_the_tolerance() -> None:
    rng = np.random.default_rng(7)
    x = np.sort(rng.uniform(0, 800, 1_000))
    y = 300 / (1 + np.exp(-(x - 400) / 60)) + rng.normal(0, 0.05, x.size)
    kept = simplify(x, y, 0.25)
    assert kept[0] == 0 and kept[-1] == x.size - 1 and np.all(np.diff(kept) > 0)
    assert kept.size < 200
    # Every dropped point lies within the tolerance of the segment that replaced it.
    for a, b in itertools.pairwise(kept):
        inner = np.arange(a + 1, b)
        dx, dy = x[b] - x[a], y[b] - y[a]
        distance = np.abs(dx * (y[inner] - y[a]) - dy * (x[inner] - x[a])) / np.hypot(dx, dy)
        assert np.all(distance <= 0.25 + 1e-9)
    straight = simplify(np.arange(50.0), 2.0 * np.arange(50.0), 0.1)
    assert straight.tolist() == [0, 49]


def test_a_long_title_makes_the_chart_taller_not_the_plot_smaller() -> None:
    axis = Axis(0.0, 1.0, [0.0, 1.0], ["0", "1"])
    line = Line(np.array([0.0, 1.0]), np.array([0.0, 1.0]), "#000000")
    short = Plot((400.0, 300.0), "short", axis, axis, [line])
    long = Plot((400.0, 300.0), "a much longer finding " * 30, axis, axis, [line])
    heights = [float(ElementTree.fromstring(p.svg()).attrib["height"]) for p in (short, long)]
    assert heights[0] == 300.0
    assert heights[1] > 300.0
    # The plot keeps its minimum height: the axis line spans at least MIN_PLOT_HEIGHT.
    root = ElementTree.fromstring(long.svg())
    spans = [
        abs(float(e.attrib["y2"]) - float(e.attrib["y1"]))
        for e in root.iter("{http://www.w3.org/2000/svg}line")
        if e.attrib.get("stroke") == "#444444"
    ]
    assert max(spans) >= MIN_PLOT_HEIGHT


FONT_SAMPLES = ["Time to code", "SMSOnline fails the most polls (3.2 %)", "WWW iii 0123 %&@"]


@pytest.mark.parametrize("bold", [False, True], ids=["regular", "bold"])
def test_text_width_is_the_fonts_own_advance(bold: bool) -> None:
    """The width table is DejaVu Sans' (regular and bold), read here from the font files that
    ship with matplotlib: a table off by a bold face's 12 % would let bold titles overflow."""
    ft2font = pytest.importorskip("matplotlib.ft2font")
    font_manager = pytest.importorskip("matplotlib.font_manager")
    weight = "bold" if bold else "normal"
    path = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans", weight=weight))
    font = ft2font.FT2Font(path)
    for sample in FONT_SAMPLES:
        units = sum(
            font.load_char(ord(c), flags=ft2font.LoadFlags.NO_SCALE).horiAdvance for c in sample
        )
        expected = units / font.units_per_EM * 15.0
        assert text_width(sample, 15.0, bold=bold) == pytest.approx(expected), sample


def test_tick_labels_show_every_tick_exactly() -> None:
    assert [decimals(s) for s in (5.0, 2.5, 0.25, 0.05, 20.0)] == [0, 1, 2, 2, 0]
    assert ticks(0.0, 14.56) == [0.0, 2.5, 5.0, 7.5, 10.0, 12.5]
    assert ticks(0.0, 3e-13)[1] > 0.0
    assert ticks(0.0, float("inf")) == [] and ticks(0.0, float("nan")) == []


def test_a_word_longer_than_a_line_is_cut_not_lost() -> None:
    url = "https://status.example/" + "x" * 80
    lines = wrap(f"see {url} now", 12, 120)
    assert "".join(lines).replace(" ", "") == f"see{url}now"
    assert all(text_width(line, 12) <= 120 for line in lines)
