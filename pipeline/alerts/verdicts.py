"""`Verdict`: what one rule or SLO says about one provider at one evaluation.

Threshold rules (`pipeline.alerts.rules`) and SLO burn-rate alerts (`pipeline.alerts.slo`) both end
in verdicts; incidents (`pipeline.alerts.incidents`) only ever see verdicts.
"""

from __future__ import annotations

import dataclasses

from pipeline.alerts.config import SEVERITY_RANK, Severity


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One rule's reading for one provider.

    Attributes:
        provider: provider slug.
        rule: the rule's or SLO's name.
        severity: the most urgent level that fires, or None when none does.
        known: whether enough data was seen to decide. An unknown verdict neither opens nor
            resolves an incident: no data is not good news.
        value: the figure the message quotes (the firing level's, else the most urgent level
            with data): a share for threshold rules, a burn rate for SLOs.
        threshold: what `value` was compared with.
        detail: the reading in words, for messages and the status page.
    """

    provider: str
    rule: str
    severity: Severity | None
    known: bool
    value: float | None
    threshold: float | None
    detail: str

    @property
    def rank(self) -> int:
        """0 when not firing, else the severity's rank (page outranks ticket)."""
        return SEVERITY_RANK[self.severity] if self.severity else 0


def window_name(seconds: float) -> str:
    """A window as people write it: 300 → "5m", 3600 → "1h", 2592000 → "30d"."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def window_words(seconds: float) -> str:
    """A window in words: 300 → "5 min", 3600 → "1 h"."""
    name = window_name(seconds)
    number, unit = name[:-1], name[-1]
    return f"{number} {({'d': 'd', 'h': 'h', 'm': 'min', 's': 's'})[unit]}"


def percent(value: float | None) -> str:
    """0.1234 → "12.3 %"; None → "–"."""
    return "–" if value is None else f"{100.0 * value:.1f} %"
