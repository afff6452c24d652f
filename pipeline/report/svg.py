"""A small SVG writer for the report's charts: text metrics, tick steps, scales and elements.

Charts are drawn as SVG text, with no plotting library: a report drawn with matplotlib spent
two thirds of its time importing it and laying figures out. Text is set in DejaVu Sans (Arial
and Helvetica, narrower, are the fallbacks), and its width is estimated from DejaVu Sans'
advance widths, so a line measured to fit fits in any of them.
"""

from __future__ import annotations

import dataclasses
import html
import math
import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

FONT_FAMILY = "DejaVu Sans, Arial, Helvetica, sans-serif"

# Advance widths of DejaVu Sans and DejaVu Sans Bold for ASCII 32..126, in 1/2048 em (read
# from the font files).
_ASCII_ADVANCE = (
    651, 821, 942, 1716, 1303, 1946, 1597, 563, 799, 799, 1024, 1716, 651, 739, 651, 690,
    1303, 1303, 1303, 1303, 1303, 1303, 1303, 1303, 1303, 1303, 690, 690, 1716, 1716, 1716,
    1087, 2048, 1401, 1405, 1430, 1577, 1294, 1178, 1587, 1540, 604, 604, 1343, 1141, 1767,
    1532, 1612, 1235, 1612, 1423, 1300, 1251, 1499, 1401, 2025, 1403, 1251, 1403, 799, 690,
    799, 1716, 1024, 1024, 1255, 1300, 1126, 1300, 1260, 721, 1300, 1298, 569, 569, 1186, 569,
    1995, 1298, 1253, 1300, 1300, 842, 1067, 803, 1298, 1212, 1675, 1212, 1212, 1075, 1303,
    690, 1303, 1716,
)  # fmt: skip
_BOLD_ASCII_ADVANCE = (
    713, 934, 1067, 1716, 1425, 2052, 1786, 627, 936, 936, 1071, 1716, 778, 850, 778, 748,
    1425, 1425, 1425, 1425, 1425, 1425, 1425, 1425, 1425, 1425, 819, 819, 1716, 1716, 1716,
    1188, 2048, 1585, 1561, 1503, 1700, 1399, 1399, 1681, 1714, 762, 762, 1587, 1305, 2038,
    1714, 1741, 1501, 1741, 1577, 1475, 1397, 1663, 1585, 2259, 1579, 1483, 1485, 936, 748,
    936, 1716, 1024, 1024, 1382, 1466, 1214, 1466, 1389, 891, 1466, 1458, 702, 702, 1362, 702,
    2134, 1458, 1407, 1466, 1466, 1010, 1219, 979, 1458, 1335, 1892, 1321, 1335, 1192, 1458,
    748, 1458, 1716,
)  # fmt: skip
_UNITS_PER_EM = 2048.0
_OTHER_ADVANCE = 1.0
"""Width (em) assumed for a character outside ASCII: as wide as the widest Latin letters,
so accented names, symbols and CJK never overflow."""
_BOLD_OTHER_ADVANCE = 1.1
ELLIPSIS = "\u2026"

# XML 1.0 allows neither these control characters nor lone surrogates, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def text_width(text: str, size: float, *, bold: bool = False) -> float:
    """Estimated width in pixels of one line of `text` set at `size` pixels."""
    table, other = (
        (_BOLD_ASCII_ADVANCE, _BOLD_OTHER_ADVANCE) if bold else (_ASCII_ADVANCE, _OTHER_ADVANCE)
    )
    units = 0.0
    for char in text:
        code = ord(char) - 32
        units += table[code] / _UNITS_PER_EM if 0 <= code < len(table) else other
    return units * size


def _pieces(word: str, size: float, width: float, bold: bool) -> list[str]:
    """`word` cut into pieces no wider than `width` (a word wider than the line)."""
    if text_width(word, size, bold=bold) <= width:
        return [word]
    pieces, piece = [], ""
    for char in word:
        if piece and text_width(piece + char, size, bold=bold) > width:
            pieces.append(piece)
            piece = ""
        piece += char
    return [*pieces, piece] if piece else pieces


