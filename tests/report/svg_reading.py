"""Reading the report's SVG charts back in tests: elements, texts and the box each one covers."""

from __future__ import annotations

from xml.etree import ElementTree

from pipeline.report.svg import text_width

NS = "{http://www.w3.org/2000/svg}"
ASCENT = 0.8
"""Height of text above its baseline, in font sizes (DejaVu Sans: 0.76)."""
DESCENT = 0.25
"""Depth of text below its baseline, in font sizes (DejaVu Sans: 0.24)."""

Box = tuple[float, float, float, float]


def parse(document: bytes) -> ElementTree.Element:
    root = ElementTree.fromstring(document)
    assert root.tag == f"{NS}svg"
    return root


def size(root: ElementTree.Element) -> tuple[float, float]:
    return float(root.attrib["width"]), float(root.attrib["height"])


def elements(root: ElementTree.Element, tag: str) -> list[ElementTree.Element]:
    return list(root.iter(f"{NS}{tag}"))


def texts(root: ElementTree.Element) -> list[str]:
    return [e.text or "" for e in elements(root, "text")]


def title_lines(root: ElementTree.Element) -> list[str]:
    """The chart title as drawn, line by line (the bold texts)."""
    return [e.text or "" for e in elements(root, "text") if e.get("font-weight") == "bold"]


def _points(value: str) -> list[tuple[float, float]]:
    pairs = [p.split(",") for p in value.split()]
    return [(float(x), float(y)) for x, y in pairs]


def _text_box(e: ElementTree.Element) -> Box:
    x, y, font = float(e.attrib["x"]), float(e.attrib["y"]), float(e.attrib["font-size"])
    width = text_width(e.text or "", font, bold=e.get("font-weight") == "bold")
    start = {"start": 0.0, "middle": -width / 2.0, "end": -width}[e.get("text-anchor", "start")]
    if e.get("transform", "").startswith("rotate(-90"):
        # Turned upright about (x, y): the text runs up from y, its ascent to the left of x.
        return (x - ASCENT * font, y - start - width, x + DESCENT * font, y - start)
    return (x + start, y - ASCENT * font, x + start + width, y + DESCENT * font)


def box(e: ElementTree.Element) -> Box:
    """The area `e` covers, strokes included."""
    tag = e.tag.removeprefix(NS)
    stroke = float(e.get("stroke-width", "0")) / 2.0
    if tag == "text":
        return _text_box(e)
    if tag == "line":
        xs = float(e.attrib["x1"]), float(e.attrib["x2"])
        ys = float(e.attrib["y1"]), float(e.attrib["y2"])
    elif tag in ("polyline", "polygon"):
        points = _points(e.attrib["points"])
        xs, ys = tuple(p[0] for p in points), tuple(p[1] for p in points)
    elif tag == "rect":
        x, y = float(e.get("x", "0")), float(e.get("y", "0"))
        xs = x, x + float(e.attrib["width"])
        ys = y, y + float(e.attrib["height"])
    elif tag == "circle":
        cx, cy, r = (float(e.attrib[k]) for k in ("cx", "cy", "r"))
        xs, ys = (cx - r, cx + r), (cy - r, cy + r)
    else:
        raise AssertionError(f"unexpected element {tag}")
    return (min(xs) - stroke, min(ys) - stroke, max(xs) + stroke, max(ys) + stroke)


DRAWN = ("text", "line", "polyline", "polygon", "rect", "circle")


def drawn(root: ElementTree.Element) -> list[tuple[ElementTree.Element, Box]]:
    """Every element drawn outside the clipped plot area, with its box."""
    groups = [*clipped_groups(root), *elements(root, "clipPath")]
    inside = {id(e) for g in groups for e in g.iter()}
    return [
        (e, box(e)) for e in root.iter() if e.tag.removeprefix(NS) in DRAWN and id(e) not in inside
    ]


def clipped_groups(root: ElementTree.Element) -> list[ElementTree.Element]:
    return [g for g in elements(root, "g") if g.get("clip-path")]


def clip_box(root: ElementTree.Element) -> Box:
    """The rectangle the plot's marks are clipped to."""
    [rect] = [r for c in elements(root, "clipPath") for r in c]
    x, y = float(rect.attrib["x"]), float(rect.attrib["y"])
    return (x, y, x + float(rect.attrib["width"]), y + float(rect.attrib["height"]))
