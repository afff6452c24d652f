"""Property: every adapter's `parse` turns any HTTP answer into a sound `Observation`.

For each of the five adapters and any status, headers and body (arbitrary bytes, arbitrary JSON,
mutated documented bodies), `parse` does not raise and returns an observation that:

- belongs to the order polled (`provider`, `order_id`, `order_kind`);
- has a canonical `state` and, if any, a known `error_class`;
- has only text that encodes as UTF-8 (a lone surrogate cannot be stored or hashed);
- carries a redacted payload that is valid UTF-8, hashed consistently, and bounded: non-JSON
  bodies are cut to `MAX_TEXT_PAYLOAD_BYTES`; JSON bodies are stored re-serialised, where
  redaction may grow a value by a fixed amount (a 64-hex hash for a one-digit value) and a number
  may be rewritten longer (`1e15` → `1000000000000000.0`), so they stay within
  `PAYLOAD_GROWTH` times the body.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from fuzz.strategies import FIXTURES, SLUGS, Answer, answers, orders
from pipeline.model import STATE_VALUES, ErrorClass, Observation, TrackedOrder
from pipeline.providers.common import MAX_TEXT_PAYLOAD_BYTES, sha256_hex
from pipeline.providers.registry import ADAPTERS

PAYLOAD_GROWTH = 8
ERROR_CLASSES = frozenset(e.value for e in ErrorClass)


def parse(answer: Answer, order: TrackedOrder, polled_at: datetime | None = None) -> Observation:
    """`answer` through its adapter, polled at `polled_at` (default: `answer.age_s` after the
    order was registered)."""
    if polled_at is None:
        polled_at = order.registered_at + timedelta(seconds=answer.age_s)
    return ADAPTERS[answer.slug].parse(
        answer.http_status,
        answer.headers,
        answer.body,
        order=order,
        polled_at=polled_at,
        previous_state=answer.previous_state,
        code_key=answer.code_key,
    )


def assert_sound(obs: Observation, order: TrackedOrder, body: bytes) -> None:
    """The invariants every parsed observation must hold (see the module docstring)."""
    assert isinstance(obs, Observation)
    assert (obs.provider, obs.order_id, obs.order_kind) == (
        order.provider,
        order.order_id,
        order.order_kind,
    )
    assert obs.state in STATE_VALUES, obs.state
    assert obs.error_class is None or obs.error_class in ERROR_CLASSES, obs.error_class
    for field in dataclasses.fields(obs):
        value = getattr(obs, field.name)
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise AssertionError(f"{field.name} is not UTF-8 encodable: {value!r}") from exc
    if obs.payload_redacted is None:
        assert obs.payload_sha256 is None
        return
    size = len(obs.payload_redacted.encode("utf-8"))
    bound = MAX_TEXT_PAYLOAD_BYTES + PAYLOAD_GROWTH * len(body)
    assert size <= bound, f"payload of {size} bytes for a body of {len(body)}"
    assert obs.payload_sha256 == sha256_hex(obs.payload_redacted)


def check_answer(answer: Answer, order: TrackedOrder) -> None:
    obs = parse(answer, order)
    event(f"state={obs.state} error_class={obs.error_class}")
    assert_sound(obs, order, answer.body)


def _answers_and_orders(slug: str, family: str) -> st.SearchStrategy[tuple[Answer, TrackedOrder]]:
    return st.tuples(answers(slug, family), orders(slug))


@pytest.mark.parametrize("slug", SLUGS)
@given(data=st.data())
def test_parse_arbitrary_bytes(slug: str, data: st.DataObject) -> None:
    """Bytes that are mostly not JSON: invalid UTF-8, NaN literals, deep nesting, HTML."""
    answer, order = data.draw(_answers_and_orders(slug, "raw"))
    check_answer(answer, order)


@pytest.mark.parametrize("slug", SLUGS)
@given(data=st.data())
def test_parse_arbitrary_json(slug: str, data: st.DataObject) -> None:
    """Any JSON: lone surrogates, huge integers and floats, NaN, nesting keyed by real fields."""
    answer, order = data.draw(_answers_and_orders(slug, "json"))
    check_answer(answer, order)


@pytest.mark.parametrize("slug", [slug for slug in SLUGS if FIXTURES[slug]])
@given(data=st.data())
def test_parse_mutated_documented_bodies(slug: str, data: st.DataObject) -> None:
    """The documented bodies with values replaced, fields dropped, renamed, added or wrapped."""
    answer, order = data.draw(_answers_and_orders(slug, "documented"))
    check_answer(answer, order)
