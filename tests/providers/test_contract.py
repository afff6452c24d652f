"""The contract every provider adapter keeps, run once per provider in the registry (built-in
packages and declared providers alike), so each provider's own test file holds only its quirks.

For every adapter:

- HTTP 429 is `rate_limited` with `Retry-After` read as seconds or as an HTTP-date; 500/502/503/504
  are `server_error`; 401 and 403 are the configuration errors `auth_invalid` and `forbidden`; 404
  is `not_found`; other 4xx `client_error` (unless the adapter declares another class for that
  status in `http_errors`). A non-2xx is an error whatever its body says.
- A 200 whose body is HTML, empty, truncated JSON, JSON of the wrong top-level type, JSON whose
  status field has the wrong type, or not UTF-8 is a `parse_error` that quotes nothing of the body.
- Every poll error repeats the previous state, so it is terminal only when that one was.
- 1 MB strings stay within the stored bounds; lone surrogates are stored as U+FFFD.
- Every observation names the polled order, its kind, the HTTP status and the poll time in UTC.
- Requests keep credentials out of the URL and its log template and percent-encode ids in paths.
- Order ids that are empty, longer than 128 characters, or hold '/', whitespace or control
  characters are rejected.
- The polling policy is sane: positive cadences, a tracking window longer than the grace period.

The suite reads only what the registry exposes (spec, adapter). Its order bodies are the recorded
ones in `tests/fixtures/<slug>/*.json`, where a provider has them, and probe bodies that carry an
unknown status where the usual envelopes put it (so a new declared provider is covered at once).
"""

from __future__ import annotations

import dataclasses
import email.utils
import hashlib
import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import pytest

from pipeline.model import (
    CONFIG_ERRORS,
    OBSERVATION_FIELDS,
    ErrorClass,
    Observation,
    OrderState,
    TrackedOrder,
)
from pipeline.providers.base import ProviderSettings
from pipeline.providers.common import MAX_JSON_PAYLOAD_BYTES, MAX_TEXT_PAYLOAD_BYTES, BaseAdapter
from pipeline.providers.registry import PROVIDERS, default_kind, get_adapter, get_spec
from pipeline.secret import Secret
from pipeline.settings import Settings

FIXTURES_DIR = Path(__file__).resolve().parent.parent / "fixtures"
POLLED_AT = datetime(2025, 5, 17, 5, 50, 0, tzinfo=UTC)
OSLO = timezone(timedelta(hours=2))
POLL_TIMES = (POLLED_AT, POLLED_AT.astimezone(OSLO))
"""The same instant in UTC and at +02:00: observations must carry it in UTC either way."""

STATES = frozenset(state.value for state in OrderState)
OPEN_STATES = frozenset({OrderState.PENDING, OrderState.PROCESSING, OrderState.UNKNOWN})
ERROR_CLASSES = frozenset(error.value for error in ErrorClass)
PREVIOUS_STATES: tuple[str | None, ...] = (
    None,
    "pending",
    "processing",
    "code_received",
    "completed",
    "expired",
)
"""None (first poll), two open states and three terminal ones (two successes, a failure)."""

MAX_MESSAGE_CHARS = 300
MAX_STATUS_CHARS = 256
MAX_RAW_TIMESTAMP_CHARS = 64
MAX_ORDER_ID_CHARS = 128
TEXT_BOUNDS = {
    "error_message": MAX_MESSAGE_CHARS,
    "provider_status": MAX_STATUS_CHARS,
    "provider_substatus": MAX_STATUS_CHARS,
    "service": MAX_STATUS_CHARS,
    "country": MAX_STATUS_CHARS,
    "provider_timestamp_raw": MAX_RAW_TIMESTAMP_CHARS,
}
"""Provider-written observation fields and their bounds, in characters."""

ONE_MB = 1 << 20
MARKER = "QZX-MARKER-417"
"""Written into bodies that must not be quoted in any observation field but the stored payload."""

ID_CANDIDATES = (
    "f1a1cc30-197f-4f34-8304-006ce4945fd1",  # UUID4
    "20046875",  # 8 digits
    "7dc6e6b6c83318" + "0123456789abcdef" * 3 + "01",  # 64 hex
    "ord_3f9a0c1b2d4e",  # prefix + 12 hex
)
"""Plausible order ids; each provider's example id is the first its adapter accepts."""


# --- the registry's providers ----------------------------------------------------------------


def example_id(slug: str) -> str:
    """An order id `slug`'s adapter accepts."""
    adapter = get_adapter(slug)
    for candidate in ID_CANDIDATES:
        if adapter.validate_order_id(candidate) is None:
            return candidate
    raise AssertionError(f"{slug}: no example id validates; add one to ID_CANDIDATES")


