"""The adapter registry and what every adapter promises: one adapter per provider slug with the
documented polling policy, ids that cannot escape their path segment, `parse` that is pure
(same input, same output) and never raises, whatever the body.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlsplit

import httpx
import pytest

from pipeline.model import OBSERVATION_FIELDS, ErrorClass, OrderState, TrackedOrder
from pipeline.providers.registry import ADAPTERS, PROVIDERS, get_adapter
from pipeline.settings import ProviderSettings, Settings

PATH_PROVIDERS = ("smsonline", "baanx", "altinn")
QUERY_PROVIDERS = {"sms4sats": "orderId", "ordinalsbot": "id"}

GARBAGE_BODIES: list[bytes] = [
    b"",
    b"null",
    b"true",
    b'"text"',
    b"42",
    b"[]",
    b"[{}]",
    b"{}",
    b"\xff\xfe\x00",
    b"{" * 3_000,
    b'{"status":"OK","paid":true,"code":',
    b'{"ok":true,"body":[null]}',
    b'{"ok":true,"body":[{"status":{"x":1},"receivedSMS":1.5,"expiredAt":7}]}',
    b'{"status":"ok","state":["queued"],"files":"x","charge":[]}',
    b'{"status":"ok","state":"completed","files":[1,null,{"tx":"str"}],"createdAt":"soon"}',
    b'{"status":"COMPLETED","paidAt":12,"metadata":[]}',
    b'{"processingStatus":{"status":"Completed"},"notificationsStatusSummary":{"sms":[]}}',
    b'{"processingStatus":{"status":"Completed"},"notificationsStatusSummary":[]}',
    b'{"status":"OK","paid":true,"code":1e400}',
    b'{"data":{"data":{"state":"completed"}}}',
    '{"status":"ok","state":"compl\u00e9ted"}'.encode(),
    b"<html><body>502 Bad Gateway</body></html>",
]
STATUSES = [200, 222, 301, 400, 401, 403, 404, 418, 429, 498, 499, 500, 503]
ERROR_CLASSES = {e.value for e in ErrorClass}
STATES = {s.value for s in OrderState}


def test_registry_covers_every_provider() -> None:
    assert set(ADAPTERS) == set(PROVIDERS)
    for slug, adapter in ADAPTERS.items():
        assert adapter.slug == slug
        assert get_adapter(slug) is adapter


def test_unknown_slug_raises_key_error() -> None:
    with pytest.raises(KeyError, match="known"):
        get_adapter("nope")


@pytest.mark.parametrize(
    ("slug", "cadences", "max_age_s", "rate_limit"),
    [
        ("sms4sats", {"processing": 3.0, "pending": 5.0}, 1800.0, None),
        ("smsonline", {"processing": 5.0}, 1500.0, None),
        ("ordinalsbot", {"pending": 5.0, "processing": 30.0}, 3 * 86400.0, 300.0),
        ("baanx", {"pending": 3.0}, 3600.0, None),
        ("altinn", {"pending": 60.0, "processing": 60.0}, 2 * 86400.0, None),
    ],
)
def test_polling_policies(
    slug: str, cadences: dict[str, float], max_age_s: float, rate_limit: float | None
) -> None:
    policy = ADAPTERS[slug].policy
    for state, cadence in cadences.items():
        assert policy.cadence_for(state) == cadence
    assert policy.max_tracking_age_s == max_age_s
    assert policy.rate_limit_per_minute == rate_limit
    assert 60.0 <= policy.terminal_grace_s <= 300.0
    assert policy.cadence_for("unknown") == policy.default_cadence_s


def test_ordinalsbot_budget_share() -> None:
    assert ADAPTERS["ordinalsbot"].policy.budget_share == 0.8


def _settings(slug: str) -> ProviderSettings:
    return Settings.from_env({}).provider(slug)


@pytest.mark.parametrize("slug", PATH_PROVIDERS)
@pytest.mark.parametrize("order_id", ["a/b?c", "..", ".", "x#y", "100%", "a b", "../../admin"])
def test_ids_cannot_escape_their_path_segment(
    make_order: Callable[..., TrackedOrder], slug: str, order_id: str
) -> None:
    settings = _settings(slug)
    spec = get_adapter(slug).build_request(make_order(slug, order_id), settings)
    request = httpx.Request(spec.method, spec.url, params=spec.params, headers=spec.headers)
    base_path = urlsplit(settings.base_url).path
    path = request.url.raw_path.decode().split("?")[0]
    assert path.startswith(base_path + "/")
    assert "?" not in spec.url and "#" not in spec.url
    assert path.count("/") == (base_path + spec.log_url).count("/")
    assert request.url.query.decode() == httpx.QueryParams(spec.params).__str__()


@pytest.mark.parametrize(("slug", "param"), sorted(QUERY_PROVIDERS.items()))
def test_query_ids_travel_as_params(
    make_order: Callable[..., TrackedOrder], slug: str, param: str
) -> None:
    spec = get_adapter(slug).build_request(make_order(slug, "a/b?c&d=e"), _settings(slug))
    request = httpx.Request(spec.method, spec.url, params=spec.params)
    assert request.url.params[param] == "a/b?c&d=e"
    assert "a/b" not in spec.url


@pytest.mark.parametrize("slug", sorted(ADAPTERS))
def test_log_url_is_a_template(make_order: Callable[..., TrackedOrder], slug: str) -> None:
    spec = get_adapter(slug).build_request(make_order(slug, "ORDER42"), _settings(slug))
    assert spec.log_url.startswith("/")
    assert "ORDER42" not in spec.log_url
    assert "{" in spec.log_url


@pytest.mark.parametrize("slug", sorted(ADAPTERS))
def test_parse_is_pure(
    make_order: Callable[..., TrackedOrder], polled_at: datetime, slug: str
) -> None:
    adapter = get_adapter(slug)
    order = make_order(slug, "1")
    bodies = [
        json.dumps({"status": "OK", "paid": True, "code": 1234, "state": "queued"}).encode(),
        b'{"ok":true,"body":[{"status":"completed","receivedSMS":"1"}]}',
        b"not json",
        b"",
    ]
    for body in bodies:
        for status in (200, 429, 500):
            first = adapter.parse(
                status, {"Retry-After": "3"}, body, order=order, polled_at=polled_at
            )
            second = adapter.parse(
                status, {"Retry-After": "3"}, body, order=order, polled_at=polled_at
            )
            assert first == second


@pytest.mark.parametrize("slug", sorted(ADAPTERS))
def test_parse_never_raises(
    make_order: Callable[..., TrackedOrder], polled_at: datetime, slug: str
) -> None:
    adapter = get_adapter(slug)
    order = make_order(slug, "1")
    for body in GARBAGE_BODIES:
        for status in STATUSES:
            for previous in (None, "processing", "not-a-state"):
                obs = adapter.parse(
                    status,
                    {"Retry-After": "garbage"},
                    body,
                    order=order,
                    polled_at=polled_at,
                    previous_state=previous,
                )
                assert obs.state in STATES
                assert obs.error_class is None or obs.error_class in ERROR_CLASSES
                assert obs.http_status == status
                assert set(obs.as_row()) == set(OBSERVATION_FIELDS)
                if obs.error_class is not None:
                    assert obs.state == ("processing" if previous == "processing" else "unknown")
                    assert obs.error_message and len(obs.error_message) <= 300
                if obs.provider_created_at is not None:
                    assert obs.provider_created_at.utcoffset() is not None


@pytest.mark.parametrize("slug", sorted(ADAPTERS))
def test_non_2xx_is_always_a_poll_error(
    make_order: Callable[..., TrackedOrder], polled_at: datetime, slug: str
) -> None:
    adapter = get_adapter(slug)
    for status in (301, 400, 401, 403, 404, 429, 500, 503):
        obs = adapter.parse(
            status,
            {},
            b'{"status":"COMPLETED","state":"completed","ok":true,"body":[]}',
            order=make_order(slug, "1"),
            polled_at=polled_at,
            previous_state="pending",
        )
        assert obs.error_class is not None
        assert obs.state == "pending"
