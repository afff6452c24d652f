"""Formats for the report's text, and how text from data is made safe.

The page is rendered from Jinja2 templates with autoescaping (`pipeline.report.templating`);
every value a template prints goes through `text`, which escapes it and defuses any URL scheme
in it (`://` gets a zero-width space), so the page can never link to or load anything outside
itself. The formatters here turn values into plain text; the templates apply them as filters.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import NamedTuple

import jinja2
from markupsafe import Markup, escape

NOT_ENOUGH_DATA = "Not enough data yet."
MISSING = "–"
"""How a value that is not defined (yet) is shown."""
ZERO_WIDTH_SPACE = "&#8203;"


def text(value: object) -> Markup:
    """`value` as HTML-escaped text that contains no working URL (None shows as `MISSING`).

    Markup (a rendered template or macro, whose own values were escaped) is kept as it is.
    """
    if hasattr(value, "__html__"):
        return Markup(value)
    if value is None:
        value = MISSING
    return escape(str(value)).replace("://", Markup(f":{ZERO_WIDTH_SPACE}//"))


def percent(value: float | None, digits: int = 1) -> str:
    """0.1234 → "12.3 %"; undefined → "–"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"{100.0 * value:.{digits}f} %"


def objective(value: float | None) -> str:
    """An objective as people write it, no digit rounded away: 0.95 → "95 %", 0.9995 →
    "99.95 %"; undefined → "–"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"{100.0 * value:.6g} %"


def burn_rate(value: float | None) -> str:
    """A burn rate, how many times the sustainable pace an error budget is spent: 14.4 → "14.4×";
    undefined (no orders judged in the window) → "–"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"{value:,.1f}×"


def percent_ci(value: float | None, low: float | None, high: float | None) -> str:
    """ "12.3 % (8.1–17.0)" with the 95 % interval when it is defined."""
    if value is None:
        return MISSING
    if low is None or high is None:
        return percent(value)
    return f"{percent(value)} ({100.0 * low:.1f}–{100.0 * high:.1f})"


class DurationUnit(NamedTuple):
    """A unit durations are shown in."""

    symbol: str
    """As printed after a number: "45 s", "3.5 min", "2.4 h"."""
    name: str
    """In words, for axis labels: "seconds"."""
    seconds: float
    """Seconds per unit."""
    below_s: float
    """Durations shorter than this are shown in this unit (the first unit that fits wins)."""
    whole_from: float
    """Amounts from this many units are shown without decimals (else with one)."""


DURATION_UNITS: tuple[DurationUnit, ...] = (
    DurationUnit("s", "seconds", 1.0, 120.0, whole_from=10.0),
    DurationUnit("min", "minutes", 60.0, 2 * 3600.0, whole_from=math.inf),
    DurationUnit("h", "hours", 3600.0, math.inf, whole_from=100.0),
)
"""Seconds under two minutes, minutes under two hours, else hours: never "0.07 min"."""


def _rounded(seconds: float, unit: DurationUnit) -> tuple[float, int]:
    """`seconds` in `unit`, rounded as shown, and the decimals shown."""
    value = seconds / unit.seconds
    digits = 0 if abs(value) >= unit.whole_from else 1
    return round(value, digits), digits


def duration_unit(seconds: float) -> DurationUnit:
    """The unit a duration of `seconds` reads best in (for a chart axis: its longest duration)."""
    for unit in DURATION_UNITS:
        # Decided on the figure as shown, so 119.7 s reads "2.0 min", never "120 s".
        if abs(_rounded(seconds, unit)[0]) * unit.seconds < unit.below_s:
            return unit
    return DURATION_UNITS[-1]


def _amount(seconds: float, unit: DurationUnit) -> str:
    value, digits = _rounded(seconds, unit)
    return f"{value:,.{digits}f}"


def duration(seconds: float | None) -> str:
    """Seconds in the unit that reads best: "4.5 s", "45 s", "3.5 min", "2.4 h"; undefined → "–"."""
    if seconds is None or math.isnan(seconds):
        return MISSING
    unit = duration_unit(seconds)
    return f"{_amount(seconds, unit)} {unit.symbol}"


def duration_ci(value: float | None, low: float | None, high: float | None) -> str:
    """A median with its 95 % interval, each bound in the unit that suits it: "45 s (38–52 s)",
    "100 s (80 s–2.5 min)"; an open bound shows as "…", an undefined median as "not reached"."""
    if value is None or math.isnan(value):
        return "not reached"
    low, high = (None if b is None or math.isnan(b) else b for b in (low, high))
    lower = "…" if low is None else duration(low)
    upper = "…" if high is None else duration(high)
    if low is not None and high is not None and duration_unit(low) == duration_unit(high):
        lower = _amount(low, duration_unit(low))
    return f"{duration(value)} ({lower}–{upper})"


def number(value: float | int | None, digits: int = 0) -> str:
    """A number with thousands separators; undefined → "–"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"{value:,.{digits}f}"


def timestamp(value: datetime | None) -> str:
    """A UTC timestamp to the second."""
    if value is None:
        return MISSING
    return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def environment(loader: jinja2.BaseLoader) -> jinja2.Environment:
    """A Jinja2 environment for HTML made from data: autoescaping, every printed value through
    `text` (escaped, URLs defused), undefined names an error, and this module's formatters as
    filters (`number`, `percent`, `percent_ci`, `objective`, `burn_rate`, `duration`,
    `duration_ci`, `timestamp`)."""
    env = jinja2.Environment(
        loader=loader,
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=text,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        number=number,
        percent=percent,
        percent_ci=percent_ci,
        objective=objective,
        burn_rate=burn_rate,
        duration=duration,
        duration_ci=duration_ci,
        timestamp=timestamp,
    )
    return env
