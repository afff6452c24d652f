"""The Dagster UI: `dg dev` starts headless on 127.0.0.1, answers a GraphQL query listing the
asset graph, and stops cleanly when asked (its whole process group, daemon included).

`processes.stop` returns only once the whole group is gone, not just its leader: children that
outlive the leader by a while (as Dagster's daemon and code servers do under load) are waited
for, and killed after the grace period."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from pipeline.commands import processes

ASSET_QUERY = "{ assetNodes { assetKey { path } groupName } }"
START_TIMEOUT_S = 150.0
PROJECT_ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 30.0
UI_STOP_GRACE_S = 60.0
"""How long the UI may take to stop on SIGTERM: with both cores busy, its webserver, daemon and
code server took over the default 15 s to wind down. Stopping slowly is not stopping uncleanly."""

# A child that ignores SIGTERM, says it is ready, then lives for argv[2] seconds.
STUBBORN_CHILD = """
import pathlib, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
pathlib.Path(sys.argv[1]).write_text("ready")
time.sleep(float(sys.argv[2]))
"""
# A group leader that starts the stubborn child, then waits; SIGTERM ends it at once.
LEADER = """
import subprocess, sys, time
subprocess.Popen([sys.executable, "-c", sys.argv[1], *sys.argv[2:]])
time.sleep(600)
"""


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
        assert groups == {"ingestion", "history", "analytics", "reporting", "alerts"}
    finally:
        returncode = processes.stop(ui, grace_s=UI_STOP_GRACE_S)
    assert returncode != -signal.SIGKILL, "had to be killed: it did not stop on SIGTERM"
    assert not processes.group_alive(ui.pid)  # nothing it started is left behind


def _leader_with_stubborn_child(tmp_path: Path, child_lives_s: float) -> subprocess.Popen[bytes]:
    ready = tmp_path / "ready"
    leader = processes.start(
        [sys.executable, "-c", LEADER, STUBBORN_CHILD, str(ready), str(child_lives_s)]
    )
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not ready.exists():
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.05)
    return leader


def test_stop_waits_for_children_that_outlive_the_leader(tmp_path: Path) -> None:
    leader = _leader_with_stubborn_child(tmp_path, child_lives_s=1.5)
    started = time.monotonic()
    returncode = processes.stop(leader, grace_s=30.0)
    assert not processes.group_alive(leader.pid)
    assert returncode == -signal.SIGTERM  # the leader's own exit, not a kill
    assert 1.0 < time.monotonic() - started < 30.0  # it waited for the child, not the grace


def test_stop_kills_what_is_left_after_the_grace_period(tmp_path: Path) -> None:
    leader = _leader_with_stubborn_child(tmp_path, child_lives_s=60.0)
    started = time.monotonic()
    returncode = processes.stop(leader, grace_s=0.5)
    assert not processes.group_alive(leader.pid)
    assert returncode == -signal.SIGTERM
    assert time.monotonic() - started < 0.5 + processes.KILL_WAIT_S + 1.0


@pytest.mark.skipif(not processes.PROC.is_dir(), reason="needs /proc to tell zombies apart")
def test_a_group_of_zombies_is_not_alive() -> None:
    leader = processes.start([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + READY_TIMEOUT_S
    while processes.group_alive(leader.pid):  # dead but not reaped: a zombie of ours
        assert time.monotonic() < deadline, "the exited leader still counts as running"
        time.sleep(0.05)
    assert leader.poll() == 0
