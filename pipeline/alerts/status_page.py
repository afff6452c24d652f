"""The status page: one offline HTML file and one shields.io badge per provider.

`write_status_page` writes `index.html` (each provider's state, availability over several
windows, SLOs with the error budget left, open and recent incidents) and `<slug>.json` in the
shields.io endpoint-badge format (`{"schemaVersion": 1, "label", "message", "color"}`). The page
loads nothing from outside itself; it is rendered with autoescaping and the report's `text`
finalizer, so any text from the data is escaped and URLs in it are defused.

A provider is `down` while an incident that pages is open, `degraded` while any other incident
is open, `no data` when it was not polled in the last hour, and `operational` otherwise. The
page reads what `evaluate_and_notify` stored, so it is as fresh as the last evaluation.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2
import polars as pl

from pipeline.alerts.config import DAY_S, HOUR_S, MINUTE_S
from pipeline.alerts.rules import poll_counts
from pipeline.alerts.verdicts import window_name
from pipeline.providers.registry import REGISTRY
from pipeline.providers.spec import SLUG_PATTERN, ProviderSpec
from pipeline.warehouse import Warehouse, query

AVAILABILITY_WINDOWS_S: tuple[float, ...] = (5 * MINUTE_S, HOUR_S, DAY_S)
"""Windows the page shows availability over."""
RECENT_INCIDENTS = timedelta(days=7)
MAX_INCIDENTS = 50
NO_DATA_WINDOW_S = HOUR_S
"""A provider not polled within this window shows `no data`."""
BURN_WINDOW_S = HOUR_S
"""The burn-rate window the page shows beside each SLO."""

OPERATIONAL, DEGRADED, DOWN, NO_DATA = "operational", "degraded", "down", "no data"
BADGE_COLOURS = {
    OPERATIONAL: "brightgreen",
    DEGRADED: "yellow",
    DOWN: "red",
    NO_DATA: "lightgrey",
}
"""shields.io colour names per state."""
INDEX = "index.html"


@dataclasses.dataclass(frozen=True)
class ProviderStatus:
    """What the page shows about one provider."""

    slug: str
    name: str
    state: str
    availability: list[tuple[str, float | None, int]]
    """(window, availability or None, polls) per window of `AVAILABILITY_WINDOWS_S`."""
    slos: list[dict[str, Any]]
    open_incidents: list[dict[str, Any]]

    @property
    def badge(self) -> dict[str, Any]:
        """The shields.io endpoint badge."""
        return {
            "schemaVersion": 1,
            "label": self.name,
            "message": self.state,
            "color": BADGE_COLOURS[self.state],
        }


@dataclasses.dataclass(frozen=True)
class StatusPage:
    """What `write_status_page` wrote."""

    index: Path
    badges: dict[str, Path]
    providers: list[ProviderStatus]


def _environment() -> jinja2.Environment:
    # Imported here: importing `pipeline.report` loads the report's data and sections, which
    # the evaluation itself (`evaluate_and_notify`) never needs.
    from pipeline.report import markup

    return markup.environment(jinja2.PackageLoader("pipeline.alerts", "templates"))


def provider_statuses(
    warehouse: Warehouse, now: datetime, specs: Mapping[str, ProviderSpec]
) -> tuple[list[ProviderStatus], list[dict[str, Any]]]:
    """Every provider's status and the recent incidents (open ones first, then newest first)."""
    with warehouse.connect() as con:
        counts = poll_counts(con, AVAILABILITY_WINDOWS_S, now)
        slo_rows = query(con, "SELECT * FROM slo_status ORDER BY provider, slo, window_s")
        incidents = query(
            con,
            # Firing ones first: the limit may cut old resolved incidents, never an open one.
            "SELECT * FROM alert_incidents WHERE state = 'firing' OR opened_at > ?"
            " ORDER BY state = 'firing' DESC, opened_at DESC LIMIT ?",
            [now - RECENT_INCIDENTS, MAX_INCIDENTS],
        )
    slugs = list(
        dict.fromkeys(
            [*specs, *sorted(counts["provider"].to_list()), *incidents["provider"].to_list()]
        )
    )
    recent = [
        row | {"provider_name": _name(row["provider"], specs), "duration_s": _lasted(row, now)}
        for row in incidents.iter_rows(named=True)
    ]
    statuses = []
    for slug in slugs:
        mine = counts.filter(pl.col("provider") == slug)
        by_window = {row["window_s"]: row for row in mine.iter_rows(named=True)}
        availability = []
        for window in AVAILABILITY_WINDOWS_S:
            row = by_window.get(window) or {"polls": 0, "valid": 0}
            share = row["valid"] / row["polls"] if row["polls"] else None
            availability.append((window_name(window), share, row["polls"]))
        open_incidents = [r for r in recent if r["provider"] == slug and r["state"] == "firing"]
        hour_polls = next(p for w, _, p in availability if w == window_name(NO_DATA_WINDOW_S))
        if any(r["severity"] == "page" for r in open_incidents):
            state = DOWN
        elif open_incidents:
            state = DEGRADED
        elif hour_polls == 0:
            state = NO_DATA
        else:
            state = OPERATIONAL
        statuses.append(
            ProviderStatus(
                slug=slug,
                name=_name(slug, specs),
                state=state,
                availability=availability,
                slos=_slos(slo_rows.filter(pl.col("provider") == slug)),
                open_incidents=open_incidents,
            )
        )
    return statuses, recent


