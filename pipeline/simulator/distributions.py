"""Duration distributions and the tables that shift an order's odds and speed.

Generic building blocks of the lifecycle model; each provider's figures
(`pipeline/providers/<slug>/lifecycle.py`) are made of these.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Mapping
from typing import Protocol

SQRT2 = math.sqrt(2.0)
MAX_PROBABILITY = 0.99
MIN_PROBABILITY = 0.0


@dataclasses.dataclass(frozen=True)
class Dist:
    """A duration distribution in seconds.

    Attributes:
        kind: `lognormal` (a = median, b = sigma of the log), `uniform` (a = low, b = high) or
            `fixed` (a = value).
        a: first parameter.
        b: second parameter.
    """

    kind: str
    a: float
    b: float = 0.0

    def draw(self, rng: random.Random, scale: float = 1.0) -> float:
        """One duration, multiplied by `scale`."""
        if self.kind == "lognormal":
            return rng.lognormvariate(math.log(self.a), self.b) * scale
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b) * scale
        return self.a * scale

    def cdf(self, x: float, scale: float = 1.0) -> float:
        """P(duration <= x) for the distribution multiplied by `scale`."""
        x = x / scale
        if self.kind == "lognormal":
            if x <= 0:
                return 0.0
            return 0.5 * (1.0 + math.erf((math.log(x) - math.log(self.a)) / (self.b * SQRT2)))
        if self.kind == "uniform":
            return min(1.0, max(0.0, (x - self.a) / (self.b - self.a)))
        return 1.0 if x >= self.a else 0.0

    @property
    def median(self) -> float:
        """The median duration (unscaled)."""
        if self.kind == "uniform":
            return (self.a + self.b) / 2.0
        return self.a


def lognormal(median_s: float, sigma: float) -> Dist:
    """A log-normal duration with the given median and log-scale sigma."""
    return Dist("lognormal", median_s, sigma)


def uniform(low_s: float, high_s: float) -> Dist:
    """A duration uniform on [low_s, high_s]."""
    return Dist("uniform", low_s, high_s)


def fixed(value_s: float) -> Dist:
    """Always `value_s`."""
    return Dist("fixed", value_s)


@dataclasses.dataclass(frozen=True)
class Traits:
    """How a service, country, product or channel shifts an order's odds and speed.

    Attributes:
        weight: relative share in the workload mix.
        success_factor: multiplies the probability of success (code, completion, delivery).
        speed_factor: multiplies the median time to success (> 1 is slower).
        failure_factor: multiplies the probability of an early failure (e.g. no number).
    """

    weight: float = 1.0
    success_factor: float = 1.0
    speed_factor: float = 1.0
    failure_factor: float = 1.0


NEUTRAL = Traits()
"""A service (country, product) that shifts nothing."""


class Weighted(Protocol):
    """A table entry with a share in the workload mix."""

    @property
    def weight(self) -> float: ...


def choose(table: Mapping[str, Weighted], rng: random.Random) -> str:
    """A key of `table`, drawn with the entries' weights."""
    names = sorted(table)
    return rng.choices(names, weights=[table[name].weight for name in names])[0]


def clamp_probability(value: float) -> float:
    """`value` limited to [0, 0.99]."""
    return min(MAX_PROBABILITY, max(MIN_PROBABILITY, value))
