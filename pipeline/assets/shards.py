"""The Dagster job `poll_shard`: one polling shard per run, for pollers spread over processes
or machines (`pipeline.sharding`).

A run polls shard K of N of the orders for one window and writes the answers to the poll log,
never to the warehouse, so N runs poll at once without waiting for each other's lock; the derived
assets fold the log in at their next refresh. Launch one run per shard, each with its own
`shard` (`0/2`, `1/2`): from the launchpad, `dagster job launch -j poll_shard --config
shard0.yaml`, or a schedule; a run launcher places each run on a machine that shares the log
folder (README, "More than one poller").
"""

import dagster as dg

from pipeline.assets.resources import ProvidersResource, WarehouseResource
from pipeline.polling import event_loop
from pipeline.polling.tick import DEFAULT_TICK_S
from pipeline.providers.registry import PROVIDERS
from pipeline.sharding import Shard, poll_shard

DEFAULT_SHARD_WINDOW_S = 280.0


class ShardConfig(dg.Config):
    """Which shard a run polls, and for how long.

    Attributes:
        shard: `K/N`: the orders whose `hash(provider, order_id) % N` is K.
        window_s: seconds the run polls.
        tick_s: how often due orders are re-read and new orders copied from the warehouse.
    """

    shard: str
    window_s: float = DEFAULT_SHARD_WINDOW_S
    tick_s: float = DEFAULT_TICK_S


@dg.op(description="Poll one shard of the orders for a window; answers go to the poll log.")
def poll_orders_shard(
    context: dg.OpExecutionContext,
    config: ShardConfig,
    warehouse: WarehouseResource,
    providers: ProvidersResource,
) -> None:
    try:
        shard = Shard.parse(config.shard)
    except ValueError as bad:
        raise dg.Failure(description=str(bad)) from None
    settings = providers.settings(warehouse)
    result = event_loop.run(
        poll_shard(
            settings,
            shard,
            providers=list(PROVIDERS),
            duration_s=config.window_s,
            tick_s=config.tick_s,
        )
    )
    polled = {slug: tick.polled for slug, tick in result.providers.items()}
    log = settings.log_url or settings.log_dir
    context.log.info(
        f"{shard.name}: {result.written} answers to the poll log {log} "
        f"({result.quarantined} quarantined); orders polled per provider: {polled}"
    )
    for message in result.write_errors:
        context.log.error(message)
    if result.write_errors:
        raise dg.Failure(
            description=f"{shard.name}: {len(result.write_errors)} batches not written",
            metadata={"errors": dg.MetadataValue.json(result.write_errors[:20])},
        )


@dg.job(
    name="poll_shard",
    executor_def=dg.in_process_executor,
    description="One polling shard (config `shard: K/N`) for one window, into the poll log.",
)
def poll_shard_job() -> None:
    poll_orders_shard()