def make_order(slug: str, kind: str | None = None) -> TrackedOrder:
    """An order of `slug` registered a minute before `POLLED_AT`."""
    return TrackedOrder(
        provider=slug,
        order_id=example_id(slug),
        order_kind=kind or default_kind(slug),
        registered_at=POLLED_AT - timedelta(seconds=60),
    )


def make_order_with(slug: str, order_id: str) -> TrackedOrder:
    """`make_order` with another id (valid or not: requests must be safe for any id)."""
    return dataclasses.replace(make_order(slug), order_id=order_id)


def expects_object(slug: str) -> bool:
    """Whether the adapter takes only a JSON object at the top level.

    The built-in adapters inherit that check from `BaseAdapter`; an adapter that overrides `parse`
    or `_map` may legitimately accept a top-level array (or a bare value), and is held to the
    weaker contract: a `parse_error`, or a valid state.
    """
    cls = type(get_adapter(slug))
    return (
        issubclass(cls, BaseAdapter)
        and cls.parse is BaseAdapter.parse
        and cls._map is BaseAdapter._map
    )


def dump(value: Any, *, escaped: bool = True) -> bytes:
    """JSON with `\\uXXXX` escapes, so lone surrogates travel as valid JSON (`escaped=False` keeps
    other characters as UTF-8)."""
    return json.dumps(value, ensure_ascii=escaped).encode("utf-8")


def http_date(moment: datetime) -> str:
    return email.utils.format_datetime(moment.astimezone(UTC), usegmt=True)


# --- recorded bodies -------------------------------------------------------------------------

Path_ = tuple[Any, ...]


@dataclasses.dataclass(frozen=True)
class Sample:
    """A recorded 200 body its adapter reads without error, and where its status is written."""

    slug: str
    name: str
    body: Any
    status_paths: tuple[Path_, ...]
    """Positions of the string the adapter reports as `provider_status` (may be empty)."""

    @property
    def id(self) -> str:
        return f"{self.slug}-{self.name}"