def wrap(text: str, size: float, width: float, *, bold: bool = False) -> list[str]:
    """`text` broken at spaces into lines no wider than `width`; a word wider than a line is
    cut across lines (a long URL in a finding), never dropped."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        pieces = _pieces(word, size, width, bold)
        for piece in pieces:
            candidate = f"{line} {piece}" if line else piece
            if line and (len(pieces) > 1 or text_width(candidate, size, bold=bold) > width):
                lines.append(line)
                line = piece
            else:
                line = candidate
    return [*lines, line] if line else lines


def shorten(text: str, size: float, width: float) -> str:
    """`text`, or as much of it as fits in `width` followed by an ellipsis."""
    if text_width(text, size) <= width:
        return text
    kept = text
    while kept and text_width(kept + ELLIPSIS, size) > width:
        kept = kept[:-1]
    return kept + ELLIPSIS


def escape(text: object) -> str:
    """`text` as SVG character data or an attribute value: markup escaped, and characters XML
    cannot carry replaced by U+FFFD (one of them would make the whole image unreadable)."""
    return html.escape(_NOT_XML.sub("\ufffd", str(text)), quote=True)


def nice_step(span: float, target: int) -> float:
    """A round tick step (1, 2, 2.5 or 5 times a power of ten) giving about `target` ticks."""
    if not math.isfinite(span) or span <= 0.0:
        return 1.0
    raw = span / max(target, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    for multiple in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= multiple * power * (1 + 1e-9):
            return multiple * power
    return 10.0 * power


def ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    """Round tick values from `lo` to `hi` inclusive (none for a range that is not finite)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
        return []
    step = nice_step(hi - lo, target)
    first = math.ceil(lo / step - 1e-9)
    count = math.floor(hi / step + 1e-9) - first + 1
    digits = decimals(step) + 2
    return [round((first + i) * step, digits) for i in range(max(count, 0))]


def decimals(step: float) -> int:
    """Digits after the point that show multiples of `step` exactly (2.5: one, 0.25: two)."""
    if not math.isfinite(step) or step <= 0:
        return 0
    digits = max(0, -math.floor(math.log10(step) + 1e-9))
    while digits < 15 and abs(round(step, digits) - step) > step * 1e-9:
        digits += 1
    return digits


@dataclasses.dataclass(frozen=True)
class Scale:
    """Maps data values in [lo, hi] linearly onto pixels [start, end] (end < start flips)."""

    lo: float
    hi: float
    start: float
    end: float

    def __call__(self, value: float) -> float:
        span = self.hi - self.lo
        share = (value - self.lo) / span if span else 0.0
        return self.start + share * (self.end - self.start)

    def many(self, values: FloatArray) -> FloatArray:
        span = self.hi - self.lo
        share = (values - self.lo) / span if span else np.zeros_like(values)
        return self.start + share * (self.end - self.start)


def simplify(x: FloatArray, y: FloatArray, tolerance: float) -> npt.NDArray[np.intp]:
    """Indices of the points of the polyline (x, y) that keep it within `tolerance` (pixels)
    of itself (Ramer–Douglas–Peucker): a smooth 1,000-point curve needs a few dozen."""
    n = x.size
    if n <= 2:
        return np.arange(n)
    keep = np.zeros(n, dtype=bool)
    keep[[0, n - 1]] = True
    stack = [(0, n - 1)]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        dx, dy = x[b] - x[a], y[b] - y[a]
        inner_x, inner_y = x[a + 1 : b] - x[a], y[a + 1 : b] - y[a]
        length = math.hypot(dx, dy)
        if length == 0.0:
            distance = np.hypot(inner_x, inner_y)
        else:
            distance = np.abs(dx * inner_y - dy * inner_x) / length
        worst = int(np.argmax(distance))
        if distance[worst] > tolerance:
            split = a + 1 + worst
            keep[split] = True
            stack.extend(((a, split), (split, b)))
    return np.flatnonzero(keep)


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def points(x: Sequence[float] | FloatArray, y: Sequence[float] | FloatArray) -> str:
    """An SVG `points` attribute."""
    return " ".join(f"{_number(a)},{_number(b)}" for a, b in zip(x, y, strict=True))


