"""The `pipeline` command: one subcommand per user task, each living in its own module.

Each subcommand module exposes `configure(parser)` and `run(args) -> int`; modules are imported
only when their subcommand runs, so `pipeline --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "simulator": ("pipeline.simulator.command", "run the local provider sandbox"),
    "track": ("pipeline.commands.track", "register orders to track"),
    "poll": ("pipeline.commands.poll", "poll due orders now, without Dagster"),
    "refresh": (
        "pipeline.commands.refresh",
        "rebuild history, analytics, published copy and report, without Dagster",
    ),
    "prune": (
        "pipeline.commands.prune",
        "move old per-poll rows and payload bodies from the warehouse to a Parquet archive",
    ),
    "alerts": (
        "pipeline.commands.alerts",
        "evaluate alert rules and SLOs, send messages, write the status page",
    ),
    "dev": ("pipeline.commands.dev", "sandbox + workload + Dagster UI and daemon"),
    "demo": ("pipeline.commands.demo", "the whole product on the sandbox, then a summary"),
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand's arguments."""
    parser = argparse.ArgumentParser(prog="pipeline", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        module = importlib.import_module(module_name)
        module.configure(sub)
        sub.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `pipeline` console script."""
    args = build_parser().parse_args(argv)
    return int(args._module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