def _leaves(value: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """(path, value) of every scalar in a decoded body."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path, value


def _value_at(body: Any, path: Path_) -> Any:
    for step in path:
        body = body[step]
    return body


def _replaced(body: Any, paths: tuple[Path_, ...], new: Any) -> Any:
    """A copy of `body` with the value at each of `paths` replaced by `new`."""
    result = json.loads(json.dumps(body))
    for path in paths:
        parent = result
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = new
    return result


PROBE_STATUS = "probe-status-7f3a"
"""A status no provider knows, written where the usual envelopes put it (`_probe_bodies`)."""


def _probe_bodies(value: Any) -> list[Any]:
    """`value` where the usual envelopes put an order's status."""
    return [
        {"status": value},
        {"state": value},
        {"status": "OK", "state": value, "smsStatus": value},
        {"ok": True, "body": [{"status": value}]},
        {"processingStatus": {"status": value}},
        {"data": {"status": value}},
        {"data": {"state": value}},
        {"order": {"status": value}},
        {"result": {"status": value}},
    ]


def _sample(slug: str, name: str, body: Any) -> Sample | None:
    """`body` as a sample if the adapter reads it without error."""
    obs = get_adapter(slug).parse(200, {}, dump(body), order=make_order(slug), polled_at=POLLED_AT)
    if obs.error_class is not None:
        return None  # an error body, not an order
    status = obs.provider_status
    paths = tuple(leaf for leaf, value in _leaves(body) if status is not None and value == status)
    return Sample(slug, name, body, paths)


def _samples() -> list[Sample]:
    """Per provider: its recorded bodies (`tests/fixtures/<slug>/*.json`) that read as an order,
    and the probe bodies it reads the probe status from (so a provider without recordings, e.g.
    a new declared one, still has a body whose status position is known)."""
    found = []
    for slug in PROVIDERS:
        for path in sorted((FIXTURES_DIR / slug).glob("*.json")):
            found.append(_sample(slug, path.stem, json.loads(path.read_text())))
        for index, body in enumerate(_probe_bodies(PROBE_STATUS)):
            sample = _sample(slug, f"probe{index}", body)
            if sample is not None and sample.status_paths:
                found.append(sample)
    return [sample for sample in found if sample is not None]


SAMPLES = _samples()
STATUS_SAMPLES = [sample for sample in SAMPLES if sample.status_paths]


def samples_of(slug: str) -> list[Any]:
    return [sample.body for sample in SAMPLES if sample.slug == slug]


# --- what every observation promises ---------------------------------------------------------


def poll(
    slug: str,
    http_status: int,
    body: bytes,
    *,
    headers: dict[str, str] | None = None,
    previous: str | None = None,
    order: TrackedOrder | None = None,
    polled_at: datetime = POLLED_AT,
) -> Observation:
    """`parse` one answer and check what every observation promises."""
    order = order or make_order(slug)
    obs = get_adapter(slug).parse(
        http_status,
        headers or {},
        body,
        order=order,
        polled_at=polled_at,
        previous_state=previous,
    )
    assert_consistent(obs, order, http_status, polled_at, previous)
    return obs


def assert_consistent(
    obs: Observation,
    order: TrackedOrder,
    http_status: int,
    polled_at: datetime,
    previous: str | None,
) -> None:
    """The observation names the order and the poll, holds valid vocabulary, storable bounded
    text and aware times, and, if it is an error, repeats the previous state."""
    assert isinstance(obs, Observation)
    assert set(obs.as_row()) == set(OBSERVATION_FIELDS)
    assert (obs.provider, obs.order_id, obs.order_kind) == (
        order.provider,
        order.order_id,
        order.order_kind,
    )
    assert obs.polled_at == polled_at
    assert obs.polled_at.utcoffset() == timedelta(0)
    assert obs.http_status == http_status
    assert (obs.latency_ms, obs.attempt) == (None, 1), "the poller fills the attempt's context"
    assert obs.state in STATES
    assert isinstance(obs.is_terminal, bool)
    assert isinstance(obs.status_unrecognized, bool)
    if obs.state in OPEN_STATES:
        assert (obs.is_terminal, obs.is_success) == (False, None), obs.state
    if obs.error_class is not None:
        assert obs.error_class in ERROR_CLASSES
        assert obs.error_message, "a poll error says why"
        repeated = OrderState(previous) if previous in STATES else OrderState.UNKNOWN
        assert (obs.state, obs.is_terminal, obs.is_success) == (
            repeated.value,
            repeated.is_terminal,
            repeated.is_success,
        ), "a poll error repeats the previous state"
    for name, value in obs.as_row().items():
        if isinstance(value, str):
            value.encode("utf-8")  # raises on a lone surrogate
            assert "\x00" not in value, name
            if name in TEXT_BOUNDS:
                assert len(value) <= TEXT_BOUNDS[name], name
        elif isinstance(value, datetime):
            assert value.utcoffset() is not None, name
        elif isinstance(value, float):
            assert math.isfinite(value), name
    if obs.retry_after_s is not None:
        assert obs.retry_after_s >= 0
    if obs.payload_redacted is None:
        assert obs.payload_sha256 is None
    else:
        assert len(obs.payload_redacted.encode("utf-8")) <= MAX_JSON_PAYLOAD_BYTES
        expected = hashlib.sha256(obs.payload_redacted.encode("utf-8")).hexdigest()
        assert obs.payload_sha256 == expected


def http_class(slug: str, http_status: int, usual: ErrorClass) -> ErrorClass:
    """The error class `slug`'s adapter declares for `http_status` (e.g. 5SIM's per-IP limit
    answers 503 = `rate_limited`), else `usual`."""
    declared = getattr(get_adapter(slug), "http_errors", {}).get(http_status)
    return ErrorClass(declared) if declared is not None else usual


def assert_quotes_nothing(obs: Observation, *texts: str) -> None:
    """None of `texts` appears in any field but the stored (redacted, bounded) payload."""
    for name, value in obs.as_row().items():
        if name != "payload_redacted" and isinstance(value, str):
            for text in texts:
                assert text not in value, (name, value)


# --- HTTP errors -----------------------------------------------------------------------------

ERROR_BODIES: list[bytes] = [
    b"",
    b'{"error": "something went wrong"}',
    b"<html><head><title>Error</title></head><body>nginx</body></html>",
    b"\xff\xfe not utf-8",
]


TERMINAL_PREVIOUS = frozenset({"code_received", "completed", "expired"})


@pytest.mark.parametrize("slug", PROVIDERS)
@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        ("7", 7.0),
        ("120", 120.0),
        (" 3 ", 3.0),
        (http_date(POLLED_AT + timedelta(seconds=30)), 30.0),
        (http_date(POLLED_AT - timedelta(seconds=60)), 0.0),
        ("soon", None),
        ("-3", None),
    ],
)
def test_429_is_rate_limited_with_retry_after(
    slug: str, retry_after: str, expected: float | None
) -> None:
    for header_name in ("Retry-After", "retry-after"):
        for previous in PREVIOUS_STATES:
            for polled_at in POLL_TIMES:
                for body in (b"", b'{"error": "Too many requests"}'):
                    obs = poll(
                        slug,
                        429,
                        body,
                        headers={header_name: retry_after},
                        previous=previous,
                        polled_at=polled_at,
                    )
                    assert obs.error_class == http_class(slug, 429, ErrorClass.RATE_LIMITED)
                    assert obs.retry_after_s == expected
                    assert obs.is_terminal == (previous in TERMINAL_PREVIOUS)


