"""The HTML report over the published warehouse: charts, sections and the page.

- `charts`: matplotlib figures as PNG bytes, one colour per provider.
- `data`: the frames the report shows, read in one read-only session.
- `markup`: escaped HTML building blocks.
- `sections`: one function per report section.
- `html`: `build_report`, which writes the self-contained page.
"""

from pipeline.report.html import REPORT_FILENAME, ReportSummary, build_report, default_report_path

__all__ = ["REPORT_FILENAME", "ReportSummary", "build_report", "default_report_path"]
