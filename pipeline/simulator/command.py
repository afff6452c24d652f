"""`pipeline simulator`: serve the provider sandbox, optionally with a workload.

Binds 127.0.0.1:8765 by default, prints the URL, and stops cleanly on Ctrl-C or SIGTERM (exit
code 0): in-flight requests get a short grace period, the workload writes its last inbox file,
and the ground truth of every order is written to the truth file.
"""

from __future__ import annotations

import argparse
import secrets
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_PROFILE = "fast"
DEFAULT_MAX_ORDERS = 50_000
DEFAULT_WORKLOAD_RATE = {"fast": 6.0, "realistic": 1.0}
GRACEFUL_SHUTDOWN_S = 2
STARTUP_POLL_S = 0.05


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `pipeline simulator`."""
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default 8765)")
    parser.add_argument(
        "--profile",
        choices=("fast", "realistic"),
        default=DEFAULT_PROFILE,
        help="lifecycle speed: fast (demos, x0.1) or realistic (documented durations)",
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument(
        "--faults",
        default="none",
        help="fault scenario: a shipped name (none, flaky, outage, drift, storm, timeouts, "
        "chaos, latency) or a scenario JSON file",
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="PROVIDER.FIELD=VALUE",
        help="set an undocumented behaviour of one provider's imitation (repeatable)",
    )
    parser.add_argument(
        "--max-orders", type=int, default=DEFAULT_MAX_ORDERS, help="orders kept in memory"
    )
    parser.add_argument(
        "--truth",
        type=Path,
        default=None,
        help="ground-truth JSONL (default data/sandbox/truth.jsonl)",
    )
    parser.add_argument("--no-truth", action="store_true", help="do not write ground truth")
    parser.add_argument(
        "--workload-rate",
        type=float,
        default=None,
        help="orders created per minute per provider (default 6 fast, 1 realistic; 0 = none)",
    )
    parser.add_argument(
        "--workload-duration", type=float, default=None, help="seconds of workload (default: all)"
    )
    parser.add_argument(
        "--workload-providers",
        default="",
        help="comma-separated providers for the workload (default: every registered one)",
    )
    parser.add_argument(
        "--inbox", type=Path, default=None, help="where workload CSVs go (default data/inbox)"
    )
    parser.add_argument("--no-inbox", action="store_true", help="do not write workload CSVs")
    parser.add_argument(
        "--log-level", default="warning", choices=("debug", "info", "warning", "error")
    )


def run(args: argparse.Namespace) -> int:
    """Start the server (and workload), block until Ctrl-C or SIGTERM, then stop cleanly."""
    import asyncio
    import contextlib
    import logging
    import signal
    import socket
    from types import FrameType

    import httpx
    import uvicorn

    from pipeline.providers.registry import PROVIDERS
    from pipeline.settings import Settings
    from pipeline.simulator.app import SandboxConfig, build_app, sandbox_of
    from pipeline.simulator.faults import load_scenario
    from pipeline.simulator.options import ProviderOptions, apply_overrides
    from pipeline.simulator.workload import Workload, WorkloadConfig

    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = Settings.from_env()
    try:
        scenario = load_scenario(args.faults)
        options = apply_overrides(ProviderOptions(), args.option)
    except ValueError as error:
        print(f"pipeline simulator: {error}")
        return 2
    providers = tuple(p.strip() for p in args.workload_providers.split(",") if p.strip())
    unknown = [p for p in providers if p not in PROVIDERS]
    if unknown:
        print(f"pipeline simulator: unknown provider(s) {', '.join(unknown)}")
        return 2
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    truth_path = None if args.no_truth else (args.truth or settings.sandbox_dir / "truth.jsonl")
    config = SandboxConfig(
        profile=args.profile,
        seed=seed,
        faults=scenario,
        options=options,
        max_orders=args.max_orders,
        truth_path=truth_path,
    )
    app = build_app(config)
    sandbox = sandbox_of(app)
    rate = args.workload_rate
    if rate is None:
        rate = DEFAULT_WORKLOAD_RATE[args.profile]

    try:
        family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only for TCP
        # sockets it recognises; without it each keep-alive answer waits ~40 ms for an ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((args.host, args.port))
    except OSError as error:
        print(f"pipeline simulator: cannot listen on {args.host}:{args.port}: {error}")
        return 1

    loops: list[asyncio.AbstractEventLoop] = []

    class SandboxServer(uvicorn.Server):
        """uvicorn's server that also cuts the sandbox's fault delays short on shutdown."""

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            if loops:
                loops[0].call_soon_threadsafe(sandbox.begin_stop)

    server = SandboxServer(
        uvicorn.Config(
            app,
            log_level=args.log_level,
            lifespan="on",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
            access_log=args.log_level == "debug",
        )
    )

    def absorb_signal(signum: int, frame: FrameType | None) -> None:
        server.should_exit = True

    # uvicorn re-raises the signal it caught once it has stopped; these handlers absorb it.
    signal.signal(signal.SIGINT, absorb_signal)
    signal.signal(signal.SIGTERM, absorb_signal)

    async def main() -> int:
        loops.append(asyncio.get_running_loop())
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not serving.done():
            await asyncio.sleep(STARTUP_POLL_S)
        if serving.done():
            return 1
        url_host = "127.0.0.1" if args.host in ("0.0.0.0", "") else args.host
        url = f"http://{url_host}:{args.port}"
        print(
            f"sandbox listening on {url}  (profile {args.profile}, seed {seed}, "
            f"faults {scenario.name})",
            flush=True,
        )
        print(f"  orders: {url}/_sandbox/orders   truth: {url}/_sandbox/truth", flush=True)
        workload_task = None
        workload = None
        if rate > 0:
            inbox = None if args.no_inbox else (args.inbox or settings.inbox_dir)
            workload = Workload(
                httpx.AsyncClient(base_url=url, timeout=10.0),
                WorkloadConfig(
                    rate_per_minute=rate,
                    duration_s=args.workload_duration,
                    inbox=inbox,
                    providers=providers or PROVIDERS,
                    seed=seed,
                    schedule_scale=sandbox.profile.scale,
                ),
            )
            workload_task = asyncio.create_task(workload.run())
            where = f"CSV files in {inbox}" if inbox else "no inbox files"
            print(f"  workload: {rate:g} orders/min per provider, {where}", flush=True)
        try:
            await serving
        finally:
            if workload_task is not None and workload is not None:
                workload_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await workload_task
                await workload.client.aclose()
        return 0

    try:
        code = asyncio.run(main())
    except KeyboardInterrupt:
        code = 0
    finally:
        sock.close()
    print(f"sandbox stopped ({len(sandbox.orders)} orders in memory)", flush=True)
    return code
