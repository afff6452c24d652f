"""The Dagster UI: `dg dev` starts headless on 127.0.0.1, answers a GraphQL query listing the
asset graph, and stops cleanly when asked (its whole process group, daemon included)."""

from __future__ import annotations

import signal
import socket
import sys
from pathlib import Path

import httpx

from pipeline.commands import processes

ASSET_QUERY = "{ assetNodes { assetKey { path } groupName } }"
START_TIMEOUT_S = 150.0
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ui_serves_the_asset_graph_and_stops_cleanly(tmp_path: Path) -> None:
    port = _free_port()
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(
        (PROJECT_ROOT / "dagster_home" / "dagster.yaml").read_text()
    )
    env = {
        "DAGSTER_HOME": str(dagster_home),
        "PIPELINE_DATA_DIR": str(tmp_path / "data"),
        # An address where nothing listens: the test needs the UI, not the providers.
        "PIPELINE_SANDBOX_URL": f"http://127.0.0.1:{_free_port()}",
    }
    dg = str(Path(sys.executable).with_name("dg"))
    ui = processes.start([dg, "dev", "-h", "127.0.0.1", "-p", str(port)], env=env, quiet=True)
    try:
        url = f"http://127.0.0.1:{port}"
        processes.wait_for_http(f"{url}/server_info", timeout_s=START_TIMEOUT_S, process=ui)
        response = httpx.post(f"{url}/graphql", json={"query": ASSET_QUERY}, timeout=60)
        response.raise_for_status()
        nodes = response.json()["data"]["assetNodes"]
        keys = {"/".join(node["assetKey"]["path"]) for node in nodes}
        assert {
            "orders",
            "observations/sms4sats",
            "observations/altinn",
            "status_history",
            "time_to_code",
            "provider_reliability",
            "report",
        } <= keys
        groups = {node["groupName"] for node in nodes}
        assert groups == {"ingestion", "history", "analytics", "reporting"}
    finally:
        returncode = processes.stop(ui)
    assert returncode != -signal.SIGKILL, "had to be killed: it did not stop on SIGTERM"
    assert not processes.group_alive(ui.pid)  # nothing it started is left behind
