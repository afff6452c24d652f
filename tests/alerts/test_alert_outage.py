"""An outage makes exactly one firing message and, once polls succeed again, exactly one recovery
message per target, however often the rules are evaluated, and even when the evaluating process
restarts (the incident lives in the warehouse). Each webhook format arrives in its own shape."""

from __future__ import annotations

from datetime import timedelta

from alert_support import NOW, WEBHOOK_TOKEN, WebhookReceiver, config, polls, webhook, write

from pipeline.alerts import evaluate_and_notify
from pipeline.warehouse import Warehouse

MINUTE = timedelta(minutes=1)
PROVIDER = "baanx"


def _outage(warehouse: Warehouse) -> None:
    """An hour of answers every 10 s, then 5 minutes of 503s."""
    write(warehouse, polls(PROVIDER, NOW - 60 * MINUTE, NOW + timedelta(seconds=1), 10))
    write(
        warehouse, polls(PROVIDER, NOW + timedelta(seconds=10), NOW + 5 * MINUTE, 10, failing=True)
    )


def _recovery(warehouse: Warehouse) -> None:
    write(warehouse, polls(PROVIDER, NOW + 5 * MINUTE, NOW + 15 * MINUTE, 10))


def test_outage_fires_once_and_recovers_once(
    warehouse: Warehouse, receiver: WebhookReceiver, tmp_path: object
) -> None:
    targets = (
        webhook(receiver, "/generic"),
        webhook(receiver, "/slack", "slack"),
        webhook(receiver, "/teams", "teams"),
    )
    alerting = config(tmp_path, *targets)
    assert not evaluate_and_notify(warehouse, alerting, NOW).firing

    _outage(warehouse)
    runs = [evaluate_and_notify(warehouse, alerting, NOW + m * MINUTE) for m in range(1, 6)]
    assert sum(len(run.opened) for run in runs) == 1
    assert runs[-1].firing == ((PROVIDER, "availability", "page"),)

    _recovery(warehouse)
    # A fresh config object each time stands in for a restarted process: nothing is in memory.
    later = [
        evaluate_and_notify(warehouse, config(tmp_path, *targets), NOW + m * MINUTE)
        for m in (6, 8, 10, 11, 12)
    ]
    assert sum(len(run.resolved) for run in later) == 1
    assert later[-1].firing == ()

    generic = receiver.bodies(f"/generic/{WEBHOOK_TOKEN}")
    assert [(b["state"], b["severity"], b["rule"], b["provider"]) for b in generic] == [
        ("firing", "page", "availability", PROVIDER),
        ("resolved", "page", "availability", PROVIDER),
    ]
    firing = generic[0]
    assert firing["schema"] == "pipeline.alert/1"
    assert firing["value"] < firing["threshold"] == 0.8
    assert firing["incident_id"] == generic[1]["incident_id"]
    assert "availability" in firing["text"] and "Baanx" in firing["title"]

    slack = receiver.bodies(f"/slack/{WEBHOOK_TOKEN}")
    assert len(slack) == 2
    assert slack[0]["text"].startswith(":red_circle: [FIRING · page] Baanx")
    assert [block["type"] for block in slack[0]["blocks"]] == ["header", "section", "context"]
    assert slack[1]["text"].startswith(":large_green_circle: [RESOLVED] Baanx")

    teams = receiver.bodies(f"/teams/{WEBHOOK_TOKEN}")
    assert len(teams) == 2
    assert teams[0]["type"] == "message"
    attachment = teams[0]["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["body"][0]["color"] == "Attention"
    assert teams[1]["attachments"][0]["content"]["body"][0]["color"] == "Good"
    assert all(r.headers["Content-Type"] == "application/json" for r in receiver.received)

    alerts = warehouse.read("SELECT * FROM alerts ORDER BY created_at, target")
    assert alerts.height == 6
    assert alerts["delivered"].all() and alerts["attempts"].to_list() == [1] * 6
    assert set(alerts["state"]) == {"firing", "resolved"}
    assert set(alerts["target"]) == {"webhook-generic", "webhook-slack", "webhook-teams"}
    incidents = warehouse.read("SELECT * FROM alert_incidents")
    assert incidents.height == 1 and incidents["state"][0] == "resolved"


def test_a_short_outage_resolves_once_it_ends_not_when_it_leaves_the_hour(
    warehouse: Warehouse, receiver: WebhookReceiver, tmp_path: object
) -> None:
    """The hour-long ticket level has a 5-minute second window: the hour still holds 8 % bad
    polls five minutes after the outage, yet the incident resolves."""
    alerting = config(tmp_path, webhook(receiver, "/hook"))
    _outage(warehouse)
    evaluate_and_notify(warehouse, alerting, NOW + 5 * MINUTE)
    _recovery(warehouse)
    run = evaluate_and_notify(warehouse, alerting, NOW + 10 * MINUTE)
    hour = warehouse.read(
        "SELECT avg((error_class IS NULL)::INT) AS availability FROM observations "
        "WHERE polled_at > ? AND polled_at <= ?",
        [NOW - 50 * MINUTE, NOW + 10 * MINUTE],
    )
    assert hour["availability"][0] < 0.95  # the ticket level's hour alone would still fire
    assert run.resolved == ((PROVIDER, "availability"),)
    assert [b["state"] for b in receiver.bodies(f"/hook/{WEBHOOK_TOKEN}")] == [
        "firing",
        "resolved",
    ]


def test_no_data_neither_fires_nor_resolves(warehouse: Warehouse, tmp_path: object) -> None:
    """When polling stops, silence is not a recovery: the incident stays open."""
    alerting = config(tmp_path)
    _outage(warehouse)
    assert evaluate_and_notify(warehouse, alerting, NOW + 5 * MINUTE).firing
    silent = evaluate_and_notify(warehouse, alerting, NOW + 3 * 60 * MINUTE)
    assert silent.firing == ((PROVIDER, "availability", "page"),)
    assert silent.resolved == ()