def _name(slug: str, specs: Mapping[str, ProviderSpec]) -> str:
    spec = specs.get(slug)
    return spec.display_name if spec else slug


def _lasted(incident: Mapping[str, Any], now: datetime) -> float:
    end = incident["resolved_at"] or now
    return float((end - incident["opened_at"]).total_seconds())


def _slos(rows: pl.DataFrame) -> list[dict[str, Any]]:
    """One entry per SLO: objective, the compliance period's figures and the hour's burn rate."""
    found = []
    for (slo,), group in rows.group_by(["slo"], maintain_order=True):
        period = group.sort("window_s").tail(1).row(0, named=True)
        hour = group.filter(pl.col("window_s") == BURN_WINDOW_S)
        found.append(
            {
                "slo": slo,
                "objective": period["objective"],
                "period": period["window_name"],
                "good": period["good"],
                "total": period["total"],
                "compliance": period["good"] / period["total"] if period["total"] else None,
                "budget_remaining": period["error_budget_remaining"],
                "burn_rate_1h": hour["burn_rate"][0] if hour.height else None,
            }
        )
    return found


def _write(path: Path, text: str) -> None:
    """Write `text` to `path` atomically: a reader never sees half a file."""
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staging.write_text(text, encoding="utf-8")
    os.replace(staging, path)


def write_status_page(
    warehouse: Warehouse,
    out_dir: Path,
    *,
    now: datetime | None = None,
    specs: Mapping[str, ProviderSpec] | None = None,
) -> StatusPage:
    """Write `out_dir/index.html` and one `<slug>.json` badge per provider.

    Args:
        warehouse: the warehouse `evaluate_and_notify` writes to.
        out_dir: where to write (e.g. `AlertConfig.status_dir`, `<data dir>/status`).
        now: the time the page is as of (default: the clock).
        specs: provider specs by slug (default: the registry's).

    Returns:
        The files written and what they show.
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    specs = specs if specs is not None else {s.slug: s for s in REGISTRY.specs()}
    statuses, recent = provider_statuses(warehouse, now, specs)
    out_dir.mkdir(parents=True, exist_ok=True)
    html = (
        _environment()
        .get_template("status.html")
        .render(
            generated_at=now,
            providers=statuses,
            incidents=recent,
            windows=[window_name(w) for w in AVAILABILITY_WINDOWS_S],
        )
    )
    index = out_dir / INDEX
    _write(index, html)
    badges = {}
    for status in statuses:
        if SLUG_PATTERN.match(status.slug):
            badges[status.slug] = out_dir / f"{status.slug}.json"
            _write(badges[status.slug], json.dumps(status.badge, ensure_ascii=False) + "\n")
    return StatusPage(index, badges, statuses)
