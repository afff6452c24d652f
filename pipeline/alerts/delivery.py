"""Sending queued messages: webhooks over HTTP, email over SMTP, with retries and a rate limit.

`deliver_pending` sends every pending `alerts` row and records what happened; it never raises for
a failed delivery. Per message and evaluation it makes up to `retry_attempts` tries, waiting
`retry_backoff_s`, then twice that, and so on; a message still undelivered stays pending for the
next evaluation until `give_up_after_s` have passed since it was queued (then `failed`). A
receiver's permanent refusal (HTTP 3xx or 4xx other than 408/429, SMTP 5xx) or a malformed URL
fails the message at once. Each target takes at most `max_per_hour` messages an hour; the rest
wait, still pending.

Webhooks are posted with the standard library's `urllib`, not httpx: httpx logs every request
URL at INFO, and a webhook URL is a credential. Error texts are cleaned of every part of the
target's secrets and scrubbed before they are logged or stored; targets are named by their
redacted name (`webhook#1`), never by URL.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import logging
import re
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from pipeline.alerts.config import DeliveryPolicy, EmailTarget, Target, WebhookTarget
from pipeline.alerts.incidents import PENDING
from pipeline.alerts.messages import PAYLOADS, Message, email_message
from pipeline.redaction import REDACTED, scrub
from pipeline.warehouse import Warehouse, query
from pipeline.warehouse.store import registered

logger = logging.getLogger(__name__)

DELIVERED = "delivered"
FAILED = "failed"
RATE_WINDOW = timedelta(hours=1)
MAX_ERROR_CHARS = 300
USER_AGENT = "order-status-history-alerts/1"
RETRYABLE_HTTP = frozenset({408, 429})
"""4xx answers worth trying again; every other 4xx is a permanent refusal."""
MIN_SECRET_PART_CHARS = 6
"""Pieces of a secret at least this long are removed from error texts on their own."""
SECRET_SEPARATORS = r"[/?&=:#@.]"
"""Where a secret URL is cut into pieces: an error may quote any piece or run of pieces."""

UPDATE_COLUMNS: dict[str, pl.DataType] = {
    "alert_id": pl.String(),
    "status": pl.String(),
    "delivered": pl.Boolean(),
    "attempts": pl.Int32(),
    "error": pl.String(),
    "last_attempt_at": pl.Datetime("us", "UTC"),
    "delivered_at": pl.Datetime("us", "UTC"),
}


class DeliveryError(Exception):
    """One delivery attempt failed.

    Attributes:
        reason: what went wrong, already free of secrets.
        permanent: the receiver refused the message for good; trying again cannot help.
    """

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


@dataclasses.dataclass(frozen=True)
class DeliveryReport:
    """What one `deliver_pending` did."""

    delivered: int = 0
    failed: int = 0
    waiting: int = 0
    """Still pending: retries exhausted for now, rate-limited, or past the deadline."""


def secret_parts(target: Target) -> list[str]:
    """The secret strings of `target` and their longer pieces (a URL's path segments, its
    host), so an error quoting part of a URL cannot leak it either."""
    secrets = []
    if isinstance(target, WebhookTarget):
        secrets.append(target.url.reveal())
    elif target.password:
        secrets.append(target.password.reveal())
    parts = set(secrets)
    for secret in secrets:
        pieces = re.split(SECRET_SEPARATORS, secret)
        for separator in SECRET_SEPARATORS.strip("[]"):
            pieces += secret.split(separator)
        parts.update(p for p in pieces if len(p) >= MIN_SECRET_PART_CHARS)
    return sorted(parts, key=len, reverse=True)


def clean(text: str, target: Target) -> str:
    """`text` with every part of `target`'s secrets removed, scrubbed, on one line."""
    for part in secret_parts(target):
        text = text.replace(part, REDACTED)
    return scrub(text, level="tokens", single_line=True, max_chars=MAX_ERROR_CHARS)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirected POST would be resent as a GET without its body: refuse redirects."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects())


def post_json(target: WebhookTarget, payload: dict[str, Any], timeout_s: float) -> None:
    """POST `payload` to the webhook.

    Raises:
        DeliveryError: no 2xx answer.
    """
    request = urllib.request.Request(
        target.url.reveal(),
        data=json.dumps(payload).encode("utf-8"),
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
    )
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            response.read(4096)
    except urllib.error.HTTPError as error:
        permanent = 300 <= error.code < 500 and error.code not in RETRYABLE_HTTP
        raise DeliveryError(f"HTTP {error.code}", permanent=permanent) from None
    except urllib.error.URLError as error:
        raise DeliveryError(clean(_describe(error.reason), target)) from None
    except (http.client.InvalidURL, ValueError) as error:
        raise DeliveryError(clean(_describe(error), target), permanent=True) from None
    except (OSError, http.client.HTTPException) as error:
        raise DeliveryError(clean(_describe(error), target)) from None


