"""Small HTML building blocks for the report: escaped text, tables, embedded images, formats.

Every piece of text that comes from data goes through `text`, which escapes it and defuses any
URL scheme in it (`://` gets a zero-width space), so the page can never link to or load anything
outside itself.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import polars as pl

NOT_ENOUGH_DATA = "Not enough data yet."
MISSING = "–"
"""How a value that is not defined (yet) is shown."""
ZERO_WIDTH_SPACE = "&#8203;"


def text(value: object) -> str:
    """`value` as HTML-escaped text that contains no working URL."""
    return html.escape(str(value), quote=True).replace("://", f":{ZERO_WIDTH_SPACE}//")


def paragraph(content: str, *, css_class: str | None = None) -> str:
    """A `<p>` around already-escaped HTML."""
    attribute = f' class="{css_class}"' if css_class else ""
    return f"<p{attribute}>{content}</p>"


def note(message: str) -> str:
    """A greyed-out remark, e.g. "not enough data yet"."""
    return paragraph(text(message), css_class="note")


def image(png: bytes, alt: str) -> str:
    """A PNG embedded as a base64 data URI."""
    encoded = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{encoded}" alt="{text(alt)}">'


def percent(value: float | None, digits: int = 1) -> str:
    """0.1234 → "12.3 %"; undefined → "–"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"{100.0 * value:.{digits}f} %"


def percent_ci(value: float | None, low: float | None, high: float | None) -> str:
    """ "12.3 % (8.1–17.0)" with the 95 % interval when it is defined."""
    if value is None:
        return MISSING
    if low is None or high is None:
        return percent(value)
    return f"{percent(value)} ({100.0 * low:.1f}–{100.0 * high:.1f})"


def minutes(seconds: float | None) -> str:
    """Seconds as minutes with a precision that suits the size: "0.25 min", "12.4 min"."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return MISSING
    value = seconds / 60.0
    return f"{value:.2f} min" if value < 10 else f"{value:.1f} min"


def minutes_ci(value: float | None, low: float | None, high: float | None) -> str:
    """A median in minutes with its 95 % interval; an open upper bound shows as "…"."""
    if value is None:
        return "not reached"
    lower = minutes(low).removesuffix(" min") if low is not None else "…"
    upper = minutes(high).removesuffix(" min") if high is not None else "…"
    return f"{minutes(value)} ({lower}–{upper})"


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


Formatter = Callable[[dict[str, Any]], str]
"""Turns one row (as a dict) into a cell's plain text."""


def table(
    frame: pl.DataFrame,
    columns: Sequence[tuple[str, Formatter]],
    *,
    numeric: Sequence[str] = (),
    caption: str | None = None,
) -> str:
    """An HTML table of `frame`, one column per (header, formatter); all text escaped.

    Args:
        frame: the rows.
        columns: header and a function from the row to the cell's text.
        numeric: headers of right-aligned columns.
        caption: optional caption under the table.
    """
    head = "".join(
        f'<th class="num">{text(h)}</th>' if h in numeric else f"<th>{text(h)}</th>"
        for h, _ in columns
    )
    body = []
    for row in frame.iter_rows(named=True):
        cells = "".join(
            f'<td class="num">{text(fmt(row))}</td>'
            if h in numeric
            else f"<td>{text(fmt(row))}</td>"
            for h, fmt in columns
        )
        body.append(f"<tr>{cells}</tr>")
    caption_html = f"<caption>{text(caption)}</caption>" if caption else ""
    return (
        f"<table>{caption_html}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )
