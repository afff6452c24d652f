"""Hypothesis strategies for hostile provider answers and the orders they answer.

An *answer* is what the poller hands an adapter: an HTTP status, headers and the body bytes.
Bodies come in three families, so both the shared decoding and each adapter's field mapping see
malformed input:

- arbitrary bytes, plus literal oddities (NaN/Infinity, very deep nesting, a number longer than
  Python's 4,300-digit limit);
- arbitrary JSON: lone surrogates (as `\\ud800` escapes and as raw surrogate bytes), integers past
  32 and 64 bits, 1e308, NaN, nested arrays and objects keyed by the fields adapters read;
- mutations of the documented bodies in `tests/fixtures/<slug>/`: values given hostile values of
  their own type (numbers past INTEGER, text with surrogates), a field's value replaced by any
  JSON value, a field dropped, renamed or added, a value wrapped in an array or an object, a
  value turned into a string.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from pipeline.model import STATE_VALUES, TrackedOrder
from pipeline.providers.altinn import adapter as altinn
from pipeline.providers.baanx import adapter as baanx
from pipeline.providers.ordinalsbot import adapter as ordinalsbot
from pipeline.providers.registry import ADAPTERS, get_spec
from pipeline.providers.sms4sats import adapter as sms4sats
from pipeline.providers.smsonline import adapter as smsonline

FIXTURES_DIR = Path(__file__).resolve().parent.parent / "fixtures"
SLUGS: tuple[str, ...] = tuple(ADAPTERS)

OK_STATUSES = (200, 201, 204)
ODD_STATUSES = (0, 1, 99, 600, 799, 999)
"""Statuses outside 100..599 that an HTTP/1.1 status line (three digits) can still carry."""

RETRY_AFTER_GARBAGE = (
    "",
    " ",
    "0",
    "120",
    "-1",
    "1e309",
    "NaN",
    "inf",
    "-inf",
    "1_000",
    "0x10",
    "١٢٠",
    "99999999999999999999999999",
    "Wed, 21 Oct 2015 07:28:00 GMT",
    "Fri, 31 Dec 9999 23:59:59 GMT",
    "Mon, 01 Jan 0001 00:00:00 +0100",
    "Sun, 00 Foo 0000 99:99:99 XYZ",
    "\x00",
)
"""`Retry-After` values: delta-seconds, HTTP-dates at the calendar's edges, and junk."""

HUGE_INTS = (
    2**31 - 1,
    2**31,
    -(2**31) - 1,
    2**53 + 1,
    2**63 - 1,
    2**63,
    2**64,
    10**40,
    -(10**40),
)
SPECIAL_FLOATS = (1e308, -1e308, 5e-324, 1e15, 2.0**31, 2.0**63, 1e40, -0.0, float("nan"))
SURROGATE_TEXTS = ("\ud800", "\udfff", "a\udc80b", "\ud83d", "\ude00x", "48010\ud800")
"""Lone surrogates: valid inside a Python str and as JSON `\\uXXXX` escapes, not UTF-8."""

FIELD_NAMES = (
    "amount",
    "body",
    "charge",
    "code",
    "country",
    "created",
    "createdAt",
    "created_at",
    "data",
    "delegates",
    "description",
    "error",
    "errorMessage",
    "expired",
    "expiredAt",
    "expires_at",
    "files",
    "generated",
    "id",
    "inscribedCount",
    "inscription",
    "lastCheckedAt",
    "lastUpdate",
    "lightning_invoice",
    "message",
    "metadata",
    "note",
    "notificationChannel",
    "notificationsStatusSummary",
    "number",
    "ok",
    "orderId",
    "orderType",
    "orderedAt",
    "paid",
    "paidAt",
    "phoneNumber",
    "processingStatus",
    "purchasePrice",
    "reason",
    "receivedSMS",
    "requestedSendTime",
    "sent",
    "service",
    "sms",
    "smsStatus",
    "state",
    "status",
    "succeeded",
    "timestamp",
    "title",
    "tx",
    "updatedAt",
)
"""Keys the adapters read: generated keys hit real fields often, not only by chance."""

STATUS_WORDS: tuple[str, ...] = tuple(
    sorted(
        {
            word
            for module in (sms4sats, smsonline, ordinalsbot, baanx, altinn)
            for word in module.STATUS_MAP
        }
        | {"OK", "ok", "error", "Error", "Completed", "final status", "successfully generated"}
    )
)
"""Every provider's status vocabulary, so mutated bodies reach each mapped state."""

TIMESTAMP_TEXTS = (
    "2025-05-17 05:47:13",
    "2023-03-27 17:07:12.662+03",
    "2024-01-17T22:34:40.766Z",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "2025-02-30T00:00:00Z",
    "2025-05-17T05:47:13.1234567890123Z",
)

ORDER_IDS: dict[str, st.SearchStrategy[str]] = {
    "sms4sats": st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True),
    "smsonline": st.from_regex(r"[0-9]{1,20}", fullmatch=True),
    "ordinalsbot": st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True),
    "baanx": st.text(
        alphabet=st.characters(exclude_categories=("Cs", "Cc", "Z"), exclude_characters="/\\"),
        min_size=1,
        max_size=64,
    ),
    "altinn": st.uuids().map(str),
}
"""Order ids each provider's intake accepts (the adapter's own check filters what slips by)."""


def order_ids(slug: str) -> st.SearchStrategy[str]:
    """`ORDER_IDS[slug]`, or ids drawn from the spec's `id_pattern` (a declared provider)."""
    if slug in ORDER_IDS:
        return ORDER_IDS[slug]
    pattern = get_spec(slug).id_pattern
    if pattern is None:
        return st.text(min_size=1, max_size=64)
    return st.from_regex(pattern, fullmatch=True).filter(lambda i: 0 < len(i) <= 128)


def _load_fixtures() -> dict[str, dict[str, Any]]:
    documented: dict[str, dict[str, Any]] = {}
    for slug in SLUGS:
        documented[slug] = {
            path.name: json.loads(path.read_text(encoding="utf-8"))
            for path in sorted((FIXTURES_DIR / slug).glob("*.json"))
        }
    return documented


FIXTURES = _load_fixtures()
"""The documented bodies of `tests/fixtures/<slug>/*.json`, decoded, by slug and file name."""


# --- HTTP status and headers ------------------------------------------------------------------

http_statuses = st.one_of(
    st.just(200), st.sampled_from(OK_STATUSES), st.integers(100, 599), st.sampled_from(ODD_STATUSES)
)
"""About half 2xx, so most bodies reach the adapter's own mapping."""

_header_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40)
_retry_after = st.one_of(st.sampled_from(RETRY_AFTER_GARBAGE), _header_text)


@st.composite
def headers(draw: st.DrawFn) -> dict[str, str]:
    """Response headers (as httpx decodes them: any text but surrogates), often a Retry-After."""
    names = st.one_of(st.sampled_from(["Content-Type", "X-RateLimit-Reset"]), _header_text)
    result = draw(st.dictionaries(names, _header_text, max_size=3))
    if draw(st.booleans()):
        name = draw(st.sampled_from(["Retry-After", "retry-after", "RETRY-AFTER"]))
        result[name] = draw(_retry_after)
    return result


# --- JSON values and their encodings ----------------------------------------------------------

json_texts = st.one_of(
    st.text(alphabet=st.characters(codec=None), max_size=30),
    st.sampled_from(SURROGATE_TEXTS),
    st.sampled_from(STATUS_WORDS),
    st.sampled_from(TIMESTAMP_TEXTS),
)
json_keys = st.one_of(st.sampled_from(FIELD_NAMES), json_texts)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(HUGE_INTS),
    st.floats(),
    st.sampled_from(SPECIAL_FLOATS),
    json_texts,
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(json_keys, children, max_size=5)
    ),
    max_leaves=25,
)
"""Any JSON value Python's `json.dumps` writes, NaN and lone surrogates included."""


def _ascii(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=True).encode("ascii")


def _raw_utf8(value: Any) -> bytes:
    # Lone surrogates become the 3-byte sequences UTF-8 forbids: the body is not UTF-8.
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _indented(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=True, indent=2).encode("ascii")


def _with_bom(value: Any) -> bytes:
    return b"\xef\xbb\xbf" + _ascii(value)


