"""Shared by the declared-provider tests: a generic declaration (`ACME`) that uses what Baanx and
5SIM do not (query and header credentials, nested list paths, epoch times, 200-with-error bodies,
hashed fields), the paths of the other declarations, and helpers that write variants."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
BAANX_TOML = HERE / "baanx.toml"
FIVESIM_TOML = HERE.parents[2] / "pipeline" / "providers" / "declared" / "fivesim.toml"
FIVESIM_FIXTURES = HERE.parents[1] / "fixtures" / "fivesim"

ACME = """\
slug = "acme"
display_name = "Acme Notify"
family = "notifications"
order_kinds = ["notification_order"]
id_pattern = "[A-Za-z0-9-]{1,40}"
id_hint = "a UUID"
colour = "#009E73"
sources = ["https://acme.example/docs/messages#status"]

[[credentials]]
variable = "ACME_API_KEY"
name = "api_key"
sandbox_value = "sandbox-acme-key"

[[credentials]]
variable = "ACME_ACCOUNT"
name = "account"
sandbox_value = "sandbox-acme-account"

[policy]
cadence_s = { pending = 2, processing = 4 }
default_cadence_s = 5
terminal_grace_s = 30
max_tracking_age_s = 600
rate_limit_per_minute = 120

[[expiry_windows]]
order_kind = "notification_order"
window_s = 300
note = "ttl of an undelivered message"

[event_time]
column = "provider_updated_at"
states = ["completed", "failed", "expired"]

[request]
path = "/api/messages"
query = { id = "{order_id}" }

[[request.auth]]
kind = "query"
credential = "api_key"
name = "key"

[[request.auth]]
kind = "header"
credential = "account"
name = "X-Account"

[status]
path = "data.items.0.state"
substatus = "data.items.0.reason"
map.queued = "pending"
map.sending = "processing"
map.delivered = "completed"
map.undelivered = "failed"

[[status.rules]]
status = "undelivered"
path = "data.items.0.reason"
one_of = ["expired", "ttl"]
state = "expired"

[times]
provider_created_at = { path = "data.items.0.created", format = "epoch_s" }
provider_updated_at = { path = "data.items.0.updated_ms", format = "epoch_ms" }

[fields]
phone = "data.items.0.to"
service = "data.items.0.channel"
amount = "data.items.0.cost"
amount_unit = "acme_credit"

[paid]
path = "data.items.0.billed"

[errors.http]
402 = "forbidden"

[[errors.body]]
path = "ok"
equals = false
message = "error.text"
prefix = "ok=false"

[[errors.body]]
path = "error.code"
equals = "BAD_KEY"
class = "auth_invalid"

[redactions]
to = "phone"
account_ref = "hash"

[sandbox]
ids = { kind = "uuid" }
create = { method = "POST", path = "/api/messages", id_path = "data.items.0.id" }
unknown_order = { status = 200, body = { ok = false, error = { text = "message not found" } } }

[sandbox.body]
ok = true

[[sandbox.body.data.items]]
id = "{order_id}"
to = "{phone}"
channel = "{service}"
created = "{created:epoch_s}"
updated_ms = "{changed:epoch_ms}"
cost = 0.05
billed = true

[sandbox.services]
sms = { weight = 2, success = 0.9 }
email = { weight = 3, speed = 0.5 }

[sandbox.lifecycles.notification_order]
start = "queued"
window_s = 300
on_window = "ttl"

[sandbox.lifecycles.notification_order.phases.queued]
status = "queued"
state = "pending"
outcomes = [{ to = "sending", share = 1.0, after = { uniform = [1, 5] } }]

[sandbox.lifecycles.notification_order.phases.sending]
status = "sending"
state = "processing"
outcomes = [
  { to = "delivered", share = 0.8, after = { lognormal = [20, 0.5] } },
  { to = "bounced", share = 0.1, after = { fixed = 15 } },
]

[sandbox.lifecycles.notification_order.phases.delivered]
status = "delivered"
state = "completed"

[sandbox.lifecycles.notification_order.phases.bounced]
status = "undelivered"
state = "failed"
substatus = "bounced"

[sandbox.lifecycles.notification_order.phases.ttl]
status = "undelivered"
state = "expired"
substatus = "ttl"
"""


def write_declaration(folder: Path, text: str, name: str = "acme.toml") -> Path:
    """Write `text` as `folder/name`; returns the path."""
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def acme_variant(*replacements: tuple[str, str], append: str = "") -> str:
    """The `ACME` text with each (old, new) replaced once (old must occur) and `append` added."""
    text = ACME
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text + append