def send_email(target: EmailTarget, message: Message, timeout_s: float, now: datetime) -> None:
    """Send `message` through the target's SMTP server.

    Raises:
        DeliveryError: the server could not be reached or refused the message.
    """
    email = email_message(message, target.sender, target.recipients, now)
    try:
        with smtplib.SMTP(target.host, target.port, timeout=timeout_s) as smtp:
            smtp.ehlo()
            if target.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if target.user and target.password:
                smtp.login(target.user, target.password.reveal())
            smtp.send_message(email)
    except smtplib.SMTPResponseException as error:
        permanent = 500 <= error.smtp_code < 600
        reason = f"SMTP {error.smtp_code}: {_decode(error.smtp_error)}"
        raise DeliveryError(clean(reason, target), permanent=permanent) from None
    except smtplib.SMTPRecipientsRefused as error:
        refused = f"SMTP: {len(error.recipients)} recipient(s) refused"
        raise DeliveryError(refused, permanent=True) from None
    except (smtplib.SMTPException, OSError, ssl.SSLError) as error:
        raise DeliveryError(clean(_describe(error), target)) from None


def _describe(error: object) -> str:
    return f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)


def _decode(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def send(target: Target, message: Message, timeout_s: float, now: datetime) -> None:
    """One attempt to deliver `message` to `target`.

    Raises:
        DeliveryError: it was not delivered.
    """
    if isinstance(target, WebhookTarget):
        post_json(target, PAYLOADS[target.format](message), timeout_s)
    else:
        send_email(target, message, timeout_s, now)


def attempt(
    target: Target,
    message: Message,
    policy: DeliveryPolicy,
    now: datetime,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[int, DeliveryError | None]:
    """Try up to `policy.retry_attempts` times with doubling waits; never raises.

    Returns:
        The tries made and the last error (None: delivered).
    """
    error: DeliveryError | None = None
    for number in range(policy.retry_attempts):
        if number:
            sleep(policy.retry_backoff_s * 2 ** (number - 1))
        try:
            send(target, message, policy.timeout_s, now)
            return number + 1, None
        except DeliveryError as failure:
            error = failure
        except Exception as failure:  # a bug or a library surprise must not stop the others
            error = DeliveryError(clean(_describe(failure), target))
        if error.permanent:
            return number + 1, error
    return policy.retry_attempts, error


def deliver_pending(
    warehouse: Warehouse,
    targets: Sequence[Target],
    policy: DeliveryPolicy,
    now: datetime,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryReport:
    """Send every pending message (see the module docstring) and record each outcome."""
    with warehouse.connect() as con:
        pending = query(
            con,
            "SELECT alert_id, target, created_at, attempts, error, message_json FROM alerts "
            "WHERE status = ? ORDER BY created_at, alert_id",
            [PENDING],
        )
        if pending.is_empty():
            return DeliveryReport()
        recent = query(
            con,
            "SELECT target, count(*) AS n FROM alerts WHERE attempts > 0 AND last_attempt_at > ?"
            " GROUP BY target",
            [now - RATE_WINDOW],
        )
    sent = {row["target"]: row["n"] for row in recent.iter_rows(named=True)}
    by_name = {t.name: t for t in targets}
    give_up_before = now - timedelta(seconds=policy.give_up_after_s)
    started = time.monotonic()
    updates: list[dict[str, Any]] = []
    delivered = failed = waiting = 0
    for row in pending.iter_rows(named=True):
        update = {"alert_id": row["alert_id"], "status": PENDING, "delivered": False}
        update |= {"attempts": row["attempts"], "error": row["error"]}
        target = by_name.get(row["target"])
        if target is None or row["created_at"] < give_up_before:
            why = "target no longer configured" if target is None else "gave up"
            last = f": last error {row['error']}" if row["error"] else ""
            updates.append(update | {"status": FAILED, "error": f"{why}{last}"})
            failed += 1
            continue
        if time.monotonic() - started > policy.deadline_s:
            waiting += 1
            continue
        if sent.get(target.name, 0) >= policy.max_per_hour:
            limit = f"rate limited: {policy.max_per_hour} messages per hour to {target.name}"
            updates.append(update | {"error": limit})
            waiting += 1
            continue
        message = Message.from_json(row["message_json"])
        tries, error = attempt(target, message, policy, now, sleep=sleep)
        sent[target.name] = sent.get(target.name, 0) + 1
        update |= {"attempts": row["attempts"] + tries, "last_attempt_at": now}
        if error is None:
            logger.info("alert %r delivered to %s", message.title, target.name)
            updates.append(
                update
                | {"status": DELIVERED, "delivered": True, "error": None, "delivered_at": now}
            )
            delivered += 1
            continue
        status = FAILED if error.permanent else PENDING
        logger.warning(
            "alert %r not delivered to %s after %d attempt(s)%s: %s",
            message.title,
            target.name,
            tries,
            "" if error.permanent else ", will retry at the next evaluation",
            error.reason,
        )
        updates.append(update | {"status": status, "error": error.reason})
        failed += status == FAILED
        waiting += status == PENDING
    _record(warehouse, updates)
    return DeliveryReport(delivered, failed, waiting)


def _record(warehouse: Warehouse, updates: list[dict[str, Any]]) -> None:
    if not updates:
        return
    frame = pl.DataFrame(
        [{c: u.get(c) for c in UPDATE_COLUMNS} for u in updates], schema=UPDATE_COLUMNS
    )
    with warehouse.transaction() as con, registered(con, "_delivery", frame):
        con.execute(
            "UPDATE alerts SET status = d.status, delivered = d.delivered,"
            " attempts = d.attempts, error = d.error,"
            " last_attempt_at = coalesce(d.last_attempt_at, alerts.last_attempt_at),"
            " delivered_at = d.delivered_at FROM _delivery d WHERE alerts.alert_id = d.alert_id"
        )
