"""`pipeline track --csv` accepts what Excel writes as "CSV UTF-8": a byte-order mark before the
header, CRLF line endings, and header names in another case or with spaces around them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pipeline.warehouse import Warehouse


def test_track_csv_accepts_excel_csv_utf8(tmp_path: Path) -> None:
    csv = tmp_path / "orders.csv"
    csv.write_bytes(
        b"\xef\xbb\xbfProvider, Order_ID ,country\r\nbaanx,excel_1,Norway\r\nbaanx,excel_2,\r\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "track", "--csv", str(csv)],
        capture_output=True,
        text=True,
        env={"PIPELINE_DATA_DIR": str(tmp_path), "PATH": ""},
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "registered 2 new" in done.stdout
    stored = Warehouse(tmp_path / "warehouse.duckdb").read(
        "SELECT order_id, country FROM orders ORDER BY order_id"
    )
    assert stored.rows() == [("excel_1", "Norway"), ("excel_2", None)]