ENCODINGS: tuple[Callable[[Any], bytes], ...] = (_ascii, _raw_utf8, _indented, _with_bom)


@st.composite
def encoded(draw: st.DrawFn, value: Any) -> bytes:
    """`value` as a response body, in one of several JSON encodings."""
    return draw(st.sampled_from(ENCODINGS))(value)


json_bodies = json_values.flatmap(encoded)

LITERAL_BODIES = (
    b"",
    b"   ",
    b"\xef\xbb\xbf",
    b"null",
    b"NaN",
    b"-Infinity",
    b'{"status": NaN}',
    b'{"inscribedCount": Infinity}',
    b'"\\ud800"',
    b'{"state": "queued", "inscribedCount": ' + b"9" * 4301 + b"}",
    b'{"a": 1, "a": {"b": 2}}',
    b"<html><body>502 Bad Gateway apiKey=not-a-real-key-0123456789</body></html>",
    b'{"code": 48010, "number": 12345678',
)


@st.composite
def deeply_nested(draw: st.DrawFn) -> bytes:
    """Arrays or objects nested up to far past Python's recursion limit, maybe truncated."""
    depth = draw(st.sampled_from((50, 500, 990, 1_000, 3_000, 20_000)))
    opener, closer = draw(st.sampled_from(((b"[", b"]"), (b'{"data":', b"}"))))
    closed = draw(st.booleans())
    return opener * depth + b"1" + (closer * depth if closed else b"")


raw_bodies = st.one_of(st.binary(max_size=512), st.sampled_from(LITERAL_BODIES), deeply_nested())


# --- mutations of the documented bodies -------------------------------------------------------

JsonPath = tuple[str | int, ...]


def _is_leaf(value: Any) -> bool:
    return not isinstance(value, dict | list)


def _paths(value: Any, prefix: JsonPath = ()) -> list[JsonPath]:
    """Every location in a decoded JSON tree, the root (empty path) first."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _at(value: Any, path: JsonPath) -> Any:
    for step in path:
        value = value[step]
    return value


def _replaced(root: Any, path: JsonPath, new: Any) -> Any:
    """`root` with the node at `path` replaced by `new` (in place below the root)."""
    if not path:
        return new
    _at(root, path[:-1])[path[-1]] = new
    return root


BOUNDARY_NUMBERS = (*HUGE_INTS, *SPECIAL_FLOATS)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same_kind(node: Any) -> st.SearchStrategy[Any]:
    """Hostile values of `node`'s JSON type (numbers at the edges, text with surrogates), so a
    body keeps its shape and reaches the adapter's field mapping."""
    if isinstance(node, str):
        return json_texts
    if _is_number(node):
        return st.one_of(st.sampled_from(BOUNDARY_NUMBERS), st.integers())
    return st.sampled_from((None, True, False, 0, "true"))


MUTATIONS = (
    "scramble_numbers",
    "scramble",
    "boundary",
    "replace",
    "drop",
    "rename",
    "add",
    "wrap_array",
    "wrap_object",
    "stringify",
)
"""`scramble_numbers` gives each number a one-in-two chance of a hostile number (keeping the
body's text intact, so it reaches the adapter's counts and amounts), `scramble` each scalar a
one-in-three chance of a hostile value of its type, `boundary` one scalar; the others change the
structure at one random location."""


