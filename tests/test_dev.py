"""`pipeline dev` (what `make dev` runs): the sandbox with a workload plus the Dagster UI and
daemon; the schedule is on by default, so every provider's observations asset materializes within
about two minutes; SIGINT (Ctrl-C) stops every process it started."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from pipeline.commands import processes
from pipeline.providers.registry import PROVIDERS

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MATERIALIZED_WITHIN_S = 180.0
QUERY = "{ assetNodes { assetKey { path } assetMaterializations(limit: 1) { timestamp } } }"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _materialized(url: str) -> set[str]:
    try:
        response = httpx.post(f"{url}/graphql", json={"query": QUERY}, timeout=30)
        nodes = response.json()["data"]["assetNodes"]
    except (httpx.HTTPError, KeyError, TypeError, ValueError):
        return set()
    return {"/".join(n["assetKey"]["path"]) for n in nodes if n["assetMaterializations"]}


def test_dev_materializes_every_provider_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    ui_port, sandbox_port = _free_port(), _free_port()
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(
        (PROJECT_ROOT / "dagster_home" / "dagster.yaml").read_text()
    )
    dev = processes.start(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "dev",
            "--port",
            str(ui_port),
            "--sandbox-port",
            str(sandbox_port),
            "--workload-rate",
            "12",
        ],
        env={"DAGSTER_HOME": str(dagster_home), "PIPELINE_DATA_DIR": str(tmp_path / "data")},
        quiet=True,
    )
    url = f"http://127.0.0.1:{ui_port}"
    wanted = {f"observations/{slug}" for slug in PROVIDERS}
    try:
        deadline = time.monotonic() + MATERIALIZED_WITHIN_S
        seen: set[str] = set()
        while time.monotonic() < deadline and not wanted <= seen:
            assert dev.poll() is None, "pipeline dev exited early"
            time.sleep(5)
            seen = _materialized(url)
        assert wanted <= seen, f"materialized so far: {sorted(seen)}"
        dev.send_signal(signal.SIGINT)  # Ctrl-C reaches the foreground process
        dev.wait(timeout=60)
    finally:
        if dev.poll() is None:
            processes.stop(dev)
    assert dev.returncode == 0
    assert not processes.group_alive(dev.pid)
    for port in (ui_port, sandbox_port):  # nothing it started still listens
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import socket; socket.create_connection(('127.0.0.1', {port}), 1)",
            ],
            capture_output=True,
        )
        assert probe.returncode != 0
