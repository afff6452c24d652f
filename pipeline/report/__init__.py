"""The HTML report over the published warehouse: charts, sections and the page.

- `charts`: matplotlib figures as PNG bytes, one colour per provider.
- `data`: the frames the report shows, read from the analytics tables in one read-only session.
- `providers`: providers' names, order and colours, from their specs in the registry.
- `markup`: text formats, and `text`, which escapes every value a template prints.
- `templating`: the Jinja2 environment (autoescaping, strict) over `templates/`.
- `sections`: one function per report section, each rendering `templates/sections/<name>.html`.
- `html`: `build_report`, which renders `templates/report.html` and writes the page (with the
  sandbox's truth beside the estimates when given its truth file, `sandbox_truth_path`).
"""

from pipeline.report.html import (
    REPORT_FILENAME,
    ReportSummary,
    build_report,
    default_report_path,
    sandbox_truth_path,
)

__all__ = [
    "REPORT_FILENAME",
    "ReportSummary",
    "build_report",
    "default_report_path",
    "sandbox_truth_path",
]
