"""The sandbox's own endpoints and ground truth: `/_sandbox/orders` lists what the pipeline needs
to poll, `/_sandbox/truth` gives true transition times so far, the truth JSONL is written once an
order is final (or when the sandbox stops), and memory stays bounded by evicting old orders.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from pipeline.model import OrderState
from pipeline.providers.registry import PROVIDERS
from pipeline.simulator.truth import read_truth

ORDER_KEYS = {"provider", "order_id", "order_kind", "created_at", "service", "country", "poll_path"}


def test_orders_lists_every_provider_with_what_polling_needs(harness) -> None:
    ids = {provider: harness.create(provider) for provider in PROVIDERS}
    listing = harness.client.get("/_sandbox/orders").json()
    assert listing["count"] == len(PROVIDERS)
    by_provider = {entry["provider"]: entry for entry in listing["orders"]}
    for provider, order_id in ids.items():
        entry = by_provider[provider]
        assert set(entry) == ORDER_KEYS
        assert entry["order_id"] == order_id
        assert datetime.fromisoformat(entry["created_at"].replace("Z", "+00:00")).tzinfo
        # The poll path answers (with credentials added where the provider needs them).
        assert order_id in entry["poll_path"] and entry["poll_path"].startswith(f"/{provider}/")
    assert by_provider["sms4sats"]["order_kind"] == "sms_receive"
    assert by_provider["smsonline"]["country"] == "United States"
    assert by_provider["altinn"]["service"] == "Email"
    only = harness.client.get("/_sandbox/orders", params={"provider": "baanx"}).json()
    assert [e["provider"] for e in only["orders"]] == ["baanx"]
    last = harness.client.get("/_sandbox/orders", params={"limit": 2}).json()
    assert last["count"] == 2
    assert harness.client.get("/_sandbox/orders", params={"since": "yesterday"}).status_code == 400


def test_truth_shows_transitions_up_to_now(harness) -> None:
    order = harness.find("sms4sats", lambda t: "code" in t.milestones)
    order_id = order.truth.order_id
    first = harness.client.get("/_sandbox/truth", params={"order_id": order_id}).json()
    [record] = first["orders"]
    assert [t["state"] for t in record["transitions"]] == [OrderState.PENDING]
    assert record["is_terminal"] is False
    harness.at_milestone(order, "code")
    [record] = harness.client.get("/_sandbox/truth", params={"order_id": order_id}).json()["orders"]
    assert record["state"] == OrderState.CODE_RECEIVED and record["is_terminal"] is True
    assert record["transitions"][-1]["at"] == order.truth.milestones["code"].strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ"
    )
    assert (
        record["transitions"][-1]["provider_status"]
        == "paid=true;number=true;code=true;error=false"
    )


def test_truth_jsonl_is_written_when_orders_are_final(make_harness, tmp_path: Path) -> None:
    path = tmp_path / "sandbox" / "truth.jsonl"
    h = make_harness(truth_path=path)
    done = h.find("baanx", lambda t: t.final.provider_status == "COMPLETED")
    h.advance(1)
    assert h.sandbox.flush_truth() == 0
    h.at_milestone(done, "paid")
    written = h.sandbox.flush_truth()
    assert written >= 1
    records = read_truth(path)
    record = records[("baanx", done.truth.order_id)]
    assert record["is_final"] is True and record["state"] == OrderState.COMPLETED
    assert h.client.post("/_sandbox/truth/flush").json() == {"written": 0}
    # Stopping writes the rest, open ones marked as not final.
    open_count = len(h.sandbox.orders) - len(records)
    assert h.sandbox.flush_truth(closing=True) == open_count
    lines = path.read_text().splitlines()
    assert len(lines) == len(h.sandbox.orders)
    assert all("recorded_at" in json.loads(line) for line in lines)


def test_cancelled_orders_are_written_again(make_harness, tmp_path: Path) -> None:
    path = tmp_path / "truth.jsonl"
    h = make_harness(truth_path=path)
    order_id = h.create("altinn")
    h.sandbox.flush_truth(closing=True)
    h.client.put(
        f"/altinn/notifications/api/v1/orders/{order_id}/cancel",
        headers={"Authorization": "Bearer sandbox-altinn-token"},
    )
    h.sandbox.flush_truth()
    assert read_truth(path)[("altinn", order_id)]["state"] == OrderState.CANCELLED


def test_memory_is_bounded_by_evicting_old_terminal_orders(make_harness, tmp_path: Path) -> None:
    path = tmp_path / "truth.jsonl"
    h = make_harness(max_orders=20, truth_path=path)
    for _ in range(15):
        h.create("baanx")
    old = set(h.sandbox.orders)
    h.advance(3600)  # every Baanx order is terminal after its payment window
    for _ in range(10):
        h.create("baanx")
    assert len(h.sandbox.orders) <= 20
    evicted = old - set(h.sandbox.orders)
    assert len(evicted) == h.sandbox.evicted >= 5
    assert set(read_truth(path)) == evicted  # their truth was written before they went
    for _ in range(100):  # even open orders go past the hard cap
        h.create("baanx")
    assert len(h.sandbox.orders) <= 24


def test_health(harness) -> None:
    harness.create("sms4sats")
    body = harness.client.get("/_sandbox/health").json()
    assert body["status"] == "ok" and body["profile"] == "realistic" and body["orders"] == 1
    assert body["requests"]["sms4sats"] == 1
