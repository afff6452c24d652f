"""Each fault switch produces its fault, per provider and endpoint kind, deterministically under
a seed: 5xx, 429 + Retry-After, latency, timeouts, truncated and invalid JSON, slow bodies,
schema drift (rename / missing / extra / wrong type), unknown statuses and outage windows.
Also the scenario format: shipped scenarios load, bad ones are refused, and switching at runtime.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from pipeline.simulator.app import Sandbox, SandboxConfig
from pipeline.simulator.faults import (
    FaultRule,
    Scenario,
    js_literal,
    load_scenario,
    scenario_names,
)

SHIPPED = {"none", "flaky", "outage", "drift", "storm", "timeouts", "chaos", "latency"}


def only(provider: str, **rule: Any) -> Scenario:
    """A scenario with one rule for one provider."""
    return Scenario("test", providers={provider: (FaultRule(**rule),)})


def test_server_error_uses_each_providers_error_body(make_harness) -> None:
    bodies = {
        "sms4sats": (
            "/sms4sats/orderstatus?orderId=x",
            {"status": "error", "reason": "unable to save data"},
        ),
        "smsonline": (
            "/smsonline/v3/numbers/u/order/1",
            {"ok": False, "errorMessage": "Internal server error"},
        ),
        "baanx": ("/baanx/v1/order/x", {"error": "Internal Server Error"}),
    }
    for provider, (path, body) in bodies.items():
        h = make_harness(faults=only(provider, kind="server_error", rate=1.0, status=503))
        response = h.client.get(path)
        assert (response.status_code, response.json()) == (503, body)
    h = make_harness(faults=only("altinn", kind="server_error", rate=1.0))
    response = h.client.get("/altinn/notifications/api/v1/orders/x/status")
    assert response.status_code == 500 and response.content == b""


def test_rate_limit_fault_is_429_with_retry_after(make_harness) -> None:
    h = make_harness(faults=only("baanx", kind="rate_limit", rate=1.0, retry_after_s=7))
    response = h.client.get("/baanx/v1/order/x")
    assert response.status_code == 429 and response.headers["retry-after"] == "7"


def test_latency_and_timeout_delay_the_answer(make_harness) -> None:
    h = make_harness(faults=only("sms4sats", kind="latency", rate=1.0, delay_s=(0.5, 1.5)))
    order_id = h.create("sms4sats")
    h.sleeps.calls.clear()
    assert h.status("sms4sats", order_id).status_code == 200
    assert len(h.sleeps.calls) == 1 and 0.5 <= h.sleeps.calls[0] <= 1.5
    h = make_harness(faults=only("sms4sats", kind="timeout", rate=1.0, delay_s=(15.0, 15.0)))
    h.client.get("/sms4sats/orderstatus", params={"orderId": "x"})
    assert h.sleeps.calls == [15.0]


def test_truncated_json_is_a_prefix_that_does_not_parse(make_harness) -> None:
    clean = make_harness()
    order_id = clean.create("baanx")
    full = clean.status("baanx", order_id).content
    h = make_harness(faults=only("baanx", kind="truncated_json", rate=1.0))
    order_id = h.create("baanx")
    response = h.status("baanx", order_id)
    assert response.status_code == 200 and len(response.content) < len(full)
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


def test_invalid_json_modes(make_harness) -> None:
    h = make_harness(faults=only("sms4sats", kind="invalid_json", rate=1.0, mode="js_literal"))
    text = h.status("sms4sats", h.create("sms4sats")).text
    assert "status: 'OK'" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    h = make_harness(faults=only("sms4sats", kind="invalid_json", rate=1.0, mode="html"))
    assert h.status("sms4sats", h.create("sms4sats")).text.startswith("<html>")


def test_slow_body_trickles_out_the_same_bytes(make_harness) -> None:
    h = make_harness(faults=only("ordinalsbot", kind="slow_body", rate=1.0, delay_s=(2.0, 2.0)))
    order_id = h.create("ordinalsbot")
    h.sleeps.calls.clear()
    response = h.status("ordinalsbot", order_id)
    assert response.json()["id"] == order_id
    assert len(h.sleeps.calls) >= 2 and sum(h.sleeps.calls) == pytest.approx(2.0, abs=0.5)


@pytest.mark.parametrize(
    ("mode", "check"),
    [
        ("rename", lambda item: "status" not in item and "Status" in item),
        ("missing", lambda item: "status" not in item),
        ("extra", lambda item: item["status"] and item["extraField"] == "unexpected"),
        ("wrong_type", lambda item: isinstance(item["status"], list)),
    ],
)
def test_schema_drift_modes(make_harness, mode: str, check) -> None:
    h = make_harness(faults=only("smsonline", kind="drift", rate=1.0, mode=mode, field="status"))
    item = h.status("smsonline", h.create("smsonline")).json()["body"][0]
    assert check(item), item


def test_drift_renames_camel_case_to_snake_case(make_harness) -> None:
    h = make_harness(faults=only("baanx", kind="drift", rate=1.0, mode="rename", field="orderId"))
    body = h.status("baanx", h.create("baanx")).json()
    assert "order_id" in body and "orderId" not in body


def test_unknown_status_replaces_the_status_field(make_harness) -> None:
    paths = {
        "ordinalsbot": lambda b: b["state"],
        "baanx": lambda b: b["status"],
        "altinn": lambda b: b["processingStatus"]["status"],
        "smsonline": lambda b: b["body"][0]["status"],
    }
    for provider, read in paths.items():
        rule = {"kind": "unknown_status", "rate": 1.0, "values": ("on-hold",)}
        h = make_harness(faults=only(provider, **rule))
        assert read(h.status(provider, h.create(provider)).json()) == "on-hold"


def test_outage_windows_follow_the_clock(make_harness) -> None:
    h = make_harness(
        faults=only("baanx", kind="outage", windows=((60.0, 120.0),), endpoints=("all",))
    )
    order_id = h.create("baanx")
    assert h.status("baanx", order_id).status_code == 200
    h.advance(60)
    assert h.status("baanx", order_id).status_code == 503
    assert h.client.post("/baanx/v1/order", json={}).status_code == 503
    h.advance(60)
    assert h.status("baanx", order_id).status_code == 200


def test_periodic_outage() -> None:
    rule = FaultRule(kind="outage", every_s=300, duration_s=45, offset_s=60)
    assert [rule.in_outage(t) for t in (30, 60, 104, 105, 360, 420)] == [
        False,
        True,
        True,
        False,
        True,
        False,
    ]


def test_faults_hit_only_their_endpoint_kinds(make_harness) -> None:
    h = make_harness(faults=only("baanx", kind="server_error", rate=1.0))
    order_id = h.create("baanx")  # a create: not hit by a status-only rule
    assert h.order("baanx", order_id)
    assert h.status("baanx", order_id).status_code == 500


def test_bursts_hit_consecutive_requests(make_harness) -> None:
    h = make_harness(faults=only("sms4sats", kind="server_error", rate=0.02, burst=4))
    codes = [
        h.client.get("/sms4sats/orderstatus", params={"orderId": "x"}).status_code
        for _ in range(600)
    ]
    text = "".join("E" if code == 500 and h else "." for code in codes)
    assert "EEEE" in text


def test_same_seed_same_faults(make_harness) -> None:
    def sequence(seed: int) -> list[int]:
        h = make_harness(seed=seed, faults=only("baanx", kind="server_error", rate=0.3))
        order_id = h.create("baanx")
        return [h.status("baanx", order_id).status_code for _ in range(60)]

    first = sequence(5)
    assert first == sequence(5)
    assert 500 in first and 200 in first
    assert first != sequence(6)


def test_shipped_scenarios_load() -> None:
    assert set(scenario_names()) >= SHIPPED
    for name in SHIPPED:
        scenario = load_scenario(name)
        assert scenario.name == name
        assert Scenario.from_json(scenario.to_json()) == scenario


@pytest.mark.parametrize(
    "document",
    [
        {"providers": {"nobody": []}},
        {"providers": {"*": [{"kind": "meteor"}]}},
        {"providers": {"*": [{"kind": "latency", "rate": 2}]}},
        {"providers": {"*": [{"kind": "latency", "speed": 1}]}},
        {"providers": {"*": [{"kind": "outage"}]}},
        {"providers": {"*": [{"kind": "drift", "mode": "sideways"}]}},
    ],
)
def test_bad_scenarios_are_refused(document: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Scenario.from_json(document)


def test_scenario_from_a_file(tmp_path) -> None:
    path = tmp_path / "mine.json"
    path.write_text(
        json.dumps({"name": "mine", "providers": {"*": [{"kind": "latency", "rate": 1}]}})
    )
    assert load_scenario(str(path)).name == "mine"
    with pytest.raises(ValueError):
        load_scenario("no-such-scenario")


def test_switching_scenario_at_runtime(harness) -> None:
    order_id = harness.create("baanx")
    switched = harness.client.put("/_sandbox/faults", json={"scenario": "outage"})
    assert switched.status_code == 200 and switched.json()["scenario"]["name"] == "outage"
    document = only("baanx", kind="server_error", rate=1.0).to_json()
    assert harness.client.put("/_sandbox/faults", json=document).status_code == 200
    assert harness.status("baanx", order_id).status_code == 500
    shown = harness.client.get("/_sandbox/faults").json()
    assert shown["fired"]["baanx"]["server_error"] == 1
    assert harness.client.put("/_sandbox/faults", json={"scenario": "nope"}).status_code == 400


def test_stopping_cuts_fault_delays_short() -> None:
    sandbox = Sandbox(SandboxConfig())

    async def go() -> None:
        asyncio.get_running_loop().call_later(0.01, sandbox.begin_stop)
        await asyncio.wait_for(sandbox.pause(60.0), timeout=5.0)

    asyncio.run(go())


def test_js_literal_looks_like_the_docs() -> None:
    assert js_literal({"status": "OK", "paid": True}) == "{\n    status: 'OK',\n    paid: true,\n}"
