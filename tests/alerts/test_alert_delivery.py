"""Delivery: a receiver that is down is retried with doubling waits and the failure recorded,
then the message goes out once it is back; a permanent refusal is not retried; a target gets at
most `max_per_hour` messages; email arrives through a real SMTP server with subject, body and a
recovery threaded to its firing message; and no secret reaches a table, a log or the page."""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta
from email import message_from_string, policy
from pathlib import Path

import pytest
from alert_support import (
    NOW,
    SMTP_PASSWORD,
    SMTP_USER,
    WEBHOOK_TOKEN,
    SmtpSink,
    WebhookReceiver,
    config,
    email_target,
    free_port,
    polls,
    webhook,
    write,
)

from pipeline.alerts import evaluate_and_notify, write_status_page
from pipeline.alerts.config import DeliveryPolicy, WebhookTarget
from pipeline.secret import Secret
from pipeline.warehouse import Warehouse

MINUTE = timedelta(minutes=1)


def _outage(warehouse: Warehouse, provider: str = "baanx", kind: str = "product_order") -> None:
    write(warehouse, polls(provider, NOW - 60 * MINUTE, NOW, 10, order_kind=kind))
    write(warehouse, polls(provider, NOW, NOW + 5 * MINUTE, 10, failing=True, order_kind=kind))


def _recovery(warehouse: Warehouse) -> None:
    write(warehouse, polls("baanx", NOW + 5 * MINUTE, NOW + 15 * MINUTE, 10))


