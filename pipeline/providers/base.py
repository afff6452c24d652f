"""The adapter protocol every provider implements, and the pieces adapters share.

An adapter knows one provider's contract: how to ask for an order's status (`build_request`) and
how to turn the answer into an `Observation` (`parse`, pure: no I/O, no clock). It also carries the
provider's polling policy as data (cadences, rate limit, tracking window), so the poller stays
provider-agnostic. Adding a provider means one new module and one registry line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from pipeline.model import Observation, TrackedOrder
from pipeline.secret import Secret


@dataclasses.dataclass(frozen=True)
class ProviderSettings:
    """Where a provider lives and the credentials to ask it.

    Attributes:
        slug: provider slug.
        base_url: URL prefix before the provider's own path (no trailing slash).
        secrets: credential name (e.g. `api_key`) to `Secret`; only the ones configured.
        is_sandbox: whether `base_url` is the local sandbox.
        options: option name to value (the spec's default when not configured).
    """

    slug: str
    base_url: str
    secrets: Mapping[str, Secret]
    is_sandbox: bool
    options: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def secret(self, name: str) -> Secret | None:
        """The named credential, or None when not configured."""
        return self.secrets.get(name)

    def option(self, name: str, default: str) -> str:
        """The named option's value, or `default` when settings carry none."""
        return self.options.get(name, default)


@dataclasses.dataclass(frozen=True)
class RequestSpec:
    """One HTTP request, ready for `httpx`. Built fresh per poll; never logged whole.

    Attributes:
        method: HTTP method.
        url: full URL, path segments already percent-encoded. May hold no secret.
        params: query parameters (values are encoded by the client; may hold secrets).
        headers: request headers (may hold secrets).
        log_url: a redacted URL template that is safe to log (no ids, no keys).
    """

    method: str
    url: str
    params: Mapping[str, str]
    headers: Mapping[str, str]
    log_url: str


@dataclasses.dataclass(frozen=True)
class PollingPolicy:
    """When to poll a provider's orders and how hard.

    Attributes:
        cadence_s: seconds between polls, per canonical state (open states only).
        default_cadence_s: cadence for open states not in `cadence_s`.
        terminal_grace_s: after a terminal state, one re-check this much later catches late
            changes (e.g. a refund after expiry); then the order is left alone.
        max_tracking_age_s: stop polling an order this long after registration.
        rate_limit_per_minute: the provider's documented limit, None if none is documented.
        budget_share: share of the documented limit we allow ourselves (headroom).
        max_concurrency: simultaneous requests to this provider.
    """

    cadence_s: Mapping[str, float]
    default_cadence_s: float
    terminal_grace_s: float
    max_tracking_age_s: float
    rate_limit_per_minute: float | None = None
    budget_share: float = 0.8
    max_concurrency: int = 8

    def cadence_for(self, state: str) -> float:
        """Seconds between polls for an order in `state`."""
        return self.cadence_s.get(state, self.default_cadence_s)


class ProviderAdapter(Protocol):
    """One provider's status contract."""

    @property
    def slug(self) -> str:
        """The provider's slug."""
        ...

    @property
    def policy(self) -> PollingPolicy:
        """When and how hard to poll the provider."""
        ...

    def build_request(self, order: TrackedOrder, settings: ProviderSettings) -> RequestSpec:
        """The status request for `order`, with ids percent-encoded and credentials attached."""
        ...

    def parse(
        self,
        http_status: int,
        headers: Mapping[str, str],
        body: bytes,
        *,
        order: TrackedOrder,
        polled_at: datetime,
        previous_state: str | None = None,
        code_key: bytes = b"",
    ) -> Observation:
        """Turn one HTTP answer into an `Observation`. Pure: never raises on bad input.

        `polled_at` is the request time (some states follow from the clock, e.g. a lease that
        ran out); `previous_state` is repeated when the answer is an error; `code_key` keys the
        hash of SMS codes (the poller passes the installation's key from settings).
        """
        ...

    def validate_order_id(self, order_id: str) -> str | None:
        """None if `order_id` looks valid for this provider, else a reason to reject it."""
        ...
