"""Intake: orders registered from the CLI, CSV files and the inbox; ids checked per provider;
registering twice is harmless; a bad inbox file is rejected whole with a reason file.

Whatever is wrong with one inbox file (a 200,000-character field, binary content, bytes that are
not UTF-8, NUL characters, ragged rows, a file too big or unreadable) rejects that file only,
with a reason naming the line and never echoing a long value; the files after it are registered.
Excel's "CSV UTF-8" (a byte-order mark), CRLF line endings and loosely written header names
("Provider", " order_id ") are accepted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline import intake
from pipeline.intake import (
    IntakeError,
    IntakeResult,
    make_order,
    process_inbox,
    read_orders_csv,
    register,
)
from pipeline.model import TrackedOrder
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


FIRST_CSV = "provider,order_id\nbaanx,first_1\n"
THIRD_CSV = "provider,order_id\nbaanx,third_3\n"
HUGE_FIELD = "x" * 200_000
BAD_FILES: dict[str, tuple[bytes, str]] = {
    # name: (content, what its reason must say)
    "oversize_field": (
        f"provider,order_id,service\nbaanx,abcd_1234,\n baanx,ok_2,{HUGE_FIELD}\n".encode(),
        "line 3, column 3 ('service')",
    ),
    "oversize_quoted_multiline": (
        f'provider,order_id\nbaanx,"a\n{HUGE_FIELD}"\n'.encode(),
        "line 2, column 2 ('order_id')",
    ),
    "binary_garbage": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64, "line 1: not UTF-8"),
    "latin1": (
        "provider,order_id,country\nbaanx,ok_1,Norway\nbaanx,ok_2,Tromsø\n".encode("latin-1"),
        "line 3: not UTF-8",
    ),
    "nul_bytes": (b"provider,order_id\nbaanx,ok_1\nbaanx,ok\x00_2\n", "line 3: contains a NUL"),
    "ragged_row": (b"provider,order_id\nbaanx,ok_1\nbaanx,ok_2,extra,more\n", "line 3: 4 fields"),
    "unclosed_quote": (b'provider,order_id\nbaanx,ok_1\nbaanx,"ok_2\n', "line 3"),
    "empty": (b"", "missing column(s) provider, order_id"),
}


def _order_ids(warehouse: Warehouse) -> list[str]:
    return warehouse.read("SELECT order_id FROM orders ORDER BY order_id")["order_id"].to_list()


def _inbox_around(tmp_path: Path, middle: bytes) -> Path:
    """An inbox of three files, the middle one holding `middle`."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a_first.csv").write_text(FIRST_CSV)
    (inbox / "b_middle.csv").write_bytes(middle)
    (inbox / "c_third.csv").write_text(THIRD_CSV)
    return inbox


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_a_bad_inbox_file_is_rejected_and_the_others_registered(
    kind: str, warehouse: Warehouse, tmp_path: Path
) -> None:
    content, must_say = BAD_FILES[kind]
    inbox = _inbox_around(tmp_path, content)
    outcomes = {path.name: outcome for path, outcome in process_inbox(warehouse, inbox)}
    assert isinstance(outcomes["a_first.csv"], IntakeResult)
    assert isinstance(outcomes["c_third.csv"], IntakeResult)
    assert _order_ids(warehouse) == ["first_1", "third_3"]  # nothing of the middle file
    assert (inbox / "processed" / "a_first.csv").exists()
    assert (inbox / "processed" / "c_third.csv").exists()
    assert (inbox / "rejected" / "b_middle.csv").read_bytes() == content
    reason = (inbox / "rejected" / "b_middle.reason.txt").read_text()
    assert must_say in reason
    assert reason.strip() == outcomes["b_middle.csv"]
    assert "x" * 100 not in reason and len(reason) < 1_000  # long values are cut
    assert not list(inbox.glob("*.csv"))


