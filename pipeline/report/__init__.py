"""The HTML report over the published warehouse: charts, sections and the page.

- `charts`: the charts, one colour per provider, as `plot.Plot`s that lay themselves out as
  SVG (`svg`: text metrics, ticks, scales and elements); `notebook_plots` draws the curves
  with matplotlib for the notebook.
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
