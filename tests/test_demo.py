"""`pipeline demo`, the first thing a new user runs: its core path at a shorter duration. It
starts the sandbox, runs the real Dagster assets, prints a summary for every provider, writes the
report and the published warehouse, and leaves no process behind."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from pipeline.commands.demo import _free_port
from pipeline.providers.registry import PROVIDERS
from pipeline.warehouse import Warehouse


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "demo",
            "--minutes",
            "0.5",
            "--rate",
            "30",
            "--data-dir",
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    summary = out[out.index("provider ") :]
    for provider in PROVIDERS:
        assert f"\n{provider} " in summary
    assert "truth" in summary.splitlines()[0]  # the sandbox's truth beside the estimate
    assert "report " in out and "demo: done" in out
    report = (data_dir / "reports" / "report.html").read_text()
    assert "data:image/svg+xml;base64," in report
    published = Warehouse(data_dir / "published" / "warehouse.duckdb")
    polled = published.read(
        "SELECT count(DISTINCT provider) AS n FROM observations WHERE error_class IS NULL",
        read_only=True,
    )
    assert polled["n"].item() == len(PROVIDERS)
    # Every derived table is built, the rollups behind the reliability figures too: each
    # provider's availability is in the table and in the summary's last column.
    reliability = published.read(
        "SELECT provider, availability FROM provider_reliability", read_only=True
    )
    assert sorted(reliability["provider"]) == sorted(PROVIDERS)
    assert reliability["availability"].null_count() == 0
    for provider in PROVIDERS:
        line = next(row for row in summary.splitlines() if row.startswith(f"{provider} "))
        assert line.rstrip().endswith("%"), line
    # The sandbox it started is gone: its port no longer answers.
    port = out.split("sandbox on http://127.0.0.1:")[1].split(" ")[0]
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import socket; socket.create_connection(('127.0.0.1', {port}), 1)",
        ],
        capture_output=True,
    )
    assert probe.returncode != 0


def test_demo_refuses_a_directory_it_did_not_create(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("not demo data")
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "demo", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert (tmp_path / "precious.txt").exists()


def test_the_sandbox_port_a_finished_demo_left_waiting_is_used_again() -> None:
    """The side that closes a connection first keeps its port in TIME_WAIT for a minute: a
    demo run straight after another still gets the usual port, and a listened one is left."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        assert _free_port(port) != port  # still listening
        accepted.close()  # the server's side closes first: its port waits
        client.close()
    assert _free_port(port) == port
