"""`pipeline poll`, for cron users and debugging: registers inbox files, polls what is due
against the sandbox over loopback TCP, and prints a per-provider summary."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from live_sandbox import create_orders, live_sandbox

from pipeline.providers.registry import PROVIDERS


def test_poll_once_registers_the_inbox_and_summarises_per_provider(tmp_path: Path) -> None:
    with live_sandbox() as live:
        orders = create_orders(live.url, dict.fromkeys(PROVIDERS, 1))
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        rows = [f"{o.provider},{o.order_id},{o.order_kind}" for o in orders]
        (inbox / "new.csv").write_text("provider,order_id,order_kind\n" + "\n".join(rows) + "\n")
        done = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "poll", "--once"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env={"PIPELINE_DATA_DIR": str(tmp_path), "PIPELINE_SANDBOX_URL": live.url},
        )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "inbox new.csv" in done.stdout
    table = {line.split()[0]: line.split() for line in done.stdout.splitlines() if line.strip()}
    for provider in PROVIDERS:
        due, polled, asks, ok = (int(x) for x in table[provider][1:5])
        assert (due, polled, asks, ok) == (1, 1, 1, 1), table[provider]
    assert f"stored {len(PROVIDERS)} observation(s)" in done.stdout