@st.composite
def mutated(draw: st.DrawFn, value: Any) -> Any:
    """`value` after one mutation of `MUTATIONS`."""
    kind = draw(st.sampled_from(MUTATIONS))
    paths = _paths(value)
    leaves = [path for path in paths if _is_leaf(_at(value, path))]
    if kind == "scramble_numbers":
        for path in leaves:
            if _is_number(_at(value, path)) and draw(st.booleans()):
                value = _replaced(value, path, draw(_same_kind(_at(value, path))))
        return value
    if kind == "scramble":
        for path in leaves:
            if draw(st.integers(0, 2)) == 0:
                value = _replaced(value, path, draw(_same_kind(_at(value, path))))
        return value
    if kind == "boundary" and leaves:
        path = draw(st.sampled_from(leaves))
        return _replaced(value, path, draw(_same_kind(_at(value, path))))
    path = draw(st.sampled_from(paths))
    node = _at(value, path)
    if kind == "replace":
        return _replaced(value, path, draw(json_values))
    if kind == "drop" and path:
        del _at(value, path[:-1])[path[-1]]
        return value
    if kind == "rename" and path and isinstance(path[-1], str):
        parent = _at(value, path[:-1])
        key = path[-1]
        new_key = draw(st.one_of(json_keys, st.sampled_from([key.upper(), key.lower(), key + " "])))
        parent[new_key] = parent.pop(key)
        return value
    if kind == "add" and isinstance(node, dict):
        node[draw(json_keys)] = draw(json_values)
        return value
    if kind == "add" and isinstance(node, list):
        node.insert(draw(st.integers(0, len(node))), draw(json_values))
        return value
    if kind == "wrap_array":
        return _replaced(value, path, [node])
    if kind == "wrap_object":
        return _replaced(value, path, {draw(json_keys): node})
    if kind == "stringify":
        text = node if isinstance(node, str) else json.dumps(node)
        return _replaced(value, path, text)
    return _replaced(value, path, draw(json_values))


@st.composite
def mutated_fixture_bodies(draw: st.DrawFn, slug: str) -> bytes:
    """One of `slug`'s documented bodies after one to three mutations, encoded."""
    name = draw(st.sampled_from(sorted(FIXTURES[slug])))
    value = copy.deepcopy(FIXTURES[slug][name])
    for _ in range(draw(st.integers(1, 3))):
        value = draw(mutated(value))
    return draw(encoded(value))


def bodies(slug: str, family: str = "any") -> st.SearchStrategy[bytes]:
    """Bodies of one family (`raw`, `json`, `documented`) or of all of them (`any`: half are
    mutated documented bodies, the family that reaches deepest into the adapter)."""
    if family == "raw":
        return raw_bodies
    if family == "json":
        return json_bodies
    mutated_documented = mutated_fixture_bodies(slug)
    if family == "documented":
        return mutated_documented
    return st.one_of(raw_bodies, json_bodies, mutated_documented, mutated_documented)


# --- orders and whole answers -----------------------------------------------------------------

moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
previous_states = st.one_of(st.none(), st.sampled_from(STATE_VALUES), st.text(max_size=12))
_labels = st.one_of(st.none(), st.text(max_size=20))


@st.composite
def orders(draw: st.DrawFn, slug: str, order_id: str | None = None) -> TrackedOrder:
    """A tracked order of `slug` with an id its intake accepts (`order_id` if given)."""
    if order_id is None:
        adapter = ADAPTERS[slug]
        order_id = draw(order_ids(slug).filter(lambda i: adapter.validate_order_id(i) is None))
    registered_at = draw(moments)
    created_at = draw(
        st.one_of(
            st.none(), st.timedeltas(timedelta(0), timedelta(days=3)).map(registered_at.__sub__)
        )
    )
    return TrackedOrder(
        provider=slug,
        order_id=order_id,
        order_kind=draw(st.sampled_from(get_spec(slug).order_kinds)),
        registered_at=registered_at,
        created_at=created_at,
        service=draw(_labels),
        country=draw(_labels),
    )


@dataclasses.dataclass(frozen=True)
class Answer:
    """One HTTP answer for an adapter, and the context `parse` is called with."""

    slug: str
    http_status: int
    headers: dict[str, str]
    body: bytes
    previous_state: str | None
    code_key: bytes
    age_s: float
    """Seconds from the order's registration to the poll (negative: a skewed clock)."""


@st.composite
def answers(draw: st.DrawFn, slug: str | None = None, family: str = "any") -> Answer:
    """An answer for `slug` (any provider if None) with a body of `family` (see `bodies`).

    Arguments are names, not strategies, so that hypothesis' reports stay short.
    """
    slug = slug or draw(st.sampled_from(SLUGS))
    return Answer(
        slug=slug,
        http_status=draw(http_statuses),
        headers=draw(headers()),
        body=draw(bodies(slug, family)),
        previous_state=draw(previous_states),
        code_key=draw(st.binary(max_size=32)),
        age_s=draw(st.floats(-3600, 10 * 24 * 3600)),
    )
