"""Property: `write_batch` stores or quarantines every observation the adapters can produce.

A batch mixes answers of all five providers (the bodies of `test_parse`), parsed by the real
adapters and stamped as the poller stamps them (`attempt`, `latency_ms`), then written to a real
DuckDB warehouse. Writing never raises, and:

- `written + quarantined == received`, and the `observations` and `quarantine` tables hold
  exactly that many rows for the batch's orders;
- stored text reads back identical and valid UTF-8: the observation's text columns, its payload
  in `payloads`, and a quarantined row's `row_json`.

One warehouse serves every example of the test (opening one per example would dominate the run
time), so each example gets order ids no earlier example used. An answer whose `parse` raises has
no observation to write: it is left out here and reported by `test_parse`.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
from hypothesis import HealthCheck, event, example, given, note, settings
from hypothesis import strategies as st

from fuzz.strategies import FIXTURES, Answer, answers, moments
from fuzz.test_parse import parse
from pipeline.ingest import write_batch
from pipeline.model import Observation, TrackedOrder
from pipeline.providers.registry import default_kind
from pipeline.warehouse import Warehouse
from pipeline.warehouse.frames import observation_id
from pipeline.warehouse.schema import OBSERVATION_COLUMNS

MAX_BATCH = 8
ORDERS_PER_PROVIDER = 3
"""Answers of one provider share up to this many orders, so one batch polls an order twice."""
TEXT_COLUMNS = [
    name
    for name, dtype in OBSERVATION_COLUMNS.items()
    if isinstance(dtype, pl.String) and name != "observation_id"
]

_serial = itertools.count(1)


@dataclasses.dataclass(frozen=True)
class Poll:
    """One answer in a batch, with what the poller adds to its observation."""

    answer: Answer
    order_slot: int
    """Polls of one provider with the same slot are of the same order."""
    attempt: int
    latency_ms: float


def _documented(slug: str, name: str, **changes: Any) -> bytes:
    body = copy.deepcopy(FIXTURES[slug][name])
    for path, value in changes.items():
        target = body
        *parents, leaf = path.split("__")
        for key in parents:
            target = target[key]
        target[leaf] = value
    return json.dumps(body).encode()


def _ok(slug: str, body: bytes) -> Poll:
    return Poll(Answer(slug, 200, {}, body, None, b"", 60.0), 0, 1, 12.5)


KNOWN_HAZARDS = [
    _ok("ordinalsbot", _documented("ordinalsbot", "full_order_queued.json", inscribedCount=2**31)),
    _ok(
        "altinn",
        _documented(
            "altinn",
            "completed_email_docs.json",
            notificationsStatusSummary__email__generated=2**63,
        ),
    ),
    _ok("baanx", _documented("baanx", "order_completed.json")),
]
"""Counts past INTEGER beside a clean answer: pinned, so CI checks them whatever it draws."""


def unique_order_id(slug: str) -> str:
    """An order id valid for `slug` that no other example of this session uses."""
    n = next(_serial)
    if slug == "altinn":
        return str(uuid.UUID(int=n))
    if slug == "smsonline":
        return str(10**9 + n)
    return f"fuzz-{n}"


polls = st.builds(
    Poll,
    answer=answers(),
    order_slot=st.integers(0, ORDERS_PER_PROVIDER - 1),
    attempt=st.integers(1, 4),
    latency_ms=st.floats(0, 120_000),
)


def parsed_batch(batch: list[Poll], polled_at: datetime) -> list[Observation]:
    """The batch as the poller would hand it over: one observation per parsed answer."""
    order_ids: dict[tuple[str, int], str] = {}
    observations = []
    for index, poll in enumerate(batch):
        answer = poll.answer
        order = TrackedOrder(
            provider=answer.slug,
            order_id=order_ids.setdefault(
                (answer.slug, poll.order_slot), unique_order_id(answer.slug)
            ),
            order_kind=default_kind(answer.slug),
            registered_at=polled_at - timedelta(seconds=answer.age_s),
        )
        try:
            # Distinct poll times keep every observation's key distinct within the batch.
            obs = parse(answer, order, polled_at + timedelta(seconds=index))
        except Exception as exc:
            note(f"answer {index} not parsed ({type(exc).__name__}): left to test_parse")
            event("answer not parsed")
            continue
        observations.append(
            dataclasses.replace(obs, attempt=poll.attempt, latency_ms=poll.latency_ms)
        )
    return observations


def _utf8(value: Any) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(polls, min_size=1, max_size=MAX_BATCH), polled_at=moments)
@example(batch=KNOWN_HAZARDS, polled_at=datetime(2025, 5, 17, 5, 50, tzinfo=UTC))
def test_write_batch_accounts_for_every_observation(
    warehouse: Warehouse, batch: list[Poll], polled_at: datetime
) -> None:
    observations = parsed_batch(batch, polled_at)
    order_ids = sorted({obs.order_id for obs in observations})

    result = write_batch(warehouse, observations)

    assert result.received == len(observations)
    assert result.written + result.quarantined == result.received, result
    event(f"quarantined {result.quarantined} of {result.received}")
    by_key = {
        observation_id(o.provider, o.order_id, o.polled_at, o.attempt): o for o in observations
    }
    with warehouse.connect() as con:
        stored = con.execute(
            f"SELECT observation_id, {', '.join(TEXT_COLUMNS)} FROM observations "
            "WHERE list_contains(?::VARCHAR[], order_id)",
            [order_ids],
        ).fetchall()
        quarantined = con.execute(
            "SELECT row_json, reasons FROM quarantine WHERE list_contains(?::VARCHAR[], order_id)",
            [order_ids],
        ).fetchall()
        hashes = sorted({o.payload_sha256 for o in observations if o.payload_sha256})
        payloads = dict(
            con.execute(
                "SELECT payload_sha256, body_redacted FROM payloads "
                "WHERE list_contains(?::VARCHAR[], payload_sha256)",
                [hashes],
            ).fetchall()
        )
    assert len(stored) == result.written
    assert len(quarantined) == result.quarantined

    for key, *texts in stored:
        obs = by_key[key]
        for column, text in zip(TEXT_COLUMNS, texts, strict=True):
            assert text == getattr(obs, column), column
            assert text is None or _utf8(text), column
        if obs.payload_sha256 is not None:
            body = payloads[obs.payload_sha256]
            assert body == obs.payload_redacted
            assert _utf8(body)
    for row_json, reasons in quarantined:
        assert _utf8(row_json)
        assert json.loads(row_json)["order_id"] in order_ids
        assert json.loads(reasons), "a quarantined row names the checks it failed"
