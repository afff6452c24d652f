"""Model objects to polars frames in the warehouse's column layout, with deterministic keys.

`split_storable` comes first: it sets aside observations the warehouse would refuse (a count that
overflows its column, text that is not valid Unicode or is far too long), each with its reasons,
so one hostile answer is quarantined instead of failing the whole batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime

import polars as pl

from pipeline.model import OBSERVATION_FIELDS, Observation, TrackedOrder
from pipeline.warehouse.schema import (
    OBSERVATION_COLUMNS,
    ORDER_COLUMNS,
    PAYLOAD_COLUMNS,
)

INT32_RANGE = (-(2**31), 2**31 - 1)
MAX_TEXT_CHARS = 4_096
"""Longest text an observation column stores; adapters cut provider text far below this."""
MAX_PAYLOAD_BYTES = 1_048_576
"""Longest redacted body stored in `payloads`."""
_INT32_FIELDS = tuple(
    k for k, v in OBSERVATION_COLUMNS.items() if isinstance(v, pl.Int32) and k in OBSERVATION_FIELDS
)
_TEXT_FIELDS = tuple(k for k, v in OBSERVATION_COLUMNS.items() if isinstance(v, pl.String))
_OBSERVATION_ATTRIBUTES = tuple(name for name in OBSERVATION_COLUMNS if name != "observation_id")
_INT32_MIN, _INT32_MAX = INT32_RANGE
_TEXT_LIMITS = (
    *((name, MAX_TEXT_CHARS) for name in _TEXT_FIELDS if name in OBSERVATION_FIELDS),
    ("payload_redacted", MAX_PAYLOAD_BYTES),
)
"""Observation text fields and the most UTF-8 bytes the warehouse takes in each."""

Refused = tuple[Observation, list[str]]
"""An observation the warehouse would refuse, with why."""


def split_storable(observations: Iterable[Observation]) -> tuple[list[Observation], list[Refused]]:
    """Split observations into those the warehouse can store and those it would refuse."""
    kept: list[Observation] = []
    refused: list[Refused] = []
    for obs in observations:
        reasons = unstorable_reasons(obs)
        if reasons:
            refused.append((obs, reasons))
        else:
            kept.append(obs)
    return kept, refused


def unstorable_reasons(obs: Observation) -> list[str]:
    """Why the warehouse would refuse `obs` (empty when it can be stored)."""
    reasons = []
    for name in _INT32_FIELDS:
        value = getattr(obs, name)
        if value is not None and not _INT32_MIN <= value <= _INT32_MAX:
            reasons.append(f"{name}: out of range for INTEGER")
    for name, limit in _TEXT_LIMITS:
        value = getattr(obs, name)
        if not isinstance(value, str):
            continue
        if value.isascii():  # one byte per character, and no lone surrogate
            size = len(value)
        else:
            try:
                size = len(value.encode("utf-8"))
            except UnicodeEncodeError:
                reasons.append(f"{name}: not valid Unicode")
                continue
        if size > limit:
            reasons.append(f"{name}: longer than {limit} bytes")
    return reasons


def observation_id(provider: str, order_id: str, polled_at: datetime, attempt: int) -> str:
    """The row key of one poll attempt: the same attempt always gets the same key."""
    material = f"{provider}\x1f{order_id}\x1f{polled_at.isoformat()}\x1f{attempt}"
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def observations_frame(observations: Sequence[Observation]) -> pl.DataFrame:
    """Observations as an `observations`-shaped frame (payload text excluded)."""
    columns = {
        "observation_id": [
            observation_id(obs.provider, obs.order_id, obs.polled_at, obs.attempt)
            for obs in observations
        ]
    }
    # Column by column: polars builds a frame from lists far faster than from row dicts.
    for name in _OBSERVATION_ATTRIBUTES:
        columns[name] = [getattr(obs, name) for obs in observations]
    return pl.DataFrame(columns, schema=OBSERVATION_COLUMNS)


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
