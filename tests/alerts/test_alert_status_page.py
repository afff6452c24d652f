"""The status page: each provider's state (down while a paging incident is open, degraded while
another is, no data when unpolled, else operational), availability per window, SLO budgets and
incidents, in one offline HTML file with every text escaped, and a shields.io endpoint badge per
provider."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path

from alert_support import NOW, config, polls, write

from pipeline.alerts import evaluate_and_notify, write_status_page
from pipeline.model import Observation
from pipeline.providers.registry import get_spec
from pipeline.warehouse import Warehouse

MINUTE = timedelta(minutes=1)
EVIL = '<script>alert("x")</script> & Baanx'


def _unrecognised_every_fifth(provider: str, kind: str) -> list[Observation]:
    found = polls(provider, NOW - 60 * MINUTE, NOW, 10, order_kind=kind)
    return [
        dataclasses.replace(
            o, state="unknown", provider_status="TELEPORTED", status_unrecognized=True
        )
        if i % 5 == 0
        else o
        for i, o in enumerate(found)
    ]


def test_page_and_badges_show_each_state_escaped(warehouse: Warehouse, tmp_path: Path) -> None:
    specs = {
        "baanx": dataclasses.replace(get_spec("baanx"), display_name=EVIL),
        "altinn": get_spec("altinn"),
        "ordinalsbot": get_spec("ordinalsbot"),
        "smsonline": get_spec("smsonline"),
    }
    write(warehouse, polls("baanx", NOW - 60 * MINUTE, NOW - 5 * MINUTE, 10))
    write(warehouse, polls("baanx", NOW - 5 * MINUTE, NOW, 10, failing=True))
    write(warehouse, _unrecognised_every_fifth("altinn", "notification_order"))
    write(
        warehouse,
        polls("smsonline", NOW - 60 * MINUTE, NOW, 10, order_id="7001", order_kind="sms_receive"),
    )
    run = evaluate_and_notify(warehouse, config(tmp_path), NOW, specs=specs)
    assert set(run.firing) == {
        ("baanx", "availability", "page"),
        ("altinn", "unknown_status_rate", "ticket"),
    }

    page = write_status_page(warehouse, tmp_path / "status", now=NOW, specs=specs)

    states = {p.slug: p.state for p in page.providers}
    assert states == {
        "baanx": "down",
        "altinn": "degraded",
        "ordinalsbot": "no data",
        "smsonline": "operational",
    }
    assert page.index == tmp_path / "status" / "index.html"
    html = page.index.read_text()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Baanx" in html
    assert "http" not in html.replace("http-equiv", "")  # nothing loads from outside
    assert "availability 0.0 % over 5 min" in html  # the open incident's reading
    assert "unknown_status_rate" in html and "time_to_code" in html  # incidents and SLOs

    badges = {slug: json.loads(path.read_text()) for slug, path in page.badges.items()}
    assert badges["baanx"] == {"schemaVersion": 1, "label": EVIL, "message": "down", "color": "red"}
    assert badges["altinn"]["message"] == "degraded" and badges["altinn"]["color"] == "yellow"
    assert badges["ordinalsbot"]["color"] == "lightgrey"
    assert badges["smsonline"] == {
        "schemaVersion": 1,
        "label": "SMSOnline",
        "message": "operational",
        "color": "brightgreen",
    }
    assert sorted(p.name for p in (tmp_path / "status").iterdir()) == [
        "altinn.json",
        "baanx.json",
        "index.html",
        "ordinalsbot.json",
        "smsonline.json",
    ]