@pytest.mark.parametrize("slug", PROVIDERS)
def test_429_without_retry_after(slug: str) -> None:
    obs = poll(slug, 429, b"", previous="processing")
    assert obs.error_class == http_class(slug, 429, ErrorClass.RATE_LIMITED)
    assert obs.retry_after_s is None
    assert "429" in (obs.error_message or "")
    assert (obs.payload_redacted, obs.payload_sha256) == (None, None), "an empty body stores none"


@pytest.mark.parametrize("slug", PROVIDERS)
@pytest.mark.parametrize("http_status", [500, 502, 503, 504])
def test_5xx_is_a_server_error(slug: str, http_status: int) -> None:
    for body in ERROR_BODIES + [dump(sample) for sample in samples_of(slug)]:
        for previous in (*PREVIOUS_STATES, "no-such-state"):
            obs = poll(slug, http_status, body, previous=previous)
            assert obs.error_class == http_class(slug, http_status, ErrorClass.SERVER_ERROR)
            assert str(http_status) in (obs.error_message or "")
            assert obs.retry_after_s is None
    unavailable = poll(slug, http_status, b"", headers={"Retry-After": "30"})
    assert unavailable.retry_after_s == 30.0


@pytest.mark.parametrize("slug", PROVIDERS)
@pytest.mark.parametrize(
    ("http_status", "error_class"),
    [
        (401, ErrorClass.AUTH_INVALID),
        (403, ErrorClass.FORBIDDEN),
        (404, ErrorClass.NOT_FOUND),
        (400, ErrorClass.CLIENT_ERROR),
        (422, ErrorClass.CLIENT_ERROR),
    ],
)
def test_4xx_classes(slug: str, http_status: int, error_class: ErrorClass) -> None:
    """Auth failures are configuration errors (never retried in a storm); a non-2xx is an error
    even when its body reads like a valid order."""
    expected = http_class(slug, http_status, error_class)
    for body in ERROR_BODIES + [dump(sample) for sample in samples_of(slug)]:
        for previous in PREVIOUS_STATES:
            obs = poll(slug, http_status, body, previous=previous)
            assert obs.error_class == expected
            assert str(http_status) in (obs.error_message or "")
            assert (expected in CONFIG_ERRORS) == (http_status in (401, 403))
            assert obs.retry_after_s is None
    waiting = poll(slug, http_status, b"", headers={"Retry-After": "5"})
    assert waiting.retry_after_s == 5.0


@pytest.mark.parametrize("slug", PROVIDERS)
@pytest.mark.parametrize("key", ["errorMessage", "error", "reason", "message", "title", "detail"])
@pytest.mark.parametrize("http_status", [401, 404, 500])
def test_error_bodies_give_their_reason(slug: str, key: str, http_status: int) -> None:
    """The usual reason keys of JSON error bodies (ProblemDetails' `title` and `detail`
    included) reach the message, after the status."""
    obs = poll(slug, http_status, dump({key: "upstream maintenance window"}))
    assert obs.error_message == f"HTTP {http_status}: upstream maintenance window"


# --- bodies a 200 may come with --------------------------------------------------------------

HTML_BODIES: list[bytes] = [
    f"<html><head><title>502 {MARKER}</title></head><body>{MARKER}</body></html>".encode(),
    (
        f"<!DOCTYPE html>\n<html><body><h1>Maintenance</h1><p>{MARKER}</p>"
        f"{'x' * 9000}</body></html>"
    ).encode(),
    f"OK {MARKER}".encode(),
    f"{{{MARKER}}}".encode(),
]


@pytest.mark.parametrize("slug", PROVIDERS)
@pytest.mark.parametrize("body", HTML_BODIES, ids=["html", "long-html", "text", "braces"])
def test_html_200_is_a_parse_error_quoting_nothing(slug: str, body: bytes) -> None:
    for previous in PREVIOUS_STATES:
        obs = poll(slug, 200, body, previous=previous)
        assert obs.error_class == ErrorClass.PARSE_ERROR
        assert_quotes_nothing(obs, MARKER, "Maintenance", "<html")
        assert obs.payload_redacted is not None
        assert len(obs.payload_redacted.encode("utf-8")) <= MAX_TEXT_PAYLOAD_BYTES


@pytest.mark.parametrize("slug", PROVIDERS)
@pytest.mark.parametrize("body", [b"", b" ", b"\r\n\t "])
def test_empty_200_is_a_parse_error(slug: str, body: bytes) -> None:
    for previous in PREVIOUS_STATES:
        obs = poll(slug, 200, body, previous=previous)
        assert obs.error_class == ErrorClass.PARSE_ERROR
        assert obs.payload_redacted is None


