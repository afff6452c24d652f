"""Message shapes: a stored message comes back identical (retries send the same words), Slack
control characters in data are escaped, and a Teams card carries the facts."""

from __future__ import annotations

from datetime import timedelta

from alert_support import NOW

from pipeline.alerts.messages import Message, slack_payload, teams_payload

MESSAGE = Message(
    incident_id="0123456789abcdef",
    provider="baanx",
    provider_name="<Evil> & Co",
    rule="availability",
    severity="page",
    state="resolved",
    detail="availability 100.0 % over 5 min (30 polls); page below 80.0 %",
    value=1.0,
    threshold=0.8,
    opened_at=NOW,
    resolved_at=NOW + timedelta(minutes=7),
)


def test_a_stored_message_comes_back_identical() -> None:
    assert Message.from_json(MESSAGE.to_json()) == MESSAGE
    assert MESSAGE.title == "[RESOLVED] <Evil> & Co: availability after 7 min"


def test_slack_text_is_escaped() -> None:
    payload = slack_payload(MESSAGE)
    assert payload["text"].startswith(":large_green_circle: [RESOLVED] &lt;Evil&gt; &amp; Co")
    context = payload["blocks"][2]["elements"][0]["text"]
    assert "*Provider:* &lt;Evil&gt; &amp; Co (baanx)" in context
    assert "<Evil>" not in str(payload["blocks"][1:])


def test_teams_card_carries_the_facts() -> None:
    card = teams_payload(MESSAGE)["attachments"][0]["content"]
    facts = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
    assert facts["Severity"] == "page" and facts["Incident"] == "0123456789abcdef"
    assert facts["Resolved"] == "2026-05-01 12:07:00 UTC"
    assert "actions" not in card  # no status URL configured, no button
