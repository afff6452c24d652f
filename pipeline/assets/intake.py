"""The `orders` asset: the registry of tracked orders, as Dagster sees it."""

from __future__ import annotations

import dagster as dg

from pipeline.assets.resources import WarehouseResource


@dg.asset(
    group_name="ingestion",
    description="Orders registered for tracking (CLI, CSV drops in data/inbox/, SQL inserts).",
)
def orders(warehouse: WarehouseResource) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Report the tracked orders per provider."""
    counts = warehouse.warehouse().read(
        "SELECT provider, count(*) AS n FROM orders GROUP BY provider ORDER BY provider"
    )
    per_provider = {row["provider"]: int(row["n"]) for row in counts.iter_rows(named=True)}
    metadata: dict[str, dg.MetadataValue] = {
        "row_count": dg.MetadataValue.int(sum(per_provider.values())),
    }
    for provider, n in per_provider.items():
        metadata[f"orders_{provider}"] = dg.MetadataValue.int(n)
    return dg.MaterializeResult(metadata=metadata)
