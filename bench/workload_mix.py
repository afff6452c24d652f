"""What one shared mix of workload choices does to the truth benchmark's samples.

The workload chooses, per order, what a create asks for: a service and a country (SMS
providers), a channel and a scheduled send (Altinn), a product (Baanx), a fee (OrdinalsBot).
Those choices shape the lifecycle. The truth benchmark once seeded the workload alike in every
replication and every pilot batch, so all of them repeated one mix of choices. This measures
the consequence per provider: batches of `truth.ORDERS` orders made as the replications make
theirs (`truth._pilot`), each on its own sandbox seed, once all with the workload choices of
one seed and once each with its own. Per variant, the mean and the standard deviation of the
batches' true medians: a mean that moves says one mix's population differs from the
provider's; a spread that shrinks says a 95 % interval sized for independent orders will
over-cover samples that share a mix.

    .venv/bin/python bench/workload_mix.py      # 6 providers x 2 variants x 200 batches
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import truth  # the benchmark beside this file
from results_file import write_results

from pipeline.providers.registry import PROVIDERS

RESULTS = Path(__file__).parent / "results" / "workload_mix.json"
FIRST_SEED = 2_000_003
"""Sandbox seeds `FIRST_SEED + batch`: neither the pilot's nor a replication's."""
ONE_MIX_SEED = 0
"""The workload seed every batch shared before (`Workload`'s default)."""


def batch_medians(slug: str, batches: int, window_s: float, *, one_mix: bool) -> list[float]:
    """The true median of each batch of orders arriving over `window_s`."""
    rng = random.Random(f"mix:{slug}")
    medians = []
    for batch in range(batches):
        arrivals = sorted(rng.uniform(0, window_s) for _ in range(truth.ORDERS))
        mix_seed = ONE_MIX_SEED if one_mix else None
        population = truth._pilot(slug, [arrivals], seed=FIRST_SEED + batch, mix_seed=mix_seed)
        medians.append(asyncio.run(population).median_s)
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", nargs="*", default=list(PROVIDERS))
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    results = {}
    for slug in args.providers:
        row = {}
        window_s = truth.arrival_window_s(slug, seed=FIRST_SEED)
        for variant, one_mix in (("one_mix", True), ("own_mix", False)):
            medians = batch_medians(slug, args.batches, window_s, one_mix=one_mix)
            row[variant] = {
                "mean_median_s": round(statistics.mean(medians), 2),
                "sd_median_s": round(statistics.stdev(medians), 2),
            }
        results[slug] = row
        print(slug, json.dumps(row), flush=True)
    command = f"python bench/workload_mix.py --batches {args.batches}"
    if args.providers != list(PROVIDERS):
        command += " --providers " + " ".join(args.providers)
    write_results(
        args.out,
        command,
        orders_per_batch=truth.ORDERS,
        batches=args.batches,
        providers=results,
    )


if __name__ == "__main__":
    main()
