"""Poison answers never escape an adapter, and nothing unstorable or secret is stored.

For each of the five adapters (`registry.ADAPTERS`), fed their documented bodies
(`tests/fixtures/<slug>/`) with every string position poisoned: lone surrogate escapes (valid
JSON, not encodable as UTF-8), NUL, 1 MB strings, huge and out-of-range numbers, deep nesting and
invalid UTF-8 bytes. `parse` never raises; every text field of the observation encodes as UTF-8
and holds no NUL; lone surrogates and NUL become U+FFFD and the body still parses as JSON; a
planted `apiKey=…`, `Bearer …`, `token: …` or JWT in a status, service, country, timestamp or
message field appears neither in the observation nor in the stored payload; and the scrubbing is
linear in its input (compared as time ratios within one run, never against a wall-clock limit).
Any exception inside decoding, redaction or observation building becomes a `parse_error`
observation naming the exception type. The log filter scrubs with the same function.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest

from pipeline.model import ErrorClass, Observation, OrderState, TrackedOrder
from pipeline.polling.redact import MAX_LOG_CHARS, RedactingFilter
from pipeline.providers import common
from pipeline.providers.common import (
    MAX_JSON_DEPTH,
    MAX_JSON_PAYLOAD_BYTES,
    MAX_MESSAGE_CHARS,
    MAX_RAW_TIMESTAMP_CHARS,
    MAX_STATUS_CHARS,
    MAX_TEXT_PAYLOAD_BYTES,
    BaseAdapter,
    ParseContext,
    Transform,
    sha256_hex,
)
from pipeline.providers.registry import ADAPTERS, default_kind
from pipeline.redaction import MAX_SCRUB_CHARS, Level, scrub

FIXTURES_DIR = Path(__file__).resolve().parent.parent / "fixtures"
POLLED_AT = datetime(2025, 5, 17, 5, 50, 0, tzinfo=UTC)
SLUGS = sorted(ADAPTERS)
ONE_MB = 1 << 20
LINEAR_RATIO = 8.0
"""Four times the input may take at most this many times as long (quadratic would be 16)."""

TEXT_BOUNDS = {
    "provider_status": MAX_STATUS_CHARS,
    "provider_substatus": MAX_STATUS_CHARS,
    "service": MAX_STATUS_CHARS,
    "country": MAX_STATUS_CHARS,
    "provider_timestamp_raw": MAX_RAW_TIMESTAMP_CHARS,
    "error_message": MAX_MESSAGE_CHARS,
}

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJQTEFOVEVEIn0.c2lnbmF0dXJlUExBTlRFRA"
PLANTS: list[tuple[str, str]] = [
    ("apiKey=SECRETKEY123", "SECRETKEY123"),
    ("Bearer abc.def.ghi", "abc.def.ghi"),
    ("Authorization: Bearer abc.def.ghi", "abc.def.ghi"),
    ("token: tok_PLANTED_7f3a9c2b", "tok_PLANTED_7f3a9c2b"),
    (f'"access_token":"{JWT}"', JWT),
    (JWT, JWT),
    ("see https://x.test/cb?apiKey=SECRETKEY123&x=1 now", "SECRETKEY123"),
]
"""(planted text, the secret that must vanish): kinds every stored text is scrubbed of."""
OPAQUE = "sk4PLANTED0opaque9token1x"
"""A bare token: scrubbed from provider-written observation fields (stored JSON bodies keep bare
long words outside free-text keys, as they are mostly ids)."""


def _planted_bodies(x: str) -> dict[str, list[tuple[int, Any]]]:
    """(HTTP status, body) per slug with `x` in every status, service, country, timestamp and
    message position the adapter reads."""
    return {
        "sms4sats": [
            (
                200,
                {"status": "OK", "paid": True, "smsStatus": x, "service": x, "country": x,
                 "timestamp": x},
            ),
            (200, {"status": "OK", "paid": True, "error": x, "service": x, "timestamp": x}),
            (200, {"status": x, "paid": False, "country": x}),
            (200, {"status": "error", "reason": x}),
            (500, {"reason": x}),
        ],
        "smsonline": [
            (
                200,
                {"ok": True, "body": [{"orderId": "1", "status": x, "service": x, "country": x,
                                       "orderedAt": x, "expiredAt": x, "lastCheckedAt": x}]},
            ),
            (200, {"ok": False, "errorMessage": x}),
            (401, {"ok": False, "errorMessage": x}),
        ],
        "ordinalsbot": [
            (
                200,
                {"status": "ok", "state": x, "orderType": x, "createdAt": x,
                 "charge": {"expires_at": x}, "files": [{"tx": {"updatedAt": x}}]},
            ),
            (200, {"status": "ok", "state": "error", "error": x}),
            (200, {"status": "error", "error": x}),
            (500, {"status": "error", "reason": x}),
        ],
        "baanx": [
            (200, {"status": x, "metadata": {"note": x}, "paidAt": x}),
            (200, {"status": "FAILED", "metadata": {"note": x}}),
            (200, {"error": x}),
            (404, {"error": x}),
        ],
        "altinn": [
            (
                200,
                {"processingStatus": {"status": x, "description": x, "lastUpdate": x},
                 "notificationChannel": x, "created": x, "requestedSendTime": x},
            ),
            (200, {"processingStatus": {"status": "Completed", "description": x}}),
            (404, {"title": x, "detail": x}),
        ],
    }  # fmt: skip


def _order(slug: str) -> TrackedOrder:
    return TrackedOrder(
        provider=slug,
        order_id="1",
        order_kind=default_kind(slug),
        registered_at=POLLED_AT - timedelta(seconds=60),
    )


def _parse(slug: str, body: bytes, http_status: int = 200) -> Observation:
    return ADAPTERS[slug].parse(http_status, {}, body, order=_order(slug), polled_at=POLLED_AT)


def _dump(value: Any) -> bytes:
    """JSON with `\\uXXXX` escapes, so lone surrogates travel as valid JSON."""
    return json.dumps(value, ensure_ascii=True).encode("ascii")


def _texts(obs: Observation) -> dict[str, str]:
    return {
        field.name: value
        for field in dataclasses.fields(obs)
        if isinstance(value := getattr(obs, field.name), str)
    }


def assert_sound(obs: Observation, slug: str) -> None:
    """A storable, bounded observation of the order polled."""
    assert isinstance(obs, Observation)
    assert (obs.provider, obs.order_id) == (slug, "1")
    for name, text in _texts(obs).items():
        text.encode("utf-8")  # raises on a lone surrogate
        assert "\x00" not in text, name
        if name in TEXT_BOUNDS:
            assert len(text) <= TEXT_BOUNDS[name], name
    if obs.payload_redacted is None:
        assert obs.payload_sha256 is None
    else:
        assert len(obs.payload_redacted.encode("utf-8")) <= MAX_JSON_PAYLOAD_BYTES
        assert obs.payload_sha256 == sha256_hex(obs.payload_redacted)


def _fixture_bodies(slug: str) -> list[tuple[str, Any]]:
    return [
        (path.name, json.loads(path.read_text()))
        for path in sorted((FIXTURES_DIR / slug).glob("*.json"))
    ]


Path_ = tuple[Any, ...]


def _positions(value: Any, path: Path_ = ()) -> Iterator[tuple[str, Path_]]:
    """("value", path) of every string and ("key", path) of every object key in `value`."""
    if isinstance(value, str):
        yield "value", path
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _positions(item, (*path, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield "key", (*path, key)
            yield from _positions(item, (*path, key))


def _poisoned(value: Any, kind: str, path: Path_, poison: Callable[[Any], Any]) -> Any:
    """A copy of `value` with the string (or key) at `path` passed through `poison`."""
    result = copy.deepcopy(value)
    parent = result
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if kind == "value":
        parent[last] = poison(parent[last])
    else:
        parent[poison(last)] = parent.pop(last)
    return result


def _poison_cases() -> list[tuple[str, str, str, Path_]]:
    return [
        (slug, name, kind, path)
        for slug in SLUGS
        for name, body in _fixture_bodies(slug)
        for kind, path in _positions(body)
    ]


POISON_CASES = _poison_cases()
POISON_IDS = [f"{slug}-{name}-{kind}-{'.'.join(map(str, path))}" for slug, name, kind, path in
              POISON_CASES]  # fmt: skip


# --- lone surrogates and NUL ----------------------------------------------------------------


@pytest.mark.parametrize(("slug", "name", "kind", "path"), POISON_CASES, ids=POISON_IDS)
def test_lone_surrogates_and_nul_in_every_string_position_are_made_storable(
    slug: str, name: str, kind: str, path: Path_
) -> None:
    body = dict(_fixture_bodies(slug))[name]
    poisoned = _poisoned(body, kind, path, lambda text: "\udc00" + text + "\x00\ud800")
    obs = _parse(slug, _dump(poisoned))
    assert_sound(obs, slug)
    assert obs.payload_redacted is not None
    json.loads(obs.payload_redacted)  # stored as JSON: the body parsed normally
    assert "invalid JSON" not in (obs.error_message or "")
    assert "not UTF-8" not in (obs.error_message or "")


@pytest.mark.parametrize("slug", SLUGS)
def test_nul_is_replaced_not_stored(slug: str) -> None:
    escaped = _parse(slug, _dump({"status": "a\x00b", "error": "x\x00y", "\x00": "z"}))
    raw = _parse(slug, b'{"status": "a\x00b"}')  # a raw control character is not JSON
    for obs in (escaped, raw):
        assert_sound(obs, slug)
        assert "\x00" not in (obs.payload_redacted or "")
    assert raw.error_class == ErrorClass.PARSE_ERROR


@pytest.mark.parametrize("slug", SLUGS)
@pytest.mark.parametrize(
    "body",
    [
        b'{"status": "\xff\xfe"}',
        b'{"status": "\xed\xa0\x80"}',  # a surrogate encoded as UTF-8: not UTF-8
        b"\x80" * 5000,
        b'{"processingStatus": {"status": "Compl\xc3"}}',
    ],
)
def test_invalid_utf8_is_a_parse_error_with_a_storable_payload(slug: str, body: bytes) -> None:
    obs = _parse(slug, body)
    assert_sound(obs, slug)
    assert obs.error_class == ErrorClass.PARSE_ERROR
    assert obs.payload_redacted is not None
    assert len(obs.payload_redacted.encode()) <= MAX_TEXT_PAYLOAD_BYTES


# --- planted secrets --------------------------------------------------------------------------


def _planted_cases() -> list[tuple[str, int, int, str, str]]:
    cases = []
    for plant, secret in [*PLANTS, (f"x {OPAQUE} y", OPAQUE)]:
        for text in (plant, f"status {plant} end", plant + " " + "y" * 400):
            for slug, bodies in _planted_bodies(text).items():
                for index, (http_status, _) in enumerate(bodies):
                    cases.append((slug, index, http_status, text, secret))
    return cases


@pytest.mark.parametrize(("slug", "index", "http_status", "text", "secret"), _planted_cases())
def test_planted_secrets_vanish_from_every_text_field_and_the_payload(
    slug: str, index: int, http_status: int, text: str, secret: str
) -> None:
    _, body = _planted_bodies(text)[slug][index]
    obs = _parse(slug, _dump(body), http_status)
    assert_sound(obs, slug)
    for name, value in _texts(obs).items():
        if name != "payload_redacted" or secret != OPAQUE:
            assert secret not in value, (name, value)


@pytest.mark.parametrize("slug", SLUGS)
def test_planted_secrets_vanish_from_non_json_bodies(slug: str) -> None:
    for plant, secret in [*PLANTS, (OPAQUE, OPAQUE)]:
        obs = _parse(slug, f"<html>{plant}</html>".encode(), 502)
        assert_sound(obs, slug)
        assert all(secret not in value for value in _texts(obs).values())


# --- huge numbers -----------------------------------------------------------------------------

HUGE: list[Any] = [10**30, -(10**30), -1, 2**31, 2**63, 1e308, -1e308, 5e-324, 10**4000]


def _numeric_cases() -> list[tuple[str, str, Path_]]:
    cases = []
    for slug in SLUGS:
        for name, body in _fixture_bodies(slug):
            for path in _number_positions(body):
                cases.append((slug, name, path))
    return cases


def _number_positions(value: Any, path: Path_ = ()) -> Iterator[Path_]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        yield path
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _number_positions(item, (*path, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _number_positions(item, (*path, key))


@pytest.mark.parametrize(("slug", "name", "path"), _numeric_cases())
def test_huge_numbers_in_every_numeric_position_never_raise(
    slug: str, name: str, path: Path_
) -> None:
    body = dict(_fixture_bodies(slug))[name]
    for number in HUGE:

        def replace(_: Any, number: Any = number) -> Any:
            return number

        obs = _parse(slug, _dump(_poisoned(body, "value", path, replace)))
        assert_sound(obs, slug)


def test_huge_counts_and_amounts_are_kept_for_validation() -> None:
    """Out-of-range counts are facts, not parse problems: the warehouse validation quarantines
    them, so the observation keeps them verbatim."""
    body = {"status": "ok", "state": "queued", "inscribedCount": 10**30, "amount": 1e308}
    obs = _parse("ordinalsbot", _dump(body))
    assert obs.error_class is None
    assert (obs.items_succeeded, obs.amount) == (10**30, 1e308)
    summary = {"email": {"generated": 10**30, "succeeded": -1}}
    body = {"processingStatus": {"status": "Processing"}, "notificationsStatusSummary": summary}
    obs = _parse("altinn", _dump(body))
    assert obs.error_class is None
    assert (obs.items_total, obs.items_succeeded) == (10**30, -1)


@pytest.mark.parametrize("slug", SLUGS)
@pytest.mark.parametrize("number", [b"1e400", b"-1e999", b"1" * 5000])
def test_numbers_beyond_double_or_digit_limits_are_parse_errors(slug: str, number: bytes) -> None:
    obs = _parse(slug, b'{"status": "OK", "amount": ' + number + b"}")
    assert_sound(obs, slug)
    assert obs.error_class == ErrorClass.PARSE_ERROR
    assert "Infinity" not in (obs.payload_redacted or "")


# --- deep nesting -----------------------------------------------------------------------------


@pytest.mark.parametrize("slug", SLUGS)
@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 500, 5_000, 100_000])
def test_deep_nesting_is_a_parse_error(slug: str, depth: int) -> None:
    for body in (
        b"[" * depth + b"]" * depth,
        b'{"status": ' + b"[" * depth + b"]" * depth + b"}",
        b'{"a": ' + b'{"a": ' * depth + b"1" + b"}" * (depth + 1),
    ):
        obs = _parse(slug, body)
        assert_sound(obs, slug)
        assert obs.error_class == ErrorClass.PARSE_ERROR


# --- long strings and linear scrubbing --------------------------------------------------------

LONG_CASES = [(slug, name, kind, path) for slug, name, kind, path in POISON_CASES
              if kind == "value"]  # fmt: skip


@pytest.mark.parametrize(
    ("slug", "name", "kind", "path"),
    LONG_CASES,
    ids=[f"{s}-{n}-{'.'.join(map(str, p))}" for s, n, _, p in LONG_CASES],
)
def test_a_1mb_string_in_every_string_position_is_bounded(
    slug: str, name: str, kind: str, path: Path_
) -> None:
    body = dict(_fixture_bodies(slug))[name]
    huge = "apiKey=SECRETKEY123 " + "a1" * (ONE_MB // 2)
    obs = _parse(slug, _dump(_poisoned(body, kind, path, lambda _: huge)))
    assert_sound(obs, slug)
    assert all("SECRETKEY123" not in value for value in _texts(obs).values())


def _best_time(action: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
    return best


def _ratio(make: Callable[[int], Callable[[], object]], small: int, large: int) -> float:
    """Time for `large` over time for `small`, best of three: a noisy neighbour can only slow a
    linear run down for a while, while a quadratic one is never below `LINEAR_RATIO`."""
    make(small)()  # warm up
    ratio = float("inf")
    for _ in range(3):
        ratio = min(ratio, _best_time(make(large)) / _best_time(make(small)))
        if ratio < LINEAR_RATIO:
            break
    return ratio


WORST_INPUTS = [
    "a",
    "a1",
    "token",
    "apikey=",
    "token   ",
    "bearer ",
    "eyJ",
    "orderid=",
    "1",
    " ",
    "x.",
]
"""Units repeated into long texts: each defeated one of the old patterns, or would defeat a
pattern with a leading or trailing unbounded repetition."""


@pytest.mark.parametrize("level", ["credentials", "tokens", "prose"])
@pytest.mark.parametrize("unit", WORST_INPUTS)
def test_scrubbing_is_linear_in_its_input(level: Level, unit: str) -> None:
    """Without the bound, the patterns alone: 200 kB take less than 8x the time of 50 kB."""

    def make(size: int) -> Callable[[], object]:
        text = unit * (size // len(unit))
        return lambda: scrub(text, level=level, max_chars=size)

    assert _ratio(make, 50_000, 200_000) < LINEAR_RATIO


def test_scrubbing_1mb_of_word_characters_is_bounded() -> None:
    text = "a" * ONE_MB
    scrubbed = scrub(text, level="prose")
    assert len(scrubbed) <= MAX_SCRUB_CHARS

    def make(size: int) -> Callable[[], object]:
        return lambda: scrub("a" * size, level="prose")

    assert _ratio(make, ONE_MB // 4, ONE_MB) < LINEAR_RATIO


@pytest.mark.parametrize("slug", SLUGS)
def test_parsing_a_long_string_field_is_linear(slug: str) -> None:
    adapter = ADAPTERS[slug]
    order = _order(slug)

    def make(size: int) -> Callable[[], object]:
        body = _dump({"status": "a" * size, "error": "b1" * (size // 2), "note": "c " * size})
        return lambda: adapter.parse(200, {}, body, order=order, polled_at=POLLED_AT)

    assert _ratio(make, 100_000, 400_000) < LINEAR_RATIO
    obs = make(ONE_MB)()
    assert isinstance(obs, Observation)
    assert_sound(obs, slug)


# --- nothing escapes --------------------------------------------------------------------------


def _explode(value: Any) -> Any:
    raise RuntimeError(f"boom {value}")


class _RaisingRedaction(BaseAdapter):
    slug = "sms4sats"
    redactions: ClassVar[dict[str, Transform]] = {"status": _explode}

    def _parse(self, ctx: ParseContext, body: dict[str, Any]) -> Observation:
        return ctx.observation(OrderState.PENDING)


class _RaisingMapping(BaseAdapter):
    slug = "sms4sats"

    def _parse(self, ctx: ParseContext, body: dict[str, Any]) -> Observation:
        return ctx.observation(OrderState.PENDING, no_such_field=body["status"])


def test_an_exception_in_redaction_becomes_a_parse_error() -> None:
    obs = _RaisingRedaction().parse(
        200, {}, b'{"status": "SECRETKEY123"}', order=_order("sms4sats"), polled_at=POLLED_AT
    )
    assert obs.error_class == ErrorClass.PARSE_ERROR
    assert obs.error_message == "answer could not be read (RuntimeError)"
    assert obs.payload_redacted is None
    assert all("SECRETKEY123" not in value for value in _texts(obs).values())


def test_an_exception_building_the_observation_becomes_a_parse_error() -> None:
    obs = _RaisingMapping().parse(
        200, {}, b'{"status": "SECRETKEY123"}', order=_order("sms4sats"), polled_at=POLLED_AT
    )
    assert obs.error_class == ErrorClass.PARSE_ERROR
    assert obs.error_message == "unexpected body shape (TypeError)"  # the body is not quoted


def test_an_exception_building_even_the_parse_error_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(self: ParseContext, message: str) -> Observation:
        raise MemoryError

    monkeypatch.setattr(common.ParseContext, "parse_error", broken)
    obs = _RaisingMapping().parse(
        200, {}, b'{"status": "x"}', order=_order("sms4sats"), polled_at=POLLED_AT
    )
    assert obs.error_class == ErrorClass.PARSE_ERROR
    assert obs.error_message == "answer could not be read (MemoryError)"


# --- the log filter ---------------------------------------------------------------------------


def _filtered(message: str, *args: object) -> str:
    record = logging.LogRecord("httpx", logging.INFO, __file__, 1, message, args, None)
    assert RedactingFilter().filter(record)
    return record.getMessage()


def test_the_log_filter_scrubs_with_the_shared_function() -> None:
    url = f"https://x.test/v3/numbers/u/order/1?apiKey=SECRETKEY123&orderId=7dc6e6b6c83318 {JWT}"
    logged = _filtered("HTTP Request: GET %s", url)
    assert logged == scrub(f"HTTP Request: GET {url}")
    for secret in ("SECRETKEY123", "7dc6e6b6c83318", JWT):
        assert secret not in logged
    assert len(_filtered("x" * ONE_MB)) <= MAX_LOG_CHARS
