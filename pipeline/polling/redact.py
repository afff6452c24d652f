"""A logging filter that scrubs credentials from any record, httpx's own included.

The adapters never put secrets in log text, but libraries log URLs (SMSOnline carries its key in
the query string); this filter is the backstop.
"""

from __future__ import annotations

import logging
import re

_PATTERNS = (
    (re.compile(r"(?i)(api_?key|token|secret|password)=([^&\s\"']+)"), r"\1=[redacted]"),
    (re.compile(r"(?i)(bearer\s+)[^\s\"',]+"), r"\1[redacted]"),
    (re.compile(r"(?i)(orderId=)([^&\s\"']+)"), r"\1[redacted]"),
)


def scrub(text: str) -> str:
    """`text` with credential-looking values replaced by `[redacted]`."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Renders each record's message and scrubs it before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = scrub(message)
        record.args = None
        return True


def install() -> None:
    """Quiet the HTTP libraries' request logging and attach the scrubbing filter."""
    for name in ("httpx", "httpcore"):
        library_logger = logging.getLogger(name)
        library_logger.setLevel(logging.WARNING)
        if not any(isinstance(f, RedactingFilter) for f in library_logger.filters):
            library_logger.addFilter(RedactingFilter())
