"""Durations in the report read in a unit that suits them: seconds under two minutes, minutes
under two hours, else hours (never "0.07 min"); the unit is chosen on the figure as shown, so
nothing reads "120 s"; confidence intervals keep one unit when both bounds share it."""

from __future__ import annotations

import pytest

from pipeline.report.markup import MISSING, duration, duration_ci, duration_unit


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.0, "0.0 s"),
        (0.25, "0.2 s"),
        (4.47, "4.5 s"),
        (45, "45 s"),
        (44.6, "45 s"),
        (119.4, "119 s"),
        (119.6, "2.0 min"),  # would round to "120 s": over the seconds' range
        (120, "2.0 min"),
        (210, "3.5 min"),
        (4.2, "4.2 s"),  # the "0.07 min" the report used to show
        (7_190, "119.8 min"),
        (7_198, "2.0 h"),  # would round to "120.0 min"
        (2.4 * 3600, "2.4 h"),
        (99.94 * 3600, "99.9 h"),
        (120 * 3600, "120 h"),
        (1_500 * 3600, "1,500 h"),
    ],
)
def test_duration_picks_the_readable_unit(seconds: float, shown: str) -> None:
    assert duration(seconds) == shown


@pytest.mark.parametrize("undefined", [None, float("nan")])
def test_undefined_durations(undefined: float | None) -> None:
    assert duration(undefined) == MISSING
    assert duration_ci(undefined, 1.0, 2.0) == "not reached"


@pytest.mark.parametrize(
    ("value", "low", "high", "shown"),
    [
        (45, 38, 52, "45 s (38–52 s)"),
        (210, 150, 400, "3.5 min (2.5–6.7 min)"),
        (100, 80, 150, "100 s (80 s–2.5 min)"),  # bounds in different units each keep theirs
        (13, 3.2, None, "13 s (3.2 s–…)"),  # an open upper bound
        (13, None, 20, "13 s (…–20 s)"),
        (13, 3.2, float("nan"), "13 s (3.2 s–…)"),
    ],
)
def test_duration_with_its_interval(
    value: float, low: float | None, high: float | None, shown: str
) -> None:
    assert duration_ci(value, low, high) == shown


def test_axis_unit_names() -> None:
    assert [duration_unit(s).name for s in (50, 300, 10_000)] == ["seconds", "minutes", "hours"]
    assert [duration_unit(s).seconds for s in (50, 300, 10_000)] == [1.0, 60.0, 3600.0]