TRUNCATED_BODIES: list[bytes] = [
    b"{",
    b'{"status"',
    f'{{"status": "{MARKER}'.encode(),
    f'{{"status": "OK", "paid": true, "smsStatus": "{MARKER}", "code": 480'.encode(),
    f'{{"ok": true, "body": [{{"status": "{MARKER}'.encode(),
    f'[{{"status": "{MARKER}"}}'.encode(),
]


@pytest.mark.parametrize("slug", PROVIDERS)
def test_truncated_json_is_a_parse_error(slug: str) -> None:
    for body in TRUNCATED_BODIES:
        for previous in PREVIOUS_STATES:
            obs = poll(slug, 200, body, previous=previous)
            assert obs.error_class == ErrorClass.PARSE_ERROR
            assert_quotes_nothing(obs, MARKER)


def _is_text_or_integer(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


@pytest.mark.parametrize("sample", SAMPLES, ids=[sample.id for sample in SAMPLES])
def test_truncated_recorded_bodies_are_parse_errors_and_stay_redacted(sample: Sample) -> None:
    """A recorded body cut anywhere is a parse error, and whatever the complete body's stored
    payload hides (codes, phone numbers, addresses) the cut one hides too."""
    text = json.dumps(sample.body, indent=2)
    full = poll(sample.slug, 200, text.encode())
    assert full.payload_redacted is not None
    written = {str(value) for _, value in _leaves(sample.body) if _is_text_or_integer(value)}
    hidden = {shown for shown in written if len(shown) >= 5 and shown not in full.payload_redacted}
    cuts = {1, len(text) // 3, len(text) // 2, len(text) - 1}
    for value in hidden:  # just after a hidden value, and inside it
        end = text.index(value) + len(value)
        cuts |= {end, end + 1, end - 1}
    for cut in sorted(cuts):
        obs = poll(sample.slug, 200, text[:cut].encode(), previous="processing")
        assert obs.error_class == ErrorClass.PARSE_ERROR
        stored = obs.payload_redacted or ""
        assert not {value for value in hidden if value in stored}, cut
        assert not {value[:-1] for value in hidden if value[:-1] in stored}, cut


WRONG_TOP_LEVEL: list[bytes] = [
    b"[]",
    b"[{}]",
    b'[{"status": "completed", "state": "completed"}]',
    b"42",
    b"-1.5",
    b'"completed"',
    b"null",
    b"true",
    b"false",
]


@pytest.mark.parametrize("slug", PROVIDERS)
@pytest.mark.parametrize("body", WRONG_TOP_LEVEL)
def test_json_of_the_wrong_top_level_type(slug: str, body: bytes) -> None:
    for previous in PREVIOUS_STATES:
        obs = poll(slug, 200, body, previous=previous)
        if expects_object(slug):
            assert obs.error_class == ErrorClass.PARSE_ERROR
        else:  # may accept an array: a parse error or a valid state, never a crash
            assert obs.error_class in (None, ErrorClass.PARSE_ERROR, ErrorClass.NOT_FOUND)


WRONG_TYPES: list[Any] = [7, 7.5, True, False, {"x": 1}, []]


@pytest.mark.parametrize("sample", STATUS_SAMPLES, ids=[sample.id for sample in STATUS_SAMPLES])
@pytest.mark.parametrize("wrong", WRONG_TYPES, ids=lambda value: json.dumps(value))
def test_a_status_of_the_wrong_type_is_a_parse_error(sample: Sample, wrong: Any) -> None:
    """The status field as a number, a boolean, an object or an array is not a status."""
    for previous in PREVIOUS_STATES:
        body = dump(_replaced(sample.body, sample.status_paths, wrong))
        obs = poll(sample.slug, 200, body, previous=previous)
        assert obs.error_class == ErrorClass.PARSE_ERROR
    status = _value_at(sample.body, sample.status_paths[0])
    as_list = dump(_replaced(sample.body, sample.status_paths, [status]))
    assert poll(sample.slug, 200, as_list).error_class == ErrorClass.PARSE_ERROR


@pytest.mark.parametrize("slug", PROVIDERS)
def test_wrong_types_anywhere_never_escape(slug: str) -> None:
    """Every scalar of every recorded body (and the usual status positions) swapped for another
    type: `parse` returns a consistent observation, an error repeating the previous state."""
    bodies = [body for value in [*WRONG_TYPES, None] for body in _probe_bodies(value)]
    for sample in samples_of(slug):
        for path, _ in _leaves(sample):
            if path:
                bodies.extend(_replaced(sample, (path,), wrong) for wrong in WRONG_TYPES)
    for body in bodies:
        poll(slug, 200, dump(body), previous="processing")


@pytest.mark.parametrize("sample", SAMPLES, ids=[sample.id for sample in SAMPLES])
def test_nesting_within_the_bound_reads_normally(sample: Sample) -> None:
    """An unknown field nested 60 levels deep changes nothing (deeper bodies are refused, see
    `test_provider_poison`); the stored payload keeps it."""
    nested: Any = "deep"
    for _ in range(60):
        nested = [nested]
    clean = poll(sample.slug, 200, dump(sample.body))
    obs = poll(sample.slug, 200, dump({**sample.body, "extra_nested": nested}))
    assert (obs.state, obs.error_class, obs.provider_status) == (
        clean.state,
        clean.error_class,
        clean.provider_status,
    )
    assert obs.payload_redacted is not None and "deep" in obs.payload_redacted


# --- huge and unstorable text ----------------------------------------------------------------

HUGE_TEXTS = {
    "word": "a1" * (ONE_MB // 2),
    "prose": "status changed " * (ONE_MB // 15),
    "multibyte": "é" * (ONE_MB // 2),
}
TEXT_KEYS = (
    "status",
    "state",
    "smsStatus",
    "error",
    "errorMessage",
    "message",
    "reason",
    "title",
    "detail",
    "description",
    "note",
    "service",
    "country",
)


@pytest.mark.parametrize("slug", PROVIDERS)
@pytest.mark.parametrize("kind", sorted(HUGE_TEXTS))
def test_1mb_strings_stay_bounded(slug: str, kind: str) -> None:
    """`assert_consistent` checks each stored text field against its bound."""
    huge = HUGE_TEXTS[kind]
    flat = {key: huge for key in TEXT_KEYS}
    bodies = [
        flat,
        {"ok": False, "errorMessage": huge},
        {"ok": True, "body": [flat]},
        {"processingStatus": {"status": huge, "description": huge}},
    ]
    bodies.extend(
        _replaced(sample.body, sample.status_paths, huge)
        for sample in STATUS_SAMPLES
        if sample.slug == slug
    )
    for body in bodies:
        for http_status in (200, 404, 500):
            poll(slug, http_status, dump(body, escaped=False), previous="processing")
    for http_status in (200, 502):
        obs = poll(slug, http_status, f"<html>{huge}</html>".encode())
        assert obs.payload_redacted is not None
        assert len(obs.payload_redacted.encode("utf-8")) <= MAX_TEXT_PAYLOAD_BYTES


@pytest.mark.parametrize("slug", PROVIDERS)
def test_lone_surrogate_escapes_are_read_as_json_and_stored_safely(slug: str) -> None:
    """Valid JSON, not encodable as UTF-8: decoded, then made storable (`assert_consistent`)."""
    for lone in ("\ud800", "\udc00", "\udc00\ud800", "a\ud83d"):
        for body in [{key: lone for key in TEXT_KEYS}, *_probe_bodies(lone)]:
            for http_status in (200, 500):
                obs = poll(slug, http_status, dump(body), previous="pending")
                assert "not UTF-8" not in (obs.error_message or "")
                assert "invalid JSON" not in (obs.error_message or "")


@pytest.mark.parametrize("sample", STATUS_SAMPLES, ids=[sample.id for sample in STATUS_SAMPLES])
def test_a_lone_surrogate_in_the_status_is_kept_as_a_replacement_character(
    sample: Sample,
) -> None:
    status = "\udc00" + "status" + "\ud800"
    obs = poll(sample.slug, 200, dump(_replaced(sample.body, sample.status_paths, status)))
    assert obs.error_class is None
    assert obs.provider_status == "\ufffdstatus\ufffd"


INVALID_UTF8: list[bytes] = [
    b'{"status": "\xff"}',
    b'{"status": "\xed\xa0\x80"}',  # a surrogate encoded as UTF-8
    b'{"status": "\xc0\xaf"}',  # an overlong '/'
    b'{"status": "\xe2\x82"}',  # a character cut short
    b'{"status": "caf\xe9"}',  # Latin-1
    b"\x80" * 5000,
]


@pytest.mark.parametrize("slug", PROVIDERS)
@pytest.mark.parametrize("body", INVALID_UTF8)
def test_invalid_utf8_is_a_parse_error(slug: str, body: bytes) -> None:
    for previous in PREVIOUS_STATES:
        obs = poll(slug, 200, body, previous=previous)
        assert obs.error_class == ErrorClass.PARSE_ERROR
        assert obs.payload_redacted is not None
        assert len(obs.payload_redacted.encode("utf-8")) <= MAX_TEXT_PAYLOAD_BYTES
    assert poll(slug, 503, body).error_class == http_class(slug, 503, ErrorClass.SERVER_ERROR)


# --- every observation, every kind -----------------------------------------------------------


def _answers(slug: str) -> list[tuple[int, dict[str, str], bytes]]:
    """A spread of answers: the recorded bodies, errors, garbage."""
    answers: list[tuple[int, dict[str, str], bytes]] = [
        (200, {}, dump(sample)) for sample in samples_of(slug)
    ]
    answers += [(status, {"Retry-After": "5"}, b"") for status in (401, 404, 429, 503)]
    answers += [(200, {}, body) for body in (b"", b"<html></html>", b"[]", b"{}", b"{")]
    answers += [(200, {}, dump(body)) for body in _probe_bodies("completed")]
    return answers


@pytest.mark.parametrize("slug", PROVIDERS)
def test_every_observation_names_its_order_and_poll(slug: str) -> None:
    """For every order kind, poll time zone and previous state: the observation names the order,
    its kind and the poll time in UTC (`assert_consistent`), and `parse` is pure."""
    for kind in get_spec(slug).order_kinds:
        order = make_order(slug, kind)
        for http_status, headers, body in _answers(slug):
            for polled_at in POLL_TIMES:
                for previous in PREVIOUS_STATES:
                    obs = poll(
                        slug,
                        http_status,
                        body,
                        headers=headers,
                        previous=previous,
                        order=order,
                        polled_at=polled_at,
                    )
                    again = get_adapter(slug).parse(
                        http_status,
                        headers,
                        body,
                        order=order,
                        polled_at=polled_at,
                        previous_state=previous,
                    )
                    assert again == obs


@pytest.mark.parametrize("slug", PROVIDERS)
def test_every_provider_has_a_body_with_a_known_status_position(slug: str) -> None:
    """The body-based checks need, per provider, an order body whose status position is known:
    a recording in `tests/fixtures/<slug>/`, or one of `_probe_bodies`."""
    assert any(sample.slug == slug for sample in STATUS_SAMPLES), (
        f"{slug}: add a recorded order body to tests/fixtures/{slug}/, or its envelope to "
        "_probe_bodies"
    )


# --- requests --------------------------------------------------------------------------------

TRICKY_IDS = ["a/b?c", "..", ".", "x#y", "100%", "a b", "../../admin", "%2F", "é/ü", "a\\b", "a;b"]


PATH_CREDENTIALS: dict[str, dict[str, str]] = {
    # SMSOnline names the account in the path, `/v3/numbers/{userId}/order/{orderId}` (PROVIDERS.md
    # §2): its `user_id` credential cannot stay out of the URL. It stays out of `log_url`.
    "smsonline": {"user_id": "the API takes the user id as a path segment"},
}
"""slug → {credential name: why the provider's API needs it in the URL path}."""


def _planted_settings(slug: str) -> ProviderSettings:
    secrets = {c.name: Secret(f"PLANTED-{c.name.upper()}-8f3e") for c in get_spec(slug).credentials}
    return ProviderSettings(
        slug=slug, base_url="https://api.example.test/base", secrets=secrets, is_sandbox=False
    )


@pytest.mark.parametrize("slug", PROVIDERS)
def test_credentials_never_enter_the_url_or_log_url(slug: str) -> None:
    spec = get_spec(slug)
    sandbox = Settings.from_env({}).provider(slug)
    for credential in spec.credentials:
        secret = sandbox.secret(credential.name)
        assert secret is not None and secret.reveal() == credential.sandbox_value
    in_path = PATH_CREDENTIALS.get(slug, {})
    for settings in (sandbox, _planted_settings(slug)):
        for order_id in (example_id(slug), *TRICKY_IDS):
            request = get_adapter(slug).build_request(make_order_with(slug, order_id), settings)
            url = urlsplit(request.url)
            assert request.url.startswith(settings.base_url + "/")
            assert "@" not in url.netloc
            for credential in spec.credentials:
                secret = settings.secret(credential.name)
                assert secret is not None
                assert secret.reveal() not in request.log_url, credential.name
                if credential.name in in_path:
                    segments = url.path.split("/")
                    assert request.url.count(secret.reveal()) == 1, credential.name
                    assert secret.reveal() in segments, credential.name
                else:
                    assert secret.reveal() not in request.url, credential.name


@pytest.mark.parametrize("slug", PROVIDERS)
def test_log_url_is_a_template_without_the_id(slug: str) -> None:
    order_id = example_id(slug)
    request = get_adapter(slug).build_request(
        make_order(slug), Settings.from_env({}).provider(slug)
    )
    assert request.log_url.startswith("/")
    assert order_id not in request.log_url
    assert request.method.isupper()


@pytest.mark.parametrize("slug", PROVIDERS)
def test_missing_credentials_do_not_stop_the_request(slug: str) -> None:
    """Left out, not raised: the provider's 401 then becomes an `auth_invalid` observation."""
    settings = ProviderSettings(
        slug=slug, base_url="https://api.example.test", secrets={}, is_sandbox=False
    )
    request = get_adapter(slug).build_request(make_order(slug), settings)
    assert request.url.startswith("https://api.example.test/")


@pytest.mark.parametrize("slug", PROVIDERS)
@pytest.mark.parametrize("order_id", TRICKY_IDS)
def test_ids_are_percent_encoded_in_paths(slug: str, order_id: str) -> None:
    """An id travels whole, as a query parameter or as one percent-encoded path segment that
    cannot add, remove or leave its place in the path."""
    settings = Settings.from_env({}).provider(slug)
    spec = get_adapter(slug).build_request(make_order_with(slug, order_id), settings)
    assert "?" not in spec.url and "#" not in spec.url
    request = httpx.Request(spec.method, spec.url, params=spec.params, headers=spec.headers)
    base_path = urlsplit(settings.base_url).path
    path = request.url.raw_path.decode("ascii").split("?")[0]
    assert path.startswith(base_path + "/")
    segments = path[len(base_path) + 1 :].split("/")
    assert len(segments) == spec.log_url.count("/")
    assert not {".", ".."} & set(segments), "clients drop dot segments while normalising"
    in_query = order_id in [value for _, value in request.url.params.multi_items()]
    assert in_query or order_id in [unquote(segment) for segment in segments]


# --- order ids -------------------------------------------------------------------------------

WHITESPACE = [" ", "\t", "\n", "\r", "\x0b", "\x0c", "\u00a0", "\u2028", "\u3000"]
CONTROLS = ["\x00", "\x01", "\x1b", "\x1f", "\x7f", "\x80", "\x85", "\x9b", "\x9f"]
"""C0, DEL and C1 control characters (Unicode category Cc)."""

ALLOWED_ID_CHARS: dict[str, dict[str, str]] = {}
"""slug → {character: why the provider's ids may legitimately hold it}: skipped for that
provider only. None so far."""

KNOWN_ID_BUGS: dict[str, frozenset[str]] = {}
"""Characters an adapter wrongly accepts today (reported, not yet fixed): strict xfail."""


def _id_char_cases() -> list[Any]:
    cases = []
    for slug in PROVIDERS:
        for char in ["/", *WHITESPACE, *CONTROLS]:
            if char in ALLOWED_ID_CHARS.get(slug, {}):
                continue
            marks = []
            if char in KNOWN_ID_BUGS.get(slug, frozenset()):
                reason = f"{slug} accepts {char!r} in order ids"
                marks.append(pytest.mark.xfail(strict=True, reason=reason))
            cases.append(pytest.param(slug, char, marks=marks, id=f"{slug}-U+{ord(char):04X}"))
    return cases


@pytest.mark.parametrize("slug", PROVIDERS)
def test_the_example_id_is_valid(slug: str) -> None:
    assert get_adapter(slug).validate_order_id(example_id(slug)) is None


@pytest.mark.parametrize("slug", PROVIDERS)
def test_empty_and_too_long_ids_are_rejected(slug: str) -> None:
    adapter = get_adapter(slug)
    valid = example_id(slug)
    too_long = (valid * (MAX_ORDER_ID_CHARS // len(valid) + 2))[: MAX_ORDER_ID_CHARS + 1]
    for order_id in ("", too_long, "1" * (MAX_ORDER_ID_CHARS + 1), "a" * 1000):
        reason = adapter.validate_order_id(order_id)
        assert isinstance(reason, str) and reason, order_id


@pytest.mark.parametrize(("slug", "char"), _id_char_cases())
def test_ids_with_slashes_whitespace_or_controls_are_rejected(slug: str, char: str) -> None:
    adapter = get_adapter(slug)
    valid = example_id(slug)
    middle = len(valid) // 2
    for order_id in (char + valid, valid[:middle] + char + valid[middle:], valid + char):
        assert adapter.validate_order_id(order_id) is not None, repr(order_id)


# --- policy and registration -----------------------------------------------------------------


@pytest.mark.parametrize("slug", PROVIDERS)
def test_policy_is_sane(slug: str) -> None:
    adapter, spec = get_adapter(slug), get_spec(slug)
    policy = adapter.policy
    assert adapter.slug == spec.slug == slug
    assert policy == spec.policy
    assert spec.problems() == []
    assert default_kind(slug) == spec.order_kinds[0]
    assert policy.default_cadence_s > 0
    for state, cadence in policy.cadence_s.items():
        assert state in STATES, state
        assert 0 < cadence < policy.max_tracking_age_s, state
    assert policy.terminal_grace_s > 0
    assert policy.max_tracking_age_s > policy.terminal_grace_s
    assert policy.max_tracking_age_s > policy.default_cadence_s
    assert policy.rate_limit_per_minute is None or policy.rate_limit_per_minute > 0
    assert 0 < policy.budget_share <= 1
    assert policy.max_concurrency >= 1
    assert 0 < spec.resolution_window_s <= policy.max_tracking_age_s, "stuck before untracked"