def test_a_receiver_that_is_down_is_retried_with_backoff_then_delivered(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    port = free_port()  # nothing listens here yet
    hook = WebhookTarget("webhook#1", Secret(f"http://127.0.0.1:{port}/hook/{WEBHOOK_TOKEN}"))
    alerting = config(tmp_path, hook)
    _outage(warehouse)
    waits: list[float] = []

    run = evaluate_and_notify(warehouse, alerting, NOW + 5 * MINUTE, sleep=waits.append)

    assert run.opened and run.delivery.waiting == 1 and run.delivery.delivered == 0
    assert waits == [0.01, 0.02]  # retry_backoff_s, then doubled
    row = warehouse.read("SELECT * FROM alerts").row(0, named=True)
    assert (row["delivered"], row["status"], row["attempts"]) == (False, "pending", 3)
    assert "Connection refused" in row["error"]

    receiver = WebhookReceiver(port).start()
    try:
        back = evaluate_and_notify(warehouse, alerting, NOW + 6 * MINUTE, sleep=waits.append)
        again = evaluate_and_notify(warehouse, alerting, NOW + 7 * MINUTE, sleep=waits.append)
    finally:
        receiver.stop()
    assert back.delivery.delivered == 1 and again.delivery.delivered == 0
    assert [b["state"] for b in receiver.bodies(f"/hook/{WEBHOOK_TOKEN}")] == ["firing"]
    row = warehouse.read("SELECT * FROM alerts").row(0, named=True)
    assert (row["delivered"], row["status"], row["attempts"], row["error"]) == (
        True,
        "delivered",
        4,
        None,
    )


def test_a_permanent_refusal_is_not_retried(
    warehouse: Warehouse, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    receiver.status_by_path[f"/gone/{WEBHOOK_TOKEN}"] = 404
    alerting = config(tmp_path, webhook(receiver, "/gone"))
    _outage(warehouse)
    evaluate_and_notify(warehouse, alerting, NOW + 5 * MINUTE, sleep=lambda s: None)
    evaluate_and_notify(warehouse, alerting, NOW + 6 * MINUTE, sleep=lambda s: None)
    assert len(receiver.received) == 1
    row = warehouse.read("SELECT * FROM alerts").row(0, named=True)
    assert (row["status"], row["delivered"], row["attempts"], row["error"]) == (
        "failed",
        False,
        1,
        "HTTP 404",
    )


def test_a_target_gets_at_most_max_per_hour_messages(
    warehouse: Warehouse, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    policy = dataclasses.replace(
        DeliveryPolicy(), max_per_hour=1, retry_backoff_s=0.0, give_up_after_s=3 * 3600
    )
    alerting = config(tmp_path, webhook(receiver, "/hook"), delivery=policy)
    _outage(warehouse, "baanx", "product_order")
    _outage(warehouse, "altinn", "notification_order")

    run = evaluate_and_notify(warehouse, alerting, NOW + 5 * MINUTE)
    assert len(run.opened) == 2 and run.delivery.delivered == 1 and run.delivery.waiting == 1
    waiting = warehouse.read("SELECT * FROM alerts WHERE NOT delivered").row(0, named=True)
    assert waiting["status"] == "pending" and waiting["attempts"] == 0
    assert waiting["error"] == "rate limited: 1 messages per hour to webhook-generic"

    assert evaluate_and_notify(warehouse, alerting, NOW + 30 * MINUTE).delivery.delivered == 0
    assert evaluate_and_notify(warehouse, alerting, NOW + 66 * MINUTE).delivery.delivered == 1
    assert len(receiver.bodies(f"/hook/{WEBHOOK_TOKEN}")) == 2


def test_email_arrives_with_subject_and_body_and_the_recovery_replies(
    warehouse: Warehouse, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    alerting = config(tmp_path, email_target(smtp_sink))
    _outage(warehouse)
    evaluate_and_notify(warehouse, alerting, NOW + 5 * MINUTE)
    _recovery(warehouse)
    evaluate_and_notify(warehouse, alerting, NOW + 11 * MINUTE)

    assert smtp_sink.logins == [SMTP_USER, SMTP_USER]
    assert [m["to"] for m in smtp_sink.messages] == [["oncall@example.org"]] * 2
    firing, resolved = (
        message_from_string(m["data"], policy=policy.default) for m in smtp_sink.messages
    )
    assert firing["Subject"] == "[FIRING · page] Baanx: availability"
    assert firing["From"] == "pipeline@example.org"
    body = firing.get_content()
    assert "Baanx (baanx): availability is firing (page)." in body
    # 29: the window is (now − 5 min, now], and the first failing poll was at its open end.
    assert "availability 0.0 % over 5 min (29 polls); page below 80.0 %" in body
    assert resolved["Subject"].startswith("[RESOLVED] Baanx: availability after ")
    assert resolved["In-Reply-To"] == firing["Message-ID"]
    assert warehouse.read("SELECT count(*) AS n FROM alerts WHERE delivered")["n"][0] == 2


def test_no_secret_reaches_tables_logs_or_the_status_page(
    warehouse: Warehouse,
    receiver: WebhookReceiver,
    smtp_sink: SmtpSink,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    # A URL whose "port" is secret text: urllib's error quotes it, and it must not survive.
    broken = WebhookTarget("broken#1", Secret(f"http://127.0.0.1:sEcReT{WEBHOOK_TOKEN[:9]}/x"))
    wrong_password = dataclasses.replace(
        email_target(smtp_sink), name="email#2", password=Secret("wr0ng-" + SMTP_PASSWORD)
    )
    alerting = config(
        tmp_path,
        webhook(receiver, "/hook", "slack"),
        email_target(smtp_sink),
        wrong_password,
        broken,
    )
    _outage(warehouse)
    evaluate_and_notify(warehouse, alerting, NOW + 5 * MINUTE, sleep=lambda s: None)
    _recovery(warehouse)
    evaluate_and_notify(warehouse, alerting, NOW + 11 * MINUTE, sleep=lambda s: None)
    page = write_status_page(warehouse, tmp_path / "status", now=NOW + 11 * MINUTE)

    errors = warehouse.read("SELECT target, error FROM alerts WHERE NOT delivered")
    assert set(errors["target"]) == {"email#2", "broken#1"}  # the failures were recorded
    stored = "\n".join(
        str(warehouse.read(f"SELECT * FROM {table}").rows())
        for table in ("alerts", "alert_incidents", "slo_status", "slo_events")
    )
    written = "\n".join(p.read_text() for p in [page.index, *page.badges.values()])
    secrets = [SMTP_PASSWORD, "sEcReT", *WEBHOOK_TOKEN.split("/")]
    for text in (stored, caplog.text, written, repr(alerting)):
        for secret in secrets:
            assert secret not in text
    assert "webhook-slack" in stored and "email#1" in stored
    assert len(receiver.received) == 2 and len(smtp_sink.messages) == 2
