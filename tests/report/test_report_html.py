"""The HTML report: every section present, charts embedded as base64 SVG, nothing external
referenced, data text escaped (the page is rendered from autoescaping templates), written
atomically, and an empty or unrefreshed warehouse gives "not enough data yet" instead of a crash;
with nothing expired the expiry chart says so rather than naming a "highest" rate of 0 %."""

from __future__ import annotations

import base64
import dataclasses
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree

import polars as pl
import pytest
from conftest import GENERATED_AT, HOSTILE_SERVICE, HOSTILE_SERVICE_PROVIDER
from markupsafe import escape

from pipeline.analytics.scorecard import WINDOWS
from pipeline.report import ReportSummary, build_report, default_report_path, sections
from pipeline.report.charts import EXPIRY_CHART_HOURS, expiry_over_time_chart, recent_hours
from pipeline.report.data import load
from pipeline.report.html import render
from pipeline.report.markup import NOT_ENOUGH_DATA, text
from pipeline.report.plot import Markers
from pipeline.report.sections import SCORECARD_COLUMNS
from pipeline.report.templating import ENVIRONMENT
from pipeline.settings import Settings
from pipeline.warehouse import Warehouse

SECTIONS = [
    "Data window",
    "Time to code (SMS receive orders)",
    "Time to completion",
    "Expiry rate over time",
    "Reliability scorecard",
    "Alerts and SLOs",
    "Errors and latency",
    "Naive vs censoring-aware estimates",
    "Data quality",
]
EMBEDDED_SVG = re.compile(r'src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"')
SVG = "{http://www.w3.org/2000/svg}svg"


def _is_svg(document: bytes | None) -> bool:
    """Whether `document` is a well-formed SVG image."""
    return document is not None and ElementTree.fromstring(document).tag == SVG


@pytest.fixture(scope="module")
def report(published: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[ReportSummary, str]:
    out = tmp_path_factory.mktemp("reports") / "report.html"
    summary = build_report(published, out, generated_at=GENERATED_AT)
    return summary, out.read_text(encoding="utf-8")


def test_every_section_is_present_in_order(report: tuple[ReportSummary, str]) -> None:
    summary, html = report
    assert summary.sections == SECTIONS
    positions = [html.index(f"<h2>{text(title)}</h2>") for title in SECTIONS]
    assert positions == sorted(positions)


def test_charts_are_embedded_svg(report: tuple[ReportSummary, str]) -> None:
    summary, html = report
    images = EMBEDDED_SVG.findall(html)
    # code, completion, expiry over time, error mix, latency, naive vs censoring-aware
    assert summary.n_images == len(images) == 6
    assert all(_is_svg(base64.b64decode(data)) for data in images)
    assert _is_svg(summary.key_chart_svg)
    # The preview is the time-to-completion chart.
    assert base64.b64encode(summary.key_chart_svg or b"").decode() == images[1]


def test_nothing_external_is_referenced(report: tuple[ReportSummary, str]) -> None:
    _, html = report
    lowered = html.lower()
    for needle in ("http://", "https://", "//cdn", "<script", "<link", "@import", "url("):
        assert needle not in lowered, needle
    assert all(
        src.startswith("data:image/svg+xml;base64,") for src in re.findall(r'src="([^"]*)"', html)
    )
    for data in EMBEDDED_SVG.findall(html):
        image = ElementTree.fromstring(base64.b64decode(data))
        assert not [e for e in image.iter() if e.tag.endswith(("script", "image", "use"))]
        assert not [v for e in image.iter() for k, v in e.attrib.items() if "href" in k]
    assert all(href.startswith("#") for href in re.findall(r'href="([^"]*)"', html))


def test_headline_figures_and_content(report: tuple[ReportSummary, str]) -> None:
    summary, html = report
    assert summary.n_polls > 0 and summary.n_orders > 0
    assert summary.data_from is not None and summary.data_to is not None
    assert "2026-01-06 08:30:00 UTC" in html  # generation time
    assert summary.data_from.strftime("%Y-%m-%d %H:%M:%S") in html  # data window
    assert summary.scorecard.columns == list(SCORECARD_COLUMNS)
    assert summary.scorecard.filter(pl.col("is_ranked"))["rank"].to_list() == [1, 2, 3, 4]
    assert "Not ranked: too few polls/orders" in html and "Altinn (" in html  # display name
    assert "left_terminal" in html  # the injected impossible transitions
    assert "ON_HOLD_REVIEW" in html  # unknown statuses
    assert "latency_ms: greater_than_or_equal_to(0)" in html  # a quarantine reason
    assert NOT_ENOUGH_DATA not in html


def test_scorecard_shows_every_rolling_window(report: tuple[ReportSummary, str]) -> None:
    _, html = report
    section = html[html.index("Rolling windows") :]
    rows = section[: section.index("</table>")].split("<tr>")[2:]  # after the header row
    windows = [row.split("<td>")[1].split("</td>")[0] for row in rows]
    assert windows[:5] == list(WINDOWS)  # the first provider's five windows, shortest first
    assert set(windows) <= set(WINDOWS)  # a provider without polls in a window has no row


def test_written_atomically_to_the_configured_place(published: Path, tmp_path: Path) -> None:
    settings = Settings.from_env({"PIPELINE_DATA_DIR": str(tmp_path)})
    out = default_report_path(settings)
    assert out == tmp_path / "reports" / "report.html"
    out.parent.mkdir(parents=True)
    out.write_text("old report")
    summary = build_report(published, out)
    assert summary.out_path == out
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]


HOSTILE = '<script src="https://evil.example/x.js"></script>'


