"""`pipeline simulator` over real loopback TCP: it starts, prints its URL, serves every provider
and the workload, and exits 0 within seconds of SIGTERM or SIGINT with truth and inbox written.
Bad arguments fail fast with exit code 2.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from pipeline.cli import main

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"simulator exited early with {process.returncode}")
        try:
            if httpx.get(url + "/_sandbox/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("simulator did not answer in time")


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_over_tcp_and_stops_cleanly(tmp_path: Path, stop_signal: int) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "pipeline.cli",
        "simulator",
        "--port",
        str(port),
        "--seed",
        "11",
        "--profile",
        "fast",
        "--workload-rate",
        "120",
        "--workload-providers",
        "baanx,altinn",
        "--inbox",
        str(tmp_path / "inbox"),
        "--truth",
        str(tmp_path / "truth.jsonl"),
    ]
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={"PIPELINE_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"},
    )
    try:
        wait_until_up(url, process)
        created = httpx.post(
            url + "/sms4sats/createorder", json={"country": 22, "service": "openAI"}
        )
        order_id = created.json()["orderId"]
        status = httpx.get(url + "/sms4sats/orderstatus", params={"orderId": order_id})
        assert status.status_code == 200 and status.json()["status"] == "OK"
        unknown = httpx.get(url + "/baanx/v1/order/nope", headers={"X-Client-ID": "x"})
        assert unknown.status_code == 498
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            listed = httpx.get(url + "/_sandbox/orders").json()
            if {"baanx", "altinn"} <= {o["provider"] for o in listed["orders"]}:
                break
            time.sleep(0.1)
        assert {"baanx", "altinn"} <= {o["provider"] for o in listed["orders"]}
        process.send_signal(stop_signal)
        assert process.wait(timeout=STOP_TIMEOUT_S) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = process.stdout.read() if process.stdout else ""
    assert f"sandbox listening on {url}" in output
    assert "sandbox stopped" in output
    assert (tmp_path / "truth.jsonl").read_text().count("\n") >= 3
    assert list((tmp_path / "inbox").glob("sandbox-*.csv"))


def test_bad_arguments_fail_fast(capsys) -> None:
    assert main(["simulator", "--faults", "no-such-scenario", "--no-truth"]) == 2
    assert main(["simulator", "--option", "sms4sats.code_type=float", "--no-truth"]) == 2
    assert main(["simulator", "--workload-providers", "acme", "--no-truth"]) == 2
    assert "no-such-scenario" in capsys.readouterr().out
