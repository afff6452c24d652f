"""What a firing or recovery message says, and how it is shaped for each kind of receiver.

`Message` is built once per incident change and stored as JSON with each queued delivery, so a
retry an evaluation later sends the very same words. It holds nothing secret. Shapes:

- `generic_payload`: a flat JSON object (`schema` `pipeline.alert/1`) for any webhook consumer;
- `slack_payload`: an incoming-webhook message (`text` fallback plus Block Kit blocks);
- `teams_payload`: a Teams Workflows / incoming-webhook message carrying an Adaptive Card;
- `email_message`: a plain-text email; a recovery replies to its firing message, so mail
  clients thread the two.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Literal

from pipeline.redaction import scrub

State = Literal["firing", "resolved"]
GENERIC_SCHEMA = "pipeline.alert/1"
SLACK_HEADER_MAX_CHARS = 150
"""Slack refuses a header block longer than this."""
MAIL_DOMAIN = "pipeline.alerts"
"""Right-hand side of the Message-IDs, so a recovery can reply to its firing message."""


@dataclasses.dataclass(frozen=True)
class Message:
    """One incident change, in words and figures.

    Attributes:
        incident_id: the incident it belongs to.
        provider: provider slug; `provider_name` how people write it.
        rule: the rule or SLO that fired.
        severity: page or ticket.
        state: firing (opened or escalated) or resolved.
        detail: the reading that decided it, in words.
        value: the figure compared (a share, or a burn rate for SLOs); threshold what it was
            compared with.
        opened_at: when the incident opened; resolved_at when it resolved.
        status_url: where the status page is served, if configured.
    """

    incident_id: str
    provider: str
    provider_name: str
    rule: str
    severity: str
    state: State
    detail: str
    value: float | None
    threshold: float | None
    opened_at: datetime
    resolved_at: datetime | None = None
    status_url: str | None = None

    @property
    def title(self) -> str:
        """One line: "[FIRING · page] SMSOnline: availability"."""
        if self.state == "firing":
            return f"[FIRING · {self.severity}] {self.provider_name}: {self.rule}"
        lasted = ""
        if self.resolved_at is not None:
            lasted = f" after {_lasted((self.resolved_at - self.opened_at).total_seconds())}"
        return f"[RESOLVED] {self.provider_name}: {self.rule}{lasted}"

    @property
    def lines(self) -> list[str]:
        """The body, line by line."""
        verb = "is firing" if self.state == "firing" else "has recovered"
        lines = [
            f"{self.provider_name} ({self.provider}): {self.rule} {verb} ({self.severity}).",
            self.detail,
            f"Opened {_when(self.opened_at)}"
            + (f", resolved {_when(self.resolved_at)}" if self.resolved_at else "")
            + f". Incident {self.incident_id}.",
        ]
        if self.status_url:
            lines.append(f"Status page: {self.status_url}")
        return lines

    @property
    def text(self) -> str:
        """The body as plain text."""
        return "\n".join(self.lines)

    def to_json(self) -> str:
        """The message as stored with each queued delivery."""
        data = dataclasses.asdict(self)
        for key in ("opened_at", "resolved_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Message:
        """The message back from `to_json`."""
        data = json.loads(text)
        for key in ("opened_at", "resolved_at"):
            data[key] = datetime.fromisoformat(data[key]) if data[key] else None
        return cls(**data)


def _when(moment: datetime | None) -> str:
    return "–" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _lasted(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _facts(message: Message) -> list[tuple[str, str]]:
    facts = [
        ("Provider", f"{message.provider_name} ({message.provider})"),
        ("Rule", message.rule),
        ("Severity", message.severity),
        ("State", message.state),
        ("Opened", _when(message.opened_at)),
    ]
    if message.resolved_at:
        facts.append(("Resolved", _when(message.resolved_at)))
    facts.append(("Incident", message.incident_id))
    return facts


def generic_payload(message: Message) -> dict[str, Any]:
    """A flat JSON object for any webhook consumer."""
    return {
        "schema": GENERIC_SCHEMA,
        "state": message.state,
        "severity": message.severity,
        "provider": message.provider,
        "provider_name": message.provider_name,
        "rule": message.rule,
        "title": message.title,
        "text": message.text,
        "value": message.value,
        "threshold": message.threshold,
        "opened_at": message.opened_at.isoformat(),
        "resolved_at": message.resolved_at.isoformat() if message.resolved_at else None,
        "incident_id": message.incident_id,
        "status_url": message.status_url,
    }


def _slack_escape(text: str) -> str:
    """Slack mrkdwn treats `&`, `<` and `>` as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(message: Message) -> dict[str, Any]:
    """A Slack incoming-webhook message: `text` for notifications, blocks for the channel."""
    emoji = ":red_circle:" if message.state == "firing" else ":large_green_circle:"
    context = " · ".join(f"*{name}:* {_slack_escape(value)}" for name, value in _facts(message))
    body = _slack_escape(message.detail)
    if message.status_url:
        body += f"\n<{_slack_escape(message.status_url)}|Status page>"
    return {
        # What notifications show: the title and the reading.
        "text": f"{emoji} {_slack_escape(message.title)} — {_slack_escape(message.detail)}",
        "blocks": [
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": message.title[:SLACK_HEADER_MAX_CHARS],
                    "emoji": True,
                },
            },
            {"type": "section", "text": {"type": "mrkdwn", "text": body}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    }


def teams_payload(message: Message) -> dict[str, Any]:
    """A Microsoft Teams message with one Adaptive Card (Workflows "when a webhook request is
    received" and incoming webhooks both accept it)."""
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": message.title,
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
            "color": "Attention" if message.state == "firing" else "Good",
        },
        {"type": "TextBlock", "text": message.detail, "wrap": True},
        {
            "type": "FactSet",
            "facts": [{"title": name, "value": value} for name, value in _facts(message)],
        },
    ]
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if message.status_url:
        card["actions"] = [
            {"type": "Action.OpenUrl", "title": "Status page", "url": message.status_url}
        ]
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


PAYLOADS = {"generic": generic_payload, "slack": slack_payload, "teams": teams_payload}


def message_id(message: Message, state: State | None = None) -> str:
    """The email Message-ID of the incident's `state` message at this severity (default: this
    message's own state)."""
    return f"<{message.incident_id}.{state or message.state}.{message.severity}@{MAIL_DOMAIN}>"


def email_message(
    message: Message, sender: str, recipients: tuple[str, ...], sent_at: datetime
) -> EmailMessage:
    """A plain-text email; a recovery is a reply to the incident's firing message."""
    email = EmailMessage()
    email["Subject"] = scrub(message.title, single_line=True, max_chars=200)
    email["From"] = sender
    email["To"] = ", ".join(recipients)
    email["Date"] = format_datetime(sent_at)
    email["Message-ID"] = message_id(message)
    email["X-Pipeline-Incident"] = message.incident_id
    if message.state == "resolved":
        email["In-Reply-To"] = message_id(message, "firing")
        email["References"] = message_id(message, "firing")
    email.set_content(message.text + "\n")
    return email
