"""`pipeline dev`: the sandbox with a steady workload, plus the Dagster UI and daemon.

Starts two process groups, `pipeline simulator` and `dg dev` on 127.0.0.1:3000 with
DAGSTER_HOME set to the project's `dagster_home/`, and stops both on Ctrl-C or SIGTERM.
The sensors are on by default (ingestion runs chained back to back), so materializations appear
within a couple of minutes.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

DEFAULT_UI_PORT = 3000
UI_START_TIMEOUT_S = 120.0
SANDBOX_START_TIMEOUT_S = 30.0


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `pipeline dev`."""
    parser.add_argument("--port", type=int, default=DEFAULT_UI_PORT, help="Dagster UI port")
    parser.add_argument("--sandbox-port", type=int, default=8765, help="sandbox port")
    parser.add_argument(
        "--workload-rate",
        type=float,
        default=4.0,
        help="orders created per minute per provider (default 4)",
    )
    parser.add_argument(
        "--no-sandbox",
        action="store_true",
        help="start only Dagster (providers configured by environment)",
    )


def run(args: argparse.Namespace) -> int:
    """Start everything, wait for Ctrl-C, stop everything."""
    from pipeline.commands import processes
    from pipeline.settings import Settings

    settings = Settings.from_env()
    dagster_home = Path(os.environ.get("DAGSTER_HOME") or "dagster_home").resolve()
    dagster_home.mkdir(parents=True, exist_ok=True)
    sandbox_url = f"http://127.0.0.1:{args.sandbox_port}"
    env = {"DAGSTER_HOME": str(dagster_home), "PIPELINE_SANDBOX_URL": sandbox_url}
    started = []

    def stop_all(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # Both explicitly: started in the background by a non-interactive shell, SIGINT arrives
    # ignored, and Python would then never raise KeyboardInterrupt.
    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    try:
        if not args.no_sandbox:
            sandbox = processes.start(
                processes.python_module(
                    "pipeline.cli",
                    "simulator",
                    "--port",
                    str(args.sandbox_port),
                    "--profile",
                    "fast",
                    "--workload-rate",
                    str(args.workload_rate),
                    "--inbox",
                    str(settings.inbox_dir),
                ),
                env=env,
            )
            started.append(sandbox)
            processes.wait_for_http(
                sandbox_url + "/_sandbox/orders", timeout_s=SANDBOX_START_TIMEOUT_S, process=sandbox
            )
            print(f"sandbox     {sandbox_url}  (orders: {sandbox_url}/_sandbox/orders)")
        dg = str(Path(sys.executable).with_name("dg"))
        ui = processes.start([dg, "dev", "-h", "127.0.0.1", "-p", str(args.port)], env=env)
        started.append(ui)
        ui_url = f"http://127.0.0.1:{args.port}"
        processes.wait_for_http(ui_url + "/server_info", timeout_s=UI_START_TIMEOUT_S, process=ui)
        print(f"dagster UI  {ui_url}  (ingestion_sensor keeps polling; Ctrl-C stops all)")
        while all(p.poll() is None for p in started):
            time.sleep(0.5)
        print("a child process exited; stopping the rest")
        return 1
    except KeyboardInterrupt:
        print("\nstopping…")
        return 0
    finally:
        for process in reversed(started):
            processes.stop(process)