def test_a_file_over_the_size_cap_is_rejected_unread(
    warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(intake, "MAX_FILE_BYTES", 1_000)
    inbox = _inbox_around(tmp_path, b"provider,order_id\n" + b"baanx,ok_1\n" * 200)
    outcomes = {path.name: outcome for path, outcome in process_inbox(warehouse, inbox)}
    assert _order_ids(warehouse) == ["first_1", "third_3"]
    assert "larger than" in (inbox / "rejected" / "b_middle.reason.txt").read_text()
    assert isinstance(outcomes["b_middle.csv"], str)


def test_an_unreadable_file_is_rejected(
    warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = _inbox_around(tmp_path, b"provider,order_id\nbaanx,ok_1\n")
    (inbox / "d_folder.csv").mkdir()  # not a file at all
    if os.geteuid() == 0:  # root reads anything: make the read fail as it would for others
        real_open = Path.open

        def deny(path: Path, *args: Any, **kwargs: Any) -> Any:
            if path.name == "b_middle.csv":
                raise PermissionError(13, "Permission denied")
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(Path, "open", deny)
    else:
        (inbox / "b_middle.csv").chmod(0)
    process_inbox(warehouse, inbox)
    assert _order_ids(warehouse) == ["first_1", "third_3"]
    reason = (inbox / "rejected" / "b_middle.reason.txt").read_text()
    assert reason == "could not read the file: Permission denied\n"
    assert (inbox / "rejected" / "d_folder.reason.txt").read_text() == "not a regular file\n"


def test_a_file_that_vanishes_does_not_stop_the_others(
    warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = _inbox_around(tmp_path, b"provider,order_id\nbaanx,ok_1\n")
    read = intake.read_orders_file

    def read_but_lose_the_middle(path: Path) -> list[TrackedOrder]:
        if path.name == "b_middle.csv":
            path.unlink()  # as if someone moved it away meanwhile
        return read(path)

    monkeypatch.setattr(intake, "read_orders_file", read_but_lose_the_middle)
    outcomes = {path.name: outcome for path, outcome in process_inbox(warehouse, inbox)}
    assert outcomes["b_middle.csv"] == "the file vanished before it could be read"
    assert _order_ids(warehouse) == ["first_1", "third_3"]


def test_a_rejected_file_that_cannot_be_moved_stays_with_its_reason_returned(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    inbox = _inbox_around(tmp_path, b"provider,order_id\naltinn,nope\n")
    (inbox / "rejected").write_text("a file where the folder should be")
    outcomes = {path.name: outcome for path, outcome in process_inbox(warehouse, inbox)}
    assert isinstance(outcomes["b_middle.csv"], str) and "line 2" in outcomes["b_middle.csv"]
    assert "could not move it" in outcomes["b_middle.csv"]
    assert (inbox / "b_middle.csv").exists()
    assert _order_ids(warehouse) == ["first_1", "third_3"]


def test_excel_csv_utf8_crlf_and_loose_headers_are_accepted(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "excel.csv").write_bytes(
        b"\xef\xbb\xbfprovider,order_id,country\r\nbaanx,bom_1,Norway\r\nbaanx,bom_2,\r\n"
    )
    (inbox / "loose.csv").write_bytes(
        b" Provider , ORDER_ID ,Order_Kind\r\n\r\nsms4sats,7dc6e6b6c83318,sms_send\r\n"
    )
    outcomes = {path.name: outcome for path, outcome in process_inbox(warehouse, inbox)}
    assert outcomes == {
        "excel.csv": IntakeResult(new=2, already_tracked=0),
        "loose.csv": IntakeResult(new=1, already_tracked=0),
    }
    assert _order_ids(warehouse) == ["7dc6e6b6c83318", "bom_1", "bom_2"]
    country = warehouse.read("SELECT country FROM orders WHERE order_id = 'bom_1'")
    assert country["country"].item() == "Norway"  # no stray "\r"


def test_a_bom_survives_text_decoded_as_plain_utf8() -> None:
    text = b"\xef\xbb\xbfprovider,order_id\r\nbaanx,bom_1\r\n".decode("utf-8")
    assert [o.order_id for o in read_orders_csv(text)] == ["bom_1"]


def test_reasons_never_echo_long_values() -> None:
    long_kind = "k" * 3_000
    bad = (
        "provider,order_id,order_kind,created_at\n"
        f"baanx,ok_1,{long_kind},\nbaanx,ok_2,,{long_kind}\n"
    )
    with pytest.raises(IntakeError) as raised:
        read_orders_csv(bad)
    assert [r.split(":")[0] for r in raised.value.reasons] == ["line 2", "line 3"]
    assert all(len(reason) < 200 for reason in raised.value.reasons)
