"""`pipeline demo`: the whole product on the sandbox in a few minutes, then a summary.

Starts the sandbox (fast profile, fixed seed) with a workload on all five providers, runs the real
Dagster assets in-process (the same definitions the schedule runs) for a few polling windows,
materializes the history, analytics, published warehouse and report, prints a per-provider
summary and where everything is, and stops what it started. The demo keeps its data in its own
directory (`<data dir>/demo` by default) and starts it afresh each time: the sandbox forgets its
orders when it stops, so a previous demo's orders could never be polled again.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import time
from pathlib import Path

DEFAULT_MINUTES = 3.0
DEFAULT_SEED = 7
DEFAULT_RATE = 20.0
WINDOW_S = 30.0
TICK_S = 2.0
SANDBOX_PORT = 8765
DEMO_MARKER = ".demo"
# Dagster's step-by-step console log would bury the progress lines; warnings still show.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `pipeline demo`."""
    parser.add_argument(
        "--minutes",
        type=float,
        default=DEFAULT_MINUTES,
        help=f"minutes of ingestion (default {DEFAULT_MINUTES:g})",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="sandbox seed")
    parser.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_RATE,
        help=f"orders per minute per provider (default {DEFAULT_RATE:g})",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="where the demo keeps its data (default: <PIPELINE_DATA_DIR>/demo)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the demo end to end; 0 when every step succeeded."""
    import dagster as dg

    from pipeline.assets.automation import DERIVED_GROUPS
    from pipeline.assets.ingestion import orders, provider_observations
    from pipeline.assets.resources import ProvidersResource, WarehouseResource
    from pipeline.commands import processes
    from pipeline.commands.summary import format_demo_summary
    from pipeline.definitions import ASSETS
    from pipeline.report import build_report
    from pipeline.settings import Settings

    settings = Settings.from_env()
    data_dir = (args.data_dir or settings.data_dir / "demo").resolve()
    if not _reset(data_dir):
        print(f"{data_dir} exists and is not a demo directory; choose another with --data-dir")
        return 2
    port = _free_port(SANDBOX_PORT)
    url = f"http://127.0.0.1:{port}"
    inbox = data_dir / "inbox"
    log_path = data_dir / "sandbox" / "simulator.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    duration_s = max(args.minutes * 60, WINDOW_S)
    sandbox_argv = processes.python_module(
        "pipeline.cli",
        "simulator",
        "--port",
        str(port),
        "--profile",
        "fast",
        "--seed",
        str(args.seed),
        "--workload-rate",
        str(args.rate),
        "--workload-duration",
        str(max(duration_s - 2 * WINDOW_S, WINDOW_S)),
        "--inbox",
        str(inbox),
        "--truth",
        str(data_dir / "sandbox" / "truth.jsonl"),
    )
    resources = {
        "warehouse": WarehouseResource(data_dir=str(data_dir)),
        "providers": ProvidersResource(sandbox_url=url),
    }
    started = time.monotonic()
    print(
        f"demo: sandbox on {url} (fast profile, seed {args.seed}), "
        f"{args.rate:g} orders/min per provider, {duration_s / 60:g} min of ingestion"
    )
    with open(log_path, "wb") as log, dg.DagsterInstance.ephemeral() as instance:
        sandbox = processes.start(sandbox_argv, stdout=log)
        try:
            processes.wait_for_http(f"{url}/_sandbox/health", timeout_s=30, process=sandbox)
            # One report per window (the default is one a minute), so one progress line each.
            ingestion = {"window_s": WINDOW_S, "tick_s": TICK_S, "report_every_s": WINDOW_S}
            window = {"ops": {"poll_providers": {"config": ingestion}}, **QUIET}
            while time.monotonic() - started < duration_s:
                result = dg.materialize(
                    [orders, provider_observations],
                    resources=resources,
                    run_config=window,
                    instance=instance,
                    raise_on_error=False,
                )
                print(_progress(result, time.monotonic() - started), flush=True)
            print("demo: status history, analytics, published warehouse, report…", flush=True)
            # What the `derived` job refreshes: every asset of its groups.
            derived = dg.materialize(
                ASSETS,
                selection=dg.AssetSelection.groups(*DERIVED_GROUPS),
                resources=resources,
                instance=instance,
                raise_on_error=False,
                run_config=QUIET,
            )
        finally:
            processes.stop(sandbox)
    if not derived.success:
        print("demo: the derived assets failed; see the messages above")
        return 1
    published = data_dir / "published" / "warehouse.duckdb"
    truth = data_dir / "sandbox" / "truth.jsonl"
    # The sandbox wrote the truth of the orders still open when it stopped: render the report
    # again, so its truth column covers every order (the asset ran before the stop).
    build_report(published, data_dir / "reports" / "report.html", truth_path=truth)
    print()
    print(format_demo_summary(published, truth))
    print()
    print(f"report     {data_dir / 'reports' / 'report.html'}")
    print(f"warehouse  {data_dir / 'warehouse.duckdb'}  (published read-only copy: {published})")
    print(
        "notebook   notebooks/order_outcomes.ipynb  (run: PIPELINE_DATA_DIR="
        f"{data_dir} .venv/bin/jupyter execute --inplace notebooks/order_outcomes.ipynb)"
    )
    print(
        f"truth      {data_dir / 'sandbox' / 'truth.jsonl'}  (the sandbox's real transition times)"
    )
    print(f"demo: done in {time.monotonic() - started:.0f} s")
    return 0


def _progress(result: object, elapsed_s: float) -> str:
    """One line per polling window: polls and open orders per provider."""
    import dagster as dg

    assert isinstance(result, dg.ExecuteInProcessResult)
    parts = []
    for event in result.get_asset_materialization_events():
        key = event.asset_key.path if event.asset_key else []
        if key[:1] != ["observations"]:
            continue
        metadata = event.materialization.metadata
        parts.append(
            f"{key[1]} {metadata['polls'].value} polls/{metadata['open_orders'].value} open"
        )
    status = "ok" if result.success else "some providers failed this window"
    return f"  [{elapsed_s:4.0f} s] {status}: " + ", ".join(parts)


def _reset(data_dir: Path) -> bool:
    """Empty the demo directory (only if it is one), leaving a marker; False if it is not."""
    if data_dir.exists() and any(data_dir.iterdir()):
        if not (data_dir / DEMO_MARKER).exists():
            return False
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / DEMO_MARKER).write_text("created by `pipeline demo`; emptied by the next demo\n")
    return True


def _free_port(preferred: int) -> int:
    """`preferred` if nothing listens there, else any free port of 127.0.0.1."""
    with socket.socket() as s:
        # As the sandbox's server binds: a port the last demo's sandbox left in TIME_WAIT is
        # free, and the next demo keeps the usual one.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])
