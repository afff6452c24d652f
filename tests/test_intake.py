"""Intake: orders registered from the CLI, CSV files and the inbox; ids checked per provider;
registering twice is harmless; a bad inbox file is rejected whole with a reason file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.intake import IntakeError, make_order, process_inbox, read_orders_csv, register
from pipeline.warehouse import Warehouse

GOOD_CSV = """provider,order_id,order_kind,created_at,service,country
sms4sats,7dc6e6b6c83318,sms_send,2026-01-01T12:00:00Z,,
altinn,f1a1cc30-197f-4f34-8304-006ce4945fd1,,,Email,
smsonline,20046875,,2025-05-17T05:47:13+00:00,Discord,United States
"""


def test_ids_are_checked_per_provider() -> None:
    with pytest.raises(IntakeError, match=r"(?i)guid|uuid"):
        make_order("altinn", "not-a-guid")
    with pytest.raises(IntakeError, match="digits"):
        make_order("smsonline", "abc")
    with pytest.raises(IntakeError, match="unknown provider"):
        make_order("acme", "1")
    with pytest.raises(IntakeError, match="order kind"):
        make_order("baanx", "abcd_1234", order_kind="sms_send")
    assert make_order("baanx", "abcd_1234").order_kind == "product_order"


def test_registering_twice_is_harmless(warehouse: Warehouse) -> None:
    orders = read_orders_csv(GOOD_CSV)
    first = register(warehouse, orders, source="csv")
    again = register(warehouse, orders, source="csv")
    assert (first.new, first.already_tracked) == (3, 0)
    assert (again.new, again.already_tracked) == (0, 3)
    kinds = warehouse.read("SELECT provider, order_kind FROM orders ORDER BY provider").rows()
    assert kinds == [
        ("altinn", "notification_order"),
        ("sms4sats", "sms_send"),
        ("smsonline", "sms_receive"),
    ]


def test_a_bad_csv_names_every_bad_line() -> None:
    bad = "provider,order_id\nbaanx,abcd_1234\naltinn,nope\nsmsonline,12x\n"
    with pytest.raises(IntakeError) as raised:
        read_orders_csv(bad)
    assert [r.split(":")[0] for r in raised.value.reasons] == ["line 3", "line 4"]


def test_inbox_files_are_registered_then_moved_aside(warehouse: Warehouse, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "good.csv").write_text(GOOD_CSV)
    (inbox / "bad.csv").write_text("provider,order_id\naltinn,nope\nbaanx,ok_1\n")
    outcomes = dict((path.name, outcome) for path, outcome in process_inbox(warehouse, inbox))
    assert not isinstance(outcomes["good.csv"], str) and outcomes["good.csv"].new == 3
    assert isinstance(outcomes["bad.csv"], str) and "line 2" in outcomes["bad.csv"]
    assert (inbox / "processed" / "good.csv").exists()
    assert (inbox / "rejected" / "bad.csv").exists()
    assert "line 2" in (inbox / "rejected" / "bad.reason.txt").read_text()
    assert not list(inbox.glob("*.csv"))
    # Nothing from the rejected file was registered, not even its good line.
    assert (
        warehouse.read("SELECT count(*) AS n FROM orders WHERE provider = 'baanx'")["n"].item() == 0
    )


def test_track_command_registers_and_explains_refusals(tmp_path: Path) -> None:
    env = {"PIPELINE_DATA_DIR": str(tmp_path), "PATH": ""}

    def track(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "track", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=60,
        )

    first = track("baanx", "abcd_1234")
    assert first.returncode == 0 and "registered 1 new" in first.stdout
    again = track("baanx", "abcd_1234")
    assert "0 new" in again.stdout and "1 already tracked" in again.stdout
    csv = tmp_path / "orders.csv"
    csv.write_text(GOOD_CSV)
    assert "registered 3 new" in track("--csv", str(csv)).stdout
    refused = track("altinn", "not-a-guid")
    assert refused.returncode == 1 and "not registered" in refused.stdout
    stored = Warehouse(tmp_path / "warehouse.duckdb").read("SELECT count(*) AS n FROM orders")
    assert stored["n"].item() == 4
