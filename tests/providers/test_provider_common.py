"""Shared adapter helpers: JSON decoding that never raises, epoch/ISO timestamp normalisation
to aware UTC, phone masking, code hashing, `Retry-After` (seconds and HTTP-date), HTTP status
classification, path-segment encoding, and redaction of text and message bodies.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.model import ErrorClass
from pipeline.providers.common import (
    MAX_MESSAGE_CHARS,
    MAX_TEXT_PAYLOAD_BYTES,
    classify_http_status,
    decode_json,
    from_epoch,
    is_secret_key,
    mask_phone,
    normalise_code,
    parse_iso,
    path_segment,
    redact_json,
    redact_text,
    retry_after_seconds,
    safe_message,
)
from pipeline.redaction import scrub

NOW = datetime(2025, 5, 17, 5, 50, tzinfo=UTC)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"\xff\xfe",
        b"{",
        b'{"a":NaN}',
        b'{"a":Infinity}',
        b"[" * 100_000,
        b"1" * 5000,
    ],
)
def test_decode_json_reports_problems_without_raising(body: bytes) -> None:
    value, problem = decode_json(body)
    assert value is None
    assert problem


def test_decode_json_accepts_bom_and_scalars() -> None:
    assert decode_json(b'\xef\xbb\xbf{"a":1}') == ({"a": 1}, None)
    assert decode_json(b"null") == (None, None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-12-12T14:13:27.836731Z", datetime(2023, 12, 12, 14, 13, 27, 836731, tzinfo=UTC)),
        ("2023-12-12T14:13:27.8367315Z", datetime(2023, 12, 12, 14, 13, 27, 836731, tzinfo=UTC)),
        ("2023-12-12T14:13:27.8Z", datetime(2023, 12, 12, 14, 13, 27, 800000, tzinfo=UTC)),
        ("2023-12-12T14:13:27Z", datetime(2023, 12, 12, 14, 13, 27, tzinfo=UTC)),
        ("2023-03-27 17:07:12.662+03", datetime(2023, 3, 27, 14, 7, 12, 662000, tzinfo=UTC)),
        ("2023-03-27T17:07:12-0130", datetime(2023, 3, 27, 18, 37, 12, tzinfo=UTC)),
        ("2025-05-17 05:47:13", datetime(2025, 5, 17, 5, 47, 13, tzinfo=UTC)),
        ("2025-05-17", datetime(2025, 5, 17, tzinfo=UTC)),
        ("…Z", None),
        ("2023-13-01T00:00:00Z", None),
        ("yesterday", None),
        ("20231212", None),
        ("", None),
    ],
)
def test_parse_iso(text: str, expected: datetime | None) -> None:
    assert parse_iso(text) == expected


def test_parse_iso_rejects_non_strings() -> None:
    assert parse_iso(1675785959855) is None
    assert parse_iso(None) is None


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (1666613406969, "ms", datetime(2022, 10, 24, 12, 10, 6, 969000, tzinfo=UTC)),
        (1675785960, "s", datetime(2023, 2, 7, 16, 6, tzinfo=UTC)),
        (1675785960, "ms", None),
        (1666613406969, "s", None),
        (True, "s", None),
        ("1675785960", "s", None),
        (float("nan"), "s", None),
    ],
)
def test_from_epoch_checks_magnitude(value: object, unit: str, expected: datetime | None) -> None:
    assert from_epoch(value, unit) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (12345678901, "*******8901"),
        ("+44 7700 900123", "********0123"),
        ("1234", "****"),
        ("", None),
        (True, None),
        (None, None),
    ],
)
def test_mask_phone(value: object, expected: str | None) -> None:
    assert mask_phone(value) == expected


def test_normalise_code() -> None:
    assert normalise_code(48010) == "48010"
    assert normalise_code(" 0424 ") == "0424"
    assert normalise_code("") is None
    assert normalise_code(False) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        ("1.5", 1.5),
        ("Sat, 17 May 2025 05:51:00 GMT", 60.0),
        ("Sat, 17 May 2025 05:00:00 GMT", 0.0),
        ("-3", None),
        ("soon", None),
    ],
)
def test_retry_after(value: str, expected: float | None) -> None:
    assert retry_after_seconds({"Retry-After": value}, NOW) == expected


def test_retry_after_absent() -> None:
    assert retry_after_seconds({}, NOW) is None


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, None),
        (222, None),
        (400, ErrorClass.CLIENT_ERROR),
        (401, ErrorClass.AUTH_INVALID),
        (403, ErrorClass.FORBIDDEN),
        (404, ErrorClass.NOT_FOUND),
        (429, ErrorClass.RATE_LIMITED),
        (498, ErrorClass.CLIENT_ERROR),
        (500, ErrorClass.SERVER_ERROR),
        (503, ErrorClass.SERVER_ERROR),
        (302, ErrorClass.CLIENT_ERROR),
    ],
)
def test_classify_http_status(status: int, expected: ErrorClass | None) -> None:
    assert classify_http_status(status) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a/b?c", "a%2Fb%3Fc"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("a#b%c", "a%23b%25c"),
        ("abcd_1234", "abcd_1234"),
    ],
)
def test_path_segment(value: str, expected: str) -> None:
    assert path_segment(value) == expected


@pytest.mark.parametrize(
    "key", ["apiKey", "api_key", "x-api-key", "token", "accessToken", "Authorization", "secret"]
)
def test_secret_keys(key: str) -> None:
    assert is_secret_key(key)


def test_redact_json_drops_secrets_at_any_depth() -> None:
    body = {"a": {"apiKey": "K", "list": [{"token": "T", "keep": "ok apiKey=K2"}]}}
    assert redact_json(body, {}) == {"a": {"list": [{"keep": "ok apiKey=[redacted]"}]}}


def test_scrub_text() -> None:
    text = "GET /x?apiKey=abc123&id=1 Authorization: Bearer eyJhbGciOi.x.y"
    scrubbed = scrub(text)
    assert "abc123" not in scrubbed
    assert "eyJhbGciOi" not in scrubbed
    assert "id=1" in scrubbed


def test_redact_text_truncates_and_redacts_cut_values() -> None:
    text = '{"code":"4801' + "x" * 5000
    redacted = redact_text(text, ("code",))
    assert "4801" not in redacted
    assert len(redacted.encode()) <= MAX_TEXT_PAYLOAD_BYTES


def test_safe_message_is_short_single_line_and_masks_digits() -> None:
    message = safe_message("code 123456\nfor +447700900123 " + "y" * 400)
    assert message is not None
    assert "\n" not in message
    assert "123456" not in message
    assert "0123" not in message
    assert len(message) <= MAX_MESSAGE_CHARS
