"""The report knows providers only through their specs: names and colours come from the registry,
providers are listed in registry order, a slug no spec registers still shows (by its slug, in a
neutral colour, last), and no module or template of the report names a provider. Text from the
data never breaks a chart: markup, a `$` and characters XML cannot carry are drawn as text."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
from svg_reading import parse, texts, title_lines

from pipeline.providers.registry import PROVIDERS, REGISTRY, get_spec
from pipeline.report import charts
from pipeline.report.providers import (
    OTHER_COLOUR,
    code_providers,
    never_expiring,
    provider_colour,
    provider_name,
    provider_order,
)
from pipeline.report.svg import ELLIPSIS

REPORT_PACKAGE = Path(charts.__file__).parent
UNKNOWN = "zz_retired_provider"
HOSTILE = "costs $5 \\frac{$ <script>alert(1)</script> & \x00\x1b]0; 名前"
"""Mathtext, markup, an ampersand, control characters XML cannot carry, and CJK."""


def test_names_and_colours_come_from_the_specs() -> None:
    for slug in PROVIDERS:
        assert provider_name(slug) == get_spec(slug).display_name
        assert provider_colour(slug) == get_spec(slug).colour
    assert provider_name(UNKNOWN) == UNKNOWN
    assert provider_colour(UNKNOWN) == OTHER_COLOUR


def test_providers_are_listed_in_registry_order_unknown_last() -> None:
    shuffled = [UNKNOWN, *reversed(PROVIDERS)]
    assert provider_order(shuffled) == [*PROVIDERS, UNKNOWN]
    assert charts.provider_order is provider_order  # the notebook imports them from charts
    assert charts.provider_colour is provider_colour


def test_prose_about_providers_follows_their_specs() -> None:
    assert all(spec.code_kinds for spec in code_providers())
    assert {s.slug for s in code_providers()} == {s.slug for s in REGISTRY.specs() if s.code_kinds}
    assert {s.slug for s in never_expiring()} == {
        s.slug for s in REGISTRY.specs() if not s.expiry_windows
    }


@pytest.mark.parametrize(
    "path",
    sorted(p for p in REPORT_PACKAGE.rglob("*") if p.suffix in {".py", ".html", ".css"}),
    ids=lambda p: str(p.relative_to(REPORT_PACKAGE)),
)
def test_no_provider_is_named_in_the_report_code(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    for spec in REGISTRY.specs():
        for name in {spec.slug, spec.display_name}:
            assert not re.search(rf"\b{re.escape(name)}\b", source, re.IGNORECASE), (path, name)


def test_text_from_the_data_is_drawn_as_text() -> None:
    rows = pl.DataFrame(
        {
            "provider": [PROVIDERS[0], UNKNOWN + HOSTILE],
            "error_class": [HOSTILE, "timeout"],
            "polls": [3, 4],
            "share": [0.1, 0.2],
            "latency_p50_ms": [100.0, 120.0],
            "latency_p95_ms": [200.0, 260.0],
        }
    )
    shown = HOSTILE.replace("\x00", "\ufffd").replace("\x1b", "\ufffd")
    for plot in (
        charts.error_mix_chart(rows, title=HOSTILE),
        charts.latency_chart(rows, title=HOSTILE),
    ):
        assert plot is not None
        root = parse(plot.svg())  # well-formed XML, whatever the text
        assert not [e for e in root.iter() if e.tag.endswith("script")]
        assert " ".join(title_lines(root)) == " ".join(shown.split())
        # The y tick label, too long for the axis: shortened, with an ellipsis.
        assert any(
            t.endswith(ELLIPSIS) and (UNKNOWN + shown).startswith(t[:-1]) for t in texts(root)
        )
    legend = texts(parse(charts.error_mix_chart(rows, title="t").svg()))  # type: ignore[union-attr]
    assert shown in legend
