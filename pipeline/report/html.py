"""The HTML report: one self-contained page built from the published warehouse.

`build_report` reads the published (read-only) copy, builds every section, and writes a single
HTML file atomically. The page needs nothing from the network: charts are PNGs embedded as
base64 data URIs, the style sheet is inline, there is no script, and text from the data is
escaped with any URL in it defused.
"""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from pipeline.report import sections
from pipeline.report.data import load
from pipeline.report.markup import text, timestamp
from pipeline.settings import Settings

REPORT_FILENAME = "report.html"
TITLE = "Order status history: outcomes and provider reliability"

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #222; background: #fafafa; line-height: 1.45; }
main { max-width: 1000px; margin: 0 auto; padding: 1.5rem 2rem 3rem; background: #fff; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.25rem; margin-top: 2.4rem; border-bottom: 1px solid #ddd;
     padding-bottom: 0.2rem; }
h3 { font-size: 1.05rem; margin-top: 1.4rem; }
nav ol { columns: 2; padding-left: 1.2rem; }
nav a, nav a:visited { color: #0b5394; }
figure { margin: 0.8rem 0; }
img { max-width: 100%; height: auto; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.86rem; }
caption { caption-side: bottom; text-align: left; color: #666; font-size: 0.8rem;
          padding-top: 0.3rem; }
th, td { padding: 0.3rem 0.6rem; border-bottom: 1px solid #e3e3e3; text-align: left;
         vertical-align: top; }
th { background: #f2f2f2; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2rem 1rem; }
dt { font-weight: 600; }
dd { margin: 0; }
.note { color: #777; font-style: italic; }
.lede { color: #555; }
.pair { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
.pair > * { flex: 1 1 420px; }
"""


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
    key_chart_png: bytes | None
    """The time-to-completion chart (or the first chart there is), for a preview."""


def default_report_path(settings: Settings) -> Path:
    """Where the report lives: `<data dir>/reports/report.html`."""
    return settings.reports_dir / REPORT_FILENAME


def render(parts: list[sections.Section], generated_at: datetime) -> str:
    """The whole page around the sections."""
    toc = "".join(f'<li><a href="#{s.anchor}">{text(s.title)}</a></li>' for s in parts)
    body = "\n".join(
        f'<section id="{s.anchor}"><h2>{text(s.title)}</h2>\n{s.body}\n</section>' for s in parts
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{text(TITLE)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n"
        f"<h1>{text(TITLE)}</h1>\n"
        f'<p class="lede">Generated {text(timestamp(generated_at))} from the published '
        "warehouse. All times are UTC; each duration shows its unit (s, min or h).</p>\n"
        f"<nav><ol>{toc}</ol></nav>\n{body}\n</main>\n</body>\n</html>\n"
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
    published_path: Path, out_path: Path, *, generated_at: datetime | None = None
) -> ReportSummary:
    """Build the HTML report from the published warehouse and write it to `out_path`.

    Args:
        published_path: the read-only published copy of the warehouse.
        out_path: the HTML file to write (replaced atomically).
        generated_at: the generation time shown on the page (default: now, UTC).

    Returns:
        What was written, with headline figures.
    """
    generated_at = generated_at or datetime.now(UTC)
    data = load(published_path)
    parts = [
        sections.overview(data, generated_at),
        *[build(data) for build in sections.SECTION_BUILDERS],
    ]
    _write_atomically(out_path, render(parts, generated_at))
    by_anchor = {s.anchor: s for s in parts}
    images = [png for s in parts for png in s.images]
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
        key_chart_png=key_images[0] if key_images else None,
    )
