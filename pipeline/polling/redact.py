"""A logging filter that scrubs credentials from any record, httpx's own included.

The adapters never put secrets in log text, but libraries log URLs (SMSOnline carries its key in
the query string); this filter is the backstop. It scrubs with `pipeline.redaction.scrub`, the
same function every stored text goes through.
"""

from __future__ import annotations

import logging

from pipeline.redaction import scrub

MAX_LOG_CHARS = 8192
"""A log message is cut to this many characters before it is scrubbed."""


class RedactingFilter(logging.Filter):
    """Renders each record's message and scrubs it before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = scrub(message, max_chars=MAX_LOG_CHARS)
        record.args = None
        return True


def install() -> None:
    """Quiet the HTTP libraries' request logging and attach the scrubbing filter."""
    for name in ("httpx", "httpcore"):
        library_logger = logging.getLogger(name)
        library_logger.setLevel(logging.WARNING)
        if not any(isinstance(f, RedactingFilter) for f in library_logger.filters):
            library_logger.addFilter(RedactingFilter())
