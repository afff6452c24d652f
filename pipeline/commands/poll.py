"""`pipeline poll`: poll due orders without Dagster (for cron users and debugging)."""

from __future__ import annotations

import argparse
import statistics
from typing import TYPE_CHECKING

from pipeline.providers.registry import PROVIDERS

if TYPE_CHECKING:
    from pipeline.sharding import Shard


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `pipeline poll`."""
    parser.add_argument(
        "--provider",
        action="append",
        choices=PROVIDERS,
        help="poll only this provider (repeatable; default: all)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="run a single tick (the default)")
    mode.add_argument(
        "--duration", type=float, metavar="SECONDS", help="run ticks for this many seconds"
    )
    parser.add_argument(
        "--tick",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="seconds between ticks (default 5)",
    )
    parser.add_argument(
        "--no-inbox",
        action="store_true",
        help="do not register CSV files waiting in the inbox first",
    )
    parser.add_argument(
        "--no-alerts",
        action="store_true",
        help="skip evaluating alert rules and SLOs (and the status page) at the end",
    )
    parser.add_argument(
        "--shard",
        metavar="K/N",
        type=_shard,
        help="poll only shard K of N of the orders and write to the poll log, not the "
        "warehouse, so N pollers run at once (each refresh folds the log in)",
    )


def run(args: argparse.Namespace) -> int:
    """Poll and print a per-provider summary."""
    from pipeline.intake import process_inbox
    from pipeline.polling import event_loop
    from pipeline.polling.client import Poller
    from pipeline.polling.tick import TickResult, run_tick, run_window
    from pipeline.providers.registry import ADAPTERS
    from pipeline.settings import Settings
    from pipeline.sharding import main_warehouse, poll_shard, shard_store

    settings = Settings.from_env()
    warehouse = main_warehouse(settings)
    providers = args.provider or list(PROVIDERS)
    if args.shard is not None and args.duration:
        result = event_loop.run(
            poll_shard(
                settings,
                args.shard,
                providers=providers,
                duration_s=args.duration,
                tick_s=args.tick,
            )
        )
        print(format_summary(result))
        print(f"{args.shard.name}: answers in the poll log {settings.log_url or settings.log_dir}")
        return 1 if result.write_errors else 0
    # One tick of a shard reads due orders from its own warehouse and writes to the log.
    polled, store = shard_store(settings, args.shard) if args.shard else (warehouse, None)

    def register_inbox() -> None:
        if args.no_inbox or not settings.inbox_dir.is_dir():
            return
        for path, outcome in process_inbox(warehouse, settings.inbox_dir):
            print(f"inbox {path.name}: {outcome}")

    async def main() -> TickResult:
        async with Poller(settings, ADAPTERS) as poller:
            if args.duration:
                return await run_window(
                    polled,
                    poller,
                    duration_s=args.duration,
                    providers=providers,
                    tick_s=args.tick,
                    before_tick=register_inbox,
                )
            if args.shard is None:
                register_inbox()
            return await run_tick(
                polled, poller, providers=providers, tick_s=args.tick, store=store
            )

    result = event_loop.run(main())
    print(format_summary(result))
    if args.shard is not None:
        print(f"{args.shard.name}: answers in the poll log {settings.log_url or settings.log_dir}")
    elif not args.no_alerts:
        from pipeline.commands.alerts import notify

        notify(settings, warehouse)
    return 1 if result.write_errors else 0


def _shard(text: str) -> Shard:
    from pipeline.sharding import Shard

    try:
        return Shard.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def format_summary(result: object) -> str:
    """A per-provider table of what the poll did."""
    from pipeline.polling.tick import TickResult

    assert isinstance(result, TickResult)
    lines = [
        f"{'provider':<12} {'due':>5} {'polled':>6} {'asks':>5} {'ok':>5} {'errors':<28} "
        f"{'p50 ms':>7}  states"
    ]
    for slug, tick in result.providers.items():
        errors = ", ".join(f"{k}={v}" for k, v in sorted(tick.errors.items())) or "-"
        skipped = ", ".join(f"{k}={v}" for k, v in sorted(tick.skipped.items()))
        if skipped:
            errors += f" (skipped {skipped})"
        p50 = f"{statistics.median(tick.latencies_ms):.1f}" if tick.latencies_ms else "-"
        states = ", ".join(f"{k}={v}" for k, v in sorted(tick.states.items())) or "-"
        counts = f"{tick.due:>5} {tick.polled:>6} {tick.attempts:>5} {tick.ok:>5}"
        lines.append(f"{slug:<12} {counts} {errors:<28} {p50:>7}  {states}")
    lines.append(f"stored {result.written} observation(s), quarantined {result.quarantined}")
    for error in result.write_errors:
        lines.append(f"NOT STORED: {error}")
    return "\n".join(lines)