def test_text_from_data_is_escaped_and_never_a_link() -> None:
    escaped = text(HOSTILE)
    assert "<" not in escaped and "https://" not in escaped
    assert text(escaped) == escaped  # escaped once, never twice
    rendered = ENVIRONMENT.from_string(
        '{% import "macros.html" as m %}<p title="{{ v }}">{{ v }}</p>{{ m.note(v) }}'
    ).render(v=HOSTILE)
    assert "<script" not in rendered and "https://" not in rendered
    assert rendered.count(str(escaped)) == 3  # in an attribute, as text and through a macro


def test_hostile_text_in_every_section_is_escaped(published: Path) -> None:
    """Every text column from the data, set to markup with a URL, shows as text, never as
    markup or a link: the section templates leave no hole in the escaping."""
    data = load(published)
    hostile_frames = {}
    for field in dataclasses.fields(data):
        frame = getattr(data, field.name)
        if not isinstance(frame, pl.DataFrame) or frame.is_empty():
            continue
        texts = [
            c
            for c, dtype in frame.schema.items()
            if dtype in (pl.String, pl.Categorical) and c != "group_level"
        ]
        hostile_frames[field.name] = frame.with_columns(pl.lit(HOSTILE).alias(c) for c in texts)
    hostile = dataclasses.replace(data, **hostile_frames)
    parts = [sections.overview(hostile, GENERATED_AT)]
    parts += [build(hostile) for build in sections.SECTION_BUILDERS]
    html = render(parts, GENERATED_AT)
    assert "<script" not in html.lower() and "https://" not in html
    assert str(text(HOSTILE)) in html


def test_a_service_named_like_a_script_shows_escaped(report: tuple[ReportSummary, str]) -> None:
    _, html = report
    assert "<script" not in html.lower()
    by_service = html[html.index("<h3>By service</h3>") : html.index('id="time-to-completion"')]
    assert str(escape(HOSTILE_SERVICE)) in by_service
    assert "SMSOnline" in by_service and HOSTILE_SERVICE_PROVIDER == "smsonline"


def test_empty_warehouse_gives_not_enough_data(empty_published: Path, tmp_path: Path) -> None:
    summary = build_report(empty_published, tmp_path / "report.html")
    html = (tmp_path / "report.html").read_text()
    assert summary.sections == SECTIONS
    assert summary.n_images == 0 and summary.key_chart_svg is None
    assert summary.n_polls == 0 and summary.scorecard.is_empty()
    assert html.count(NOT_ENOUGH_DATA) >= 6
    assert "data:image/" not in html


def test_warehouse_without_derived_tables(tmp_path: Path) -> None:
    path = tmp_path / "published.duckdb"
    Warehouse(path).initialise()  # base tables only: never refreshed
    summary = build_report(path, tmp_path / "report.html")
    assert summary.sections == SECTIONS
    assert summary.n_images == 0


def test_expiry_chart_falls_back_to_the_resolved_share() -> None:
    hours = [datetime(2026, 1, 5, h, tzinfo=UTC) for h in (9, 10)]
    rates = pl.DataFrame(
        {
            "provider": ["sms4sats", "sms4sats"],
            "bucket_start": hours,
            "expiry_rate": [0.2, None],  # the second hour's follow-up is too short
            "ci_low": [0.1, None],
            "ci_high": [0.3, None],
            "resolved_share_expired": [0.2, 0.5],
            "resolved_share_ci_low": [0.1, 0.2],
            "resolved_share_ci_high": [0.3, 0.8],
        }
    )
    chart = expiry_over_time_chart(rates, title="expiry")
    assert chart is not None and _is_svg(chart.svg())
    [hollow] = [layer for layer in chart.layers if isinstance(layer, Markers) and layer.hollow]
    assert hollow.y.tolist() == [0.5]  # the resolved share, where the rate is not defined yet
    nothing = rates.with_columns(
        pl.lit(None, pl.Float64).alias("expiry_rate"),
        pl.lit(None, pl.Float64).alias("resolved_share_expired"),
    )
    assert expiry_over_time_chart(nothing, title="expiry") is None


def test_expiry_finding_when_nothing_expired(published: Path) -> None:
    data = load(published)
    assert "has the highest expiry rate" in sections.expiry(data).body
    none_expired = data.expiry_rates.with_columns(
        pl.lit(0).alias("n_expired"),
        pl.when(pl.col("expiry_rate").is_not_null()).then(0.0).alias("expiry_rate"),
    )
    body = sections.expiry(dataclasses.replace(data, expiry_rates=none_expired)).body
    assert "No orders have expired so far" in body
    assert "highest expiry rate" not in body  # never "baanx has the highest expiry rate (0 %)"


def test_expiry_chart_draws_the_recent_hours_of_a_long_history() -> None:
    """A year of hourly buckets is charted as its last `EXPIRY_CHART_HOURS` hours (drawing
    every hour took minutes and showed nothing readable)."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    hours = [start + timedelta(hours=h) for h in range(24 * 365)]
    rates = pl.DataFrame(
        {
            "provider": "sms4sats",
            "bucket_start": hours,
            "expiry_rate": 0.1,
            "ci_low": 0.05,
            "ci_high": 0.2,
            "resolved_share_expired": 0.1,
            "resolved_share_ci_low": 0.05,
            "resolved_share_ci_high": 0.2,
        }
    )
    shown, cut = recent_hours(rates)
    assert cut
    assert shown["bucket_start"].to_list() == hours[-EXPIRY_CHART_HOURS:]
    assert not recent_hours(shown)[1]
    chart = expiry_over_time_chart(rates, title="expiry")
    assert chart is not None and _is_svg(chart.svg())
    [markers] = [layer for layer in chart.layers if isinstance(layer, Markers)]
    assert markers.x.size == EXPIRY_CHART_HOURS
