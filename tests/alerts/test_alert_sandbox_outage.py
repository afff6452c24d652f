"""The scripted run of the issue: a sandbox outage for one provider, polled by the real poller,
delivers one firing message for that provider to a local webhook, and one recovery after the
sandbox is switched back; the other provider stays quiet.

Windows are shortened by configuration (20 s instead of 5 min) so the test takes about a minute;
everything else is the product as a cron user runs it: live sandbox on 127.0.0.1, `run_window`,
`evaluate_and_notify`, the status page.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from alert_support import WebhookReceiver
from live_sandbox import default_config, live_sandbox, track

from pipeline.alerts import AlertConfig, evaluate_and_notify, write_status_page
from pipeline.polling.client import Poller
from pipeline.polling.tick import run_window
from pipeline.providers.registry import ADAPTERS
from pipeline.settings import Settings
from pipeline.simulator.faults import NO_FAULTS, Scenario
from pipeline.warehouse import Warehouse

WINDOW_S = 20
OUTAGE = Scenario.from_json(
    {
        "name": "smsonline-down",
        "providers": {"smsonline": [{"kind": "outage", "windows": [[0, 1e9]]}]},
    }
)


def _config(receiver: WebhookReceiver, data_dir: Path) -> AlertConfig:
    return AlertConfig.from_env(
        {
            "PIPELINE_ALERTS_WEBHOOK_URL": receiver.url("/hook"),
            "PIPELINE_ALERTS_AVAILABILITY_PAGE_WINDOW_S": str(WINDOW_S),
            "PIPELINE_ALERTS_AVAILABILITY_TICKET_ENABLED": "false",
            "PIPELINE_ALERTS_TIME_TO_CODE_ENABLED": "false",
            "PIPELINE_ALERTS_EXPIRY_ENABLED": "false",
            "PIPELINE_ALERTS_RETRY_BACKOFF_S": "0.05",
        },
        data_dir=data_dir,
    )


@pytest.mark.slow
def test_an_outage_sends_one_firing_and_one_recovery_message(
    tmp_path: Path, receiver: WebhookReceiver
) -> None:
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    config = _config(receiver, tmp_path)
    # Realistic lifecycles: orders stay open (codes take about a minute), so polls keep coming.
    with live_sandbox(default_config(profile="realistic")) as live:
        settings = Settings.from_env(
            {"PIPELINE_SANDBOX_URL": live.url, "PIPELINE_DATA_DIR": str(tmp_path)}
        )
        track(warehouse, live.url, {"smsonline": 12, "baanx": 6})

        def poll(seconds: float) -> None:
            async def main() -> None:
                adapters = {slug: ADAPTERS[slug] for slug in ("smsonline", "baanx")}
                async with Poller(settings, adapters) as poller:
                    await run_window(warehouse, poller, duration_s=seconds, tick_s=2.0)

            asyncio.run(main())

        live.sandbox.set_scenario(OUTAGE)
        poll(WINDOW_S + 5)
        down = [evaluate_and_notify(warehouse, config) for _ in range(3)]
        live.sandbox.set_scenario(NO_FAULTS)
        poll(WINDOW_S + 5)
        up = [evaluate_and_notify(warehouse, config) for _ in range(3)]
    assert ("smsonline", "availability", "page") in down[0].firing
    assert not up[-1].firing
    messages = receiver.bodies("/hook")
    assert [(m["provider"], m["rule"], m["state"]) for m in messages] == [
        ("smsonline", "availability", "firing"),
        ("smsonline", "availability", "resolved"),
    ]
    recorded = warehouse.read(
        "SELECT provider, rule, state, delivered, target FROM alerts ORDER BY created_at"
    )
    assert recorded.rows() == [
        ("smsonline", "availability", "firing", True, "webhook#1"),
        ("smsonline", "availability", "resolved", True, "webhook#1"),
    ]
    page = write_status_page(warehouse, config.status_dir)
    assert "SMSOnline" in page.index.read_text()
    badge = json.loads(page.badges["smsonline"].read_text())
    assert badge["schemaVersion"] == 1
    assert receiver.url("/hook") not in page.index.read_text()
