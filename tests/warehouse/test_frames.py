"""Observations to warehouse rows: the storability check measures text in UTF-8 bytes (ASCII
text by its length, other text encoded), refuses lone surrogates and 32-bit overflows, and the
observations frame holds every field but the body, keyed by the attempt."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from pipeline.model import Observation
from pipeline.warehouse.frames import (
    MAX_PAYLOAD_BYTES,
    MAX_TEXT_CHARS,
    observation_id,
    observations_frame,
    unstorable_reasons,
)
from pipeline.warehouse.schema import OBSERVATION_COLUMNS

OBSERVATION = Observation(
    provider="baanx",
    order_id="o1",
    order_kind="product_order",
    polled_at=datetime(2026, 1, 1, tzinfo=UTC),
    state="pending",
    is_terminal=False,
    http_status=200,
    attempt=2,
    error_message="fine",
    payload_redacted="{}",
)


def reasons(**changes: object) -> list[str]:
    return unstorable_reasons(dataclasses.replace(OBSERVATION, **changes))  # type: ignore[arg-type]


def test_text_is_bounded_in_bytes_whatever_its_characters() -> None:
    assert reasons(error_message="a" * MAX_TEXT_CHARS) == []
    assert reasons(error_message="a" * (MAX_TEXT_CHARS + 1)) == [
        f"error_message: longer than {MAX_TEXT_CHARS} bytes"
    ]
    two_bytes_each = "é" * (MAX_TEXT_CHARS // 2)
    assert reasons(error_message=two_bytes_each) == []
    assert reasons(error_message=two_bytes_each + "a") == [
        f"error_message: longer than {MAX_TEXT_CHARS} bytes"
    ]
    assert reasons(payload_redacted="a" * (MAX_PAYLOAD_BYTES + 1)) == [
        f"payload_redacted: longer than {MAX_PAYLOAD_BYTES} bytes"
    ]


def test_lone_surrogates_and_overflowing_counts_are_refused() -> None:
    assert reasons(provider_status="ok\ud800") == ["provider_status: not valid Unicode"]
    assert reasons(items_total=2**31) == ["items_total: out of range for INTEGER"]
    assert reasons(items_total=-(2**31), code_length=2**31 - 1) == []


def test_the_frame_holds_every_column_but_the_body() -> None:
    frame = observations_frame([OBSERVATION])
    assert frame.schema == OBSERVATION_COLUMNS
    row = frame.row(0, named=True)
    expected = OBSERVATION.as_row()
    expected.pop("payload_redacted")
    assert row.pop("observation_id") == observation_id("baanx", "o1", OBSERVATION.polled_at, 2)
    assert row == expected
    assert observations_frame([]).schema == OBSERVATION_COLUMNS
