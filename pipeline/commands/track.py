"""`pipeline track`: register orders to track, one from the command line or many from a CSV."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.providers.registry import PROVIDERS


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `pipeline track`."""
    parser.add_argument("provider", nargs="?", choices=PROVIDERS, help="provider slug")
    parser.add_argument("order_id", nargs="?", help="the provider's order id")
    parser.add_argument("--kind", help="order kind (default: the provider's usual kind)")
    parser.add_argument("--service", help="what was ordered, for grouping")
    parser.add_argument("--country", help="where, for grouping")
    parser.add_argument("--csv", type=Path, help="register every order in this CSV file")


def run(args: argparse.Namespace) -> int:
    """Register the orders and say how many were new."""
    from pipeline.intake import IntakeError, make_order, read_orders_file, register
    from pipeline.settings import Settings
    from pipeline.warehouse import Warehouse

    settings = Settings.from_env()
    try:
        if args.csv:
            orders = read_orders_file(args.csv)
            source = f"csv:{args.csv.name}"
        elif args.provider and args.order_id:
            orders = [
                make_order(
                    args.provider,
                    args.order_id,
                    order_kind=args.kind,
                    service=args.service,
                    country=args.country,
                )
            ]
            source = "cli"
        else:
            print("give PROVIDER ORDER_ID, or --csv FILE")
            return 2
    except (IntakeError, OSError) as error:
        print(f"not registered: {error}")
        return 1
    warehouse = Warehouse(settings.warehouse_path, lock_timeout_s=settings.lock_timeout_s)
    result = register(warehouse, orders, source=source)
    print(f"registered {result.new} new order(s); {result.already_tracked} already tracked")
    return 0
