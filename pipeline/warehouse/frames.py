"""Model objects to polars frames in the warehouse's column layout, with deterministic keys."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime

import polars as pl

from pipeline.model import Observation, TrackedOrder
from pipeline.warehouse.schema import (
    OBSERVATION_COLUMNS,
    ORDER_COLUMNS,
    PAYLOAD_COLUMNS,
)


def observation_id(provider: str, order_id: str, polled_at: datetime, attempt: int) -> str:
    """The row key of one poll attempt: the same attempt always gets the same key."""
    material = f"{provider}\x1f{order_id}\x1f{polled_at.isoformat()}\x1f{attempt}"
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def observations_frame(observations: Sequence[Observation]) -> pl.DataFrame:
    """Observations as an `observations`-shaped frame (payload text excluded)."""
    rows = []
    for obs in observations:
        row = obs.as_row()
        row.pop("payload_redacted")
        row["observation_id"] = observation_id(
            obs.provider, obs.order_id, obs.polled_at, obs.attempt
        )
        rows.append(row)
    return pl.DataFrame(rows, schema=OBSERVATION_COLUMNS)


def payloads_frame(observations: Iterable[Observation]) -> pl.DataFrame:
    """Distinct redacted bodies of `observations`, one row per hash."""
    seen: dict[str, dict[str, object]] = {}
    for obs in observations:
        if obs.payload_sha256 and obs.payload_sha256 not in seen:
            body = obs.payload_redacted or ""
            seen[obs.payload_sha256] = {
                "payload_sha256": obs.payload_sha256,
                "provider": obs.provider,
                "body_redacted": body,
                "size_bytes": len(body.encode()),
                "first_seen_at": obs.polled_at,
            }
    return pl.DataFrame(list(seen.values()), schema=PAYLOAD_COLUMNS)


def orders_frame(orders: Iterable[TrackedOrder], *, source: str | None = None) -> pl.DataFrame:
    """Tracked orders as an `orders`-shaped frame."""
    rows = [
        {
            "provider": o.provider,
            "order_id": o.order_id,
            "order_kind": o.order_kind,
            "registered_at": o.registered_at,
            "created_at": o.created_at,
            "service": o.service,
            "country": o.country,
            "source": source,
        }
        for o in orders
    ]
    return pl.DataFrame(rows, schema=ORDER_COLUMNS)
