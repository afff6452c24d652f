"""Fixtures of the alert tests: a local webhook receiver and a local SMTP server."""

from alert_support import receiver, smtp_sink

__all__ = ["receiver", "smtp_sink"]