class Canvas:
    """SVG elements in drawing order (later ones on top), written out by `svg`."""

    def __init__(self, width: float, height: float) -> None:
        self.width = width
        self.height = height
        self._parts: list[str] = []

    def _add(self, tag: str, attributes: dict[str, object], text: str | None = None) -> None:
        attrs = " ".join(
            f'{name.replace("_", "-")}="{escape(value) if isinstance(value, str) else _fmt(value)}"'
            for name, value in attributes.items()
            if value is not None
        )
        self._parts.append(
            f"<{tag} {attrs}/>" if text is None else f"<{tag} {attrs}>{text}</{tag}>"
        )

    def line(
        self,
        x1: float,
        y1: float,
        x2: float,
        y2: float,
        colour: str,
        width: float = 1.0,
        *,
        dash: str | None = None,
        opacity: float | None = None,
    ) -> None:
        self._add(
            "line",
            {
                "x1": x1,
                "y1": y1,
                "x2": x2,
                "y2": y2,
                "stroke": colour,
                "stroke_width": width,
                "stroke_dasharray": dash,
                "stroke_opacity": opacity,
            },
        )

    def polyline(
        self,
        x: FloatArray,
        y: FloatArray,
        colour: str,
        width: float,
        *,
        opacity: float | None = None,
        key: str | None = None,
        dash: str | None = None,
    ) -> None:
        self._add(
            "polyline",
            {
                "data_key": key,
                "points": points(x, y),
                "fill": "none",
                "stroke": colour,
                "stroke_width": width,
                "stroke_opacity": opacity,
                "stroke_linejoin": "round",
                "stroke_dasharray": dash,
            },
        )

    def polygon(self, x: FloatArray, y: FloatArray, colour: str, opacity: float) -> None:
        self._add("polygon", {"points": points(x, y), "fill": colour, "fill_opacity": opacity})

    def rect(self, x: float, y: float, width: float, height: float, colour: str) -> None:
        self._add("rect", {"x": x, "y": y, "width": width, "height": height, "fill": colour})

    def marker(
        self, x: float, y: float, colour: str, *, shape: str, hollow: bool, size: float
    ) -> None:
        """A circle or square `size` pixels across, filled or white inside."""
        fill = "white" if hollow else colour
        if shape == "square":
            half = size / 2.0
            self._add(
                "rect",
                {
                    "x": x - half,
                    "y": y - half,
                    "width": size,
                    "height": size,
                    "fill": fill,
                    "stroke": colour,
                    "stroke_width": 1.5,
                },
            )
        else:
            self._add(
                "circle",
                {
                    "cx": x,
                    "cy": y,
                    "r": size / 2.0,
                    "fill": fill,
                    "stroke": colour,
                    "stroke_width": 1.5,
                },
            )

    def text(
        self,
        x: float,
        y: float,
        text: str,
        size: float,
        *,
        anchor: str = "start",
        colour: str = "#222222",
        weight: str | None = None,
        rotate: float | None = None,
    ) -> None:
        """One line of text whose baseline starts (or centres, or ends) at (x, y)."""
        self._add(
            "text",
            {
                "x": x,
                "y": y,
                "font_size": size,
                "text_anchor": anchor,
                "fill": colour,
                "font_weight": weight,
                "transform": f"rotate({_fmt(rotate)} {_fmt(x)} {_fmt(y)})" if rotate else None,
            },
            escape(text),
        )

    def clip(self, x: float, y: float, width: float, height: float) -> None:
        """Draw what follows, up to `end_clip`, only inside the rectangle."""
        self._parts.append(
            f'<clipPath id="plot-area"><rect x="{_fmt(x)}" y="{_fmt(y)}" width="{_fmt(width)}" '
            f'height="{_fmt(height)}"/></clipPath><g clip-path="url(#plot-area)">'
        )

    def end_clip(self) -> None:
        self._parts.append("</g>")

    def svg(self, description: str) -> bytes:
        """The document, with `description` as its accessible title."""
        width, height = _fmt(self.width), _fmt(self.height)
        head = (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="{FONT_FAMILY}" role="img">'
            f"<title>{escape(description)}</title>"
            f'<rect width="{width}" height="{height}" fill="white"/>'
        )
        return (head + "".join(self._parts) + "</svg>").encode("utf-8")


def _fmt(value: object) -> str:
    return _number(float(value)) if isinstance(value, int | float) else str(value)
