"""The HTML report: one self-contained page built from the published warehouse.

`build_report` reads the published (read-only) copy, builds every section, and writes a single
HTML file atomically. The page is rendered from the Jinja2 templates in
`pipeline/report/templates/` (`report.html` around the sections, see
`pipeline.report.templating`). It needs nothing from the network: charts are PNGs embedded as
base64 data URIs, the style sheet (`report.css`) is inline, there is no script, and text from
the data is escaped with any URL in it defused. On sandbox data, given the sandbox's truth file
(`truth_path`, see `sandbox_truth_path`), the time-to-code and time-to-completion tables show the
true median of the same orders beside each estimate.
"""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from pipeline.report import sections, templating
from pipeline.report.data import load
from pipeline.settings import Settings

REPORT_FILENAME = "report.html"
TRUTH_FILENAME = "truth.jsonl"
"""The sandbox's ground truth in its directory (`Settings.sandbox_dir`)."""
TITLE = "Order status history: outcomes and provider reliability"


@dataclasses.dataclass(frozen=True)
class ReportSummary:
    """What `build_report` wrote, with headline figures for Dagster metadata."""

    out_path: Path
    sections: list[str]
    """Section titles, in page order."""
    n_images: int
    generated_at: datetime
    data_from: datetime | None
    data_to: datetime | None
    n_polls: int
    n_orders: int
    scorecard: pl.DataFrame
    """Reliability scorecard rows (see `pipeline.report.sections.SCORECARD_COLUMNS`)."""
    key_chart_svg: bytes | None
    """The time-to-completion chart (or the first chart there is), for a preview."""


def default_report_path(settings: Settings) -> Path:
    """Where the report lives: `<data dir>/reports/report.html`."""
    return settings.reports_dir / REPORT_FILENAME


def sandbox_truth_path(settings: Settings) -> Path | None:
    """The sandbox's truth file, `<data dir>/sandbox/truth.jsonl`, when it exists (the data
    came from the sandbox); else None."""
    path = settings.sandbox_dir / TRUTH_FILENAME
    return path if path.is_file() else None


def render(parts: list[sections.Section], generated_at: datetime) -> str:
    """The whole page around the sections."""
    return str(
        templating.render("report.html", title=TITLE, generated_at=generated_at, sections=parts)
    )


def _write_atomically(out_path: Path, content: str) -> None:
    out_path.parent.mkdir(parents=True, exist_ok=True)
    staging = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    try:
        staging.write_text(content, encoding="utf-8")
        os.replace(staging, out_path)
    finally:
        staging.unlink(missing_ok=True)


def build_report(
    published_path: Path,
    out_path: Path,
    *,
    generated_at: datetime | None = None,
    truth_path: Path | None = None,
) -> ReportSummary:
    """Build the HTML report from the published warehouse and write it to `out_path`.

    Args:
        published_path: the read-only published copy of the warehouse.
        out_path: the HTML file to write (replaced atomically).
        generated_at: the generation time shown on the page (default: now, UTC).
        truth_path: the sandbox's ground truth (JSONL); when the file exists, the true medians
            of the same orders are shown beside the estimates. None or no file: no truth column.

    Returns:
        What was written, with headline figures.
    """
    generated_at = generated_at or datetime.now(UTC)
    data = load(published_path, truth_path)
    parts = [
        sections.overview(data, generated_at),
        *[build(data) for build in sections.SECTION_BUILDERS],
    ]
    _write_atomically(out_path, render(parts, generated_at))
    by_anchor = {s.anchor: s for s in parts}
    images = [svg for s in parts for svg in s.images]
    key_images = by_anchor["time-to-completion"].images or tuple(images)
    return ReportSummary(
        out_path=out_path,
        sections=[s.title for s in parts],
        n_images=len(images),
        generated_at=generated_at,
        data_from=data.data_from,
        data_to=data.data_to,
        n_polls=data.n_polls,
        n_orders=data.n_orders,
        scorecard=sections.scorecard_frame(data.reliability),
        key_chart_svg=key_images[0] if key_images else None,
    )
