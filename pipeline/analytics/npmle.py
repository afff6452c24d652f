"""Nonparametric maximum likelihood (NPMLE) of cumulative incidence from interval-censored data.

Polling sees an event only as "after the last poll still in an earlier state, at or before the
first poll showing it". Placing it at the midpoint of that interval biases every figure when the
interval is not small against the time measured. The NPMLE uses each order for exactly what it
shows (Turnbull 1976, *JRSS B* 38:290; for competing risks Hudgens, Satten and Longini 2001,
*Biometrics* 57:74):

- an event of cause k (1 the event of interest, 2 a competing one) in (lower, upper], or at an
  exact time where the provider reports one;
- an order still open when last seen at c: its event, of either cause, lies in (c, ∞].

**Cells.** The likelihood depends only on the mass each order's set holds, so the NPMLE lives on
Turnbull's innermost intervals: per group and cause, each (l, r] where a left end of some
order's set is directly followed, in sorted order, by a right end. At equal times, endpoints
sort closed-left (an exact time) < right end < open-left: (a, t] and [t, t] meet at t, and an
order seen open at t did not have its event at t, so (t, ∞] excludes t. A cell covered only by
open orders that starts before some event cell can only lose likelihood by holding mass and is
dropped; the one starting after every event cell, (last open order's last poll, ∞], is the
*tail*: mass whose time and cause are both unknown.

**Solver.** The log-likelihood ℓ(p) = Σᵢ wᵢ log Dᵢ, Dᵢ = Σ_{c ∈ Aᵢ} p_c, is maximised over cell
masses p ≥ 0 summing to 1 per group. Turnbull's self-consistency (EM) step,
p_c ← p_c · h(c) / W with h(c) = Σᵢ wᵢ [c ∈ Aᵢ] / Dᵢ and W = Σᵢ wᵢ, has the NPMLE as its fixed
point, but it empties the cells outside the support only geometrically: on 2,000 polled orders
20,000 EM steps still left the log-likelihood 6e-4 below its maximum. The maximum is
found instead by the constrained Newton method of Wang (2007, *JRSS B* 69:185; 2008, *CSDA*
52:2388): from a few cells that cover every order, add the largest positive gradient
h(c) − W between consecutive support cells, solve the quadratic model of ℓ on that support by
non-negative least squares, normalise, and line-search (Armijo). It stops once ℓ rises by less
than `TOLERANCE` and no cell has a gradient above `GRADIENT_TOLERANCE`·W (the Kuhn–Tucker
conditions of the NPMLE), typically after 8–20 steps. `em_step` stays as the independent check:
the result is its fixed point. Every order's set is at most two contiguous runs of cells (its
cause's cells inside its interval; for an open order, the cause-1 cells after its last poll,
then the cause-2 cells and the tail), so Dᵢ and h cost O(orders + cells) through cumulative
sums. Groups are solved one after another.

**Reading the curves.** Within a cell the NPMLE does not say where the mass lies: the cumulative
incidence F₁ is taken to rise linearly across each cell (a step at an exact time) and is flat
between cells, where the NPMLE has no mass; it is unknown past the start of the tail
(`Curve.known_until`). With exact times only, every cell is a point and the NPMLE is the
Aalen–Johansen estimate (Kaplan–Meier without competing events). Figures (quantiles, values at
horizons, the plotted curve) are read off the *smoothed* curve (`Fit.smoothed`,
`pipeline.analytics.smoothing`): the raw NPMLE's steps sit wherever the polls happened to fall,
and a median read off them jumps by up to a polling interval between samples.

**Intervals.** Wald intervals from the observed information, treating the masses on the support
as the parameters (as for grouped inspection times; Maathuis and Hudgens 2011, *Biometrika*
98:325): H = Σᵢ wᵢ aᵢaᵢᵀ / Dᵢ² on the support, covariance H⁻¹ − H⁻¹11ᵀH⁻¹ / 1ᵀH⁻¹1 under
Σp = 1, and F₁(t) a sum of masses. With exact times this is the Aalen–Johansen variance of
`pipeline.analytics.survival`. The 95 % band is log(−log) transformed as there, and the
median's interval inverts it: from the first time the upper bound reaches ½ to the first time
the lower bound does. Figures are read off the smoothed curve, so the variance is that curve's
own: each smoothed value is a kernel-weighted sum of the masses, and its variance the same
weights on their covariance (`smoothing.smoothed_variance`). The raw curve's variance, read at
the same times, overstated it where two neighbouring support cells are hard to tell apart
(their masses then have large variances of opposite sign, which the kernel averages out): on
simulated polling at interval/median 0.25–2 its median intervals were 1.4–2.1 times as wide as
the estimates' spread and covered the population median in 97–100 % of samples at 800 orders;
the smoothed curve's are 0.9–1.1 times as wide and cover in 93–97 % (90 % at 200 orders with
60 % open at interval/median 2, where the kernel's bias shows; `bench/coverage.py`).

**Narrow intervals.** A quantile interval's width in time is its band's width over the curve's
slope there. Where the NPMLE heaped mass on one narrow cell near the quantile, the smoothed
curve is steep and the interval narrow, though where the heap fell is itself noise: on the
sandbox's own lifecycles polled one to two medians apart, 5–17 % of the intervals were under
0.6 of their setting's median width and covered in only 59–89 % (`bench/lifecycle_coverage.py`).
So each side of an interval is at least as wide as the same inversion reads it on the curve
smoothed `SLOPE_SMOOTHING` times as wide, whose slope one heap moves less. Only its widths are
taken, around the estimate: that curve is flatter and its quantile biased. Exact times are not
smoothed and keep the band's inversion.

Left truncation is not modelled: a late-registered order is recorded whatever happened before
(see `pipeline.analytics.events`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import math
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import polars as pl
from threadpoolctl import threadpool_limits

from pipeline.analytics.smoothing import bandwidth, smoothed_cif, smoothed_variance
from pipeline.analytics.survival import (
    CENSORED,
    COMPETING,
    EVENT,
    QUANTILE_TOLERANCE,
    UNSEEN_TAIL_MAX,
    WEIGHT,
    Z_95,
    unseen_tail_bound,
    weighted,
)

TOLERANCE = 1e-9
"""Stop once the log-likelihood rises by less than this (and no cell has a positive gradient)."""
GRADIENT_TOLERANCE = 1e-7
"""A cell outside the support may have a gradient up to this fraction of the orders' weight."""
MAX_ITERATIONS = 200
"""Newton steps before giving up (`converged` is then false for the group)."""
SLOPE_SMOOTHING = 2.0
"""How many times wider than the curve's own the kernel that bounds a quantile interval's
width from below is (module docstring, "Narrow intervals")."""

_CLOSED_LEFT, _RIGHT, _OPEN_LEFT = 0, 1, 2
"""Tie order of endpoints at the same time (see the module docstring)."""
_TAIL = 0
"""Cause code of the tail cell (cause unknown)."""

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclasses.dataclass(frozen=True)
class Observations:
    """One entry per order, as numpy arrays of equal length.

    Attributes:
        group: group index, 0 … n_groups − 1.
        cause: 0 open (right-censored), 1 the event of interest, 2 a competing event.
        lower: events: the event came after this time (lower ≥ upper: exactly at upper).
        upper: events: the event came at or before this time. Open orders: the last time they
            were seen open; their event lies in (upper, ∞].
        n_groups: number of groups.
        count: how many orders share each entry (identical orders are interchangeable, so
            a large group is fitted from its distinct observations).
    """

    group: IntArray
    cause: npt.NDArray[np.int8]
    lower: FloatArray
    upper: FloatArray
    n_groups: int
    count: IntArray


def observations(
    group: Sequence[int] | npt.NDArray[np.integer],
    cause: Sequence[int] | npt.NDArray[np.integer],
    lower: Sequence[float | None] | FloatArray,
    upper: Sequence[float] | FloatArray,
    *,
    n_groups: int | None = None,
    count: Sequence[int] | npt.NDArray[np.integer] | None = None,
) -> Observations:
    """Validated `Observations` from array-likes (see its attributes); `lower` of open orders
    is ignored and may be None/NaN; `count` defaults to one order per entry."""
    g = np.asarray(group, dtype=np.int64)
    c = np.asarray(cause, dtype=np.int8)
    lo = np.asarray(lower, dtype=np.float64)
    up = np.asarray(upper, dtype=np.float64)
    n = np.ones(g.shape, dtype=np.int64) if count is None else np.asarray(count, dtype=np.int64)
    if not (g.shape == c.shape == lo.shape == up.shape == n.shape) or g.ndim != 1:
        raise ValueError("observation arrays must be one-dimensional and of equal length")
    if n.size and n.min() < 1:
        raise ValueError("counts must be ≥ 1")
    if g.size and g.min() < 0:
        raise ValueError("group indices must be ≥ 0")
    if not np.isin(c, (CENSORED, EVENT, COMPETING)).all():
        raise ValueError("cause must be 0 (open), 1 or 2")
    if not np.isfinite(up).all():
        raise ValueError("upper must be finite")
    event = c != CENSORED
    if not np.isfinite(lo[event]).all():
        raise ValueError("events need a finite lower bound (equal to upper for an exact time)")
    groups = int(g.max()) + 1 if g.size else 0
    return Observations(
        group=g,
        cause=c,
        lower=np.where(event, np.minimum(lo, up), up),
        upper=up,
        n_groups=max(groups, n_groups or 0),
        count=n,
    )


@dataclasses.dataclass(frozen=True)
class Cells:
    """The cells of every group, in solver order: per group its cause-1 cells by time, its
    cause-2 cells by time, then its tail (cause 0) if it has one.

    Attributes:
        group: group of each cell.
        cause: 1, 2, or 0 for the tail.
        left: left end (seconds): the cell is (left, right], or the point [left, left].
        right: right end (∞ for the tail).
        is_point: an exact-time cell.
        group_start: index of each group's first cell (length n_groups + 1).
        tail_left: per group, where its tail starts (∞ without one).
    """

    group: IntArray
    cause: npt.NDArray[np.int8]
    left: FloatArray
    right: FloatArray
    is_point: BoolArray
    group_start: IntArray
    tail_left: FloatArray

    @property
    def size(self) -> int:
        """Number of cells."""
        return int(self.group.size)


@dataclasses.dataclass(frozen=True)
class Patterns:
    """Distinct observations (the same runs of cells in the same group) and their counts.

    Pattern j covers cells [a1, b1) ∪ [a2, b2) (the second run empty for events); patterns are
    sorted by group, with `group_start` marking each group's first one.
    """

    group: IntArray
    count: FloatArray
    a1: IntArray
    b1: IntArray
    a2: IntArray
    b2: IntArray
    group_start: IntArray


def _endpoint_ids(values: FloatArray, ranks: IntArray) -> tuple[IntArray, FloatArray, IntArray]:
    """Dense integer ids of (value, rank) pairs ordered like the pairs, and the distinct pairs."""
    order = np.lexsort((ranks, values))
    v, r = values[order], ranks[order]
    new = np.ones(v.size, dtype=bool)
    new[1:] = (v[1:] != v[:-1]) | (r[1:] != r[:-1])
    ids = np.empty(v.size, dtype=np.int64)
    ids[order] = np.cumsum(new) - 1
    return ids, v[new], r[new]


def build_cells(obs: Observations) -> tuple[Cells, Patterns]:
    """The cells of every group and the observations as runs of cells (module docstring).

    Returns:
        The cells, and the distinct observation patterns with their counts.
    """
    n = obs.group.size
    event = obs.cause != CENSORED
    exact = event & (obs.lower >= obs.upper)
    values = np.concatenate([np.where(exact, obs.upper, obs.lower), obs.upper, [np.inf]])
    ranks = np.concatenate(
        [np.where(exact, _CLOSED_LEFT, _OPEN_LEFT), np.full(n, _RIGHT), [_RIGHT]]
    ).astype(np.int64)
    ids, key_value, key_rank = _endpoint_ids(values, ranks)
    infinity = ids[-1]
    left_id = ids[:n]
    right_id = np.where(event, ids[n : 2 * n], infinity)

    # Innermost intervals per (group, cause) block; open orders take part in both causes.
    # Block 3g + k − 1 holds the cause-k cells of group g, block 3g + 2 its tail.
    open_ = np.flatnonzero(~event)
    ev = np.flatnonzero(event)
    owner_block = np.concatenate(
        [3 * obs.group[ev] + obs.cause[ev] - 1, 3 * obs.group[open_], 3 * obs.group[open_] + 1]
    )
    owner = np.concatenate([ev, open_, open_])
    block = np.concatenate([owner_block, owner_block])
    key = np.concatenate([left_id[owner], right_id[owner]])
    is_left = np.repeat([True, False], owner.size)
    order = np.lexsort((key, block))
    block, key, is_left = block[order], key[order], is_left[order]
    pair = is_left[:-1] & ~is_left[1:] & (block[:-1] == block[1:])
    cell_block, cell_left, cell_right = block[:-1][pair], key[:-1][pair], key[1:][pair]

    # Cells ending at ∞ are covered by open orders only: keep one per group, as its tail, when
    # it starts after every event cell of the group; the others are dominated.
    finite = cell_right != infinity
    last_event_left = np.full(obs.n_groups, -1, dtype=np.int64)
    np.maximum.at(last_event_left, cell_block[finite] // 3, cell_left[finite])
    last_open = np.full(obs.n_groups, -1, dtype=np.int64)
    np.maximum.at(last_open, obs.group[open_], left_id[open_])
    tails = np.flatnonzero(last_open > last_event_left)
    cell_block = np.concatenate([cell_block[finite], 3 * tails + 2])
    cell_left = np.concatenate([cell_left[finite], last_open[tails]])
    cell_right = np.concatenate([cell_right[finite], np.full(tails.size, infinity)])
    order = np.lexsort((cell_left, cell_block))
    cell_block, cell_left, cell_right = cell_block[order], cell_left[order], cell_right[order]
    cell_group = cell_block // 3
    group_start = np.searchsorted(cell_group, np.arange(obs.n_groups + 1)).astype(np.int64)
    tail_left = np.full(obs.n_groups, np.inf)
    tail_left[tails] = key_value[last_open[tails]]
    cells = Cells(
        group=cell_group,
        cause=np.where(cell_block % 3 == 2, _TAIL, cell_block % 3 + 1).astype(np.int8),
        left=key_value[cell_left],
        right=key_value[cell_right],
        is_point=key_rank[cell_left] == _CLOSED_LEFT,
        group_start=group_start,
        tail_left=tail_left,
    )

    # Each order's runs of cells, by binary search on (block, endpoint id) codes.
    stride = np.int64(key_value.size + 1)
    left_code = cell_block * stride + cell_left
    right_code = cell_block * stride + cell_right
    g = obs.group
    own = 3 * g + obs.cause.astype(np.int64) - 1
    a1 = np.where(
        event,
        np.searchsorted(left_code, own * stride + left_id),
        np.searchsorted(left_code, 3 * g * stride + left_id),
    )
    b1 = np.where(
        event,
        np.searchsorted(right_code, own * stride + right_id, side="right"),
        np.searchsorted(left_code, (3 * g + 1) * stride),
    )
    a2 = np.where(event, 0, np.searchsorted(left_code, (3 * g + 1) * stride + left_id))
    b2 = np.where(event, 0, group_start[g + 1])
    if np.any((b1 - a1) + (b2 - a2) <= 0):
        raise AssertionError("an observation covers no cell")  # a bug, never the data
    table = np.stack([g, a1, b1, a2, b2], axis=1)
    unique, inverse = np.unique(table, axis=0, return_inverse=True)
    patterns = Patterns(
        group=unique[:, 0],
        count=np.bincount(inverse.ravel(), weights=obs.count, minlength=unique.shape[0]).astype(
            np.float64
        ),
        a1=unique[:, 1],
        b1=unique[:, 2],
        a2=unique[:, 3],
        b2=unique[:, 4],
        group_start=np.searchsorted(unique[:, 0], np.arange(obs.n_groups + 1)).astype(np.int64),
    )
    return cells, patterns


@dataclasses.dataclass(frozen=True)
class _Group:
    """One group's cells and patterns, with cell indices local to the group."""

    cause: npt.NDArray[np.int8]
    weight: FloatArray
    a1: IntArray
    b1: IntArray
    a2: IntArray
    b2: IntArray

    @property
    def m(self) -> int:
        return int(self.cause.size)

    def probability(self, p: FloatArray) -> FloatArray:
        """Dᵢ: the mass each pattern's set holds."""
        cum = np.concatenate([[0.0], np.cumsum(p)])
        return cum[self.b1] - cum[self.a1] + cum[self.b2] - cum[self.a2]

    def spread(self, x: FloatArray) -> FloatArray:
        """Σᵢ xᵢ [c ∈ Aᵢ] for every cell c."""
        index = np.concatenate([self.a1, self.b1, self.a2, self.b2])
        signed = np.concatenate([x, -x, x, -x])
        total = np.bincount(index, signed, minlength=self.m + 1).astype(np.float64)
        return np.cumsum(total)[: self.m]

    def log_likelihood(self, p: FloatArray) -> float:
        with np.errstate(divide="ignore"):
            return float(self.weight @ np.log(self.probability(p)))

    def information(self, support: IntArray, d: FloatArray) -> FloatArray:
        """Σᵢ wᵢ aᵢaᵢᵀ / Dᵢ² on the `support` cells (sorted), from rectangle sums."""
        s = support.size
        runs = [
            (np.searchsorted(support, a), np.searchsorted(support, b))
            for a, b in ((self.a1, self.b1), (self.a2, self.b2))
        ]
        y = self.weight / d**2
        index: list[IntArray] = []
        values: list[FloatArray] = []
        for r0, e0 in runs:
            for r1, e1 in runs:
                for i, j, sign in ((r0, r1, 1.0), (r0, e1, -1.0), (e0, r1, -1.0), (e0, e1, 1.0)):
                    index.append(i * (s + 1) + j)
                    values.append(sign * y)
        corners = np.bincount(np.concatenate(index), np.concatenate(values), (s + 1) ** 2)
        return corners.reshape(s + 1, s + 1).cumsum(0).cumsum(1)[:s, :s]


def _group(cells: Cells, patterns: Patterns, g: int) -> _Group:
    c0, c1 = cells.group_start[g], cells.group_start[g + 1]
    p0, p1 = patterns.group_start[g], patterns.group_start[g + 1]
    second = patterns.b2[p0:p1] > 0
    return _Group(
        cause=cells.cause[c0:c1],
        weight=patterns.count[p0:p1],
        a1=patterns.a1[p0:p1] - c0,
        b1=patterns.b1[p0:p1] - c0,
        a2=np.where(second, patterns.a2[p0:p1] - c0, 0),
        b2=np.where(second, patterns.b2[p0:p1] - c0, 0),
    )


def em_step(cells: Cells, patterns: Patterns, mass: FloatArray) -> FloatArray:
    """One self-consistency (EM) step of every group: the NPMLE is its fixed point.

    p_c ← p_c · Σᵢ wᵢ [c ∈ Aᵢ] / Dᵢ / Σᵢ wᵢ, per group.
    """
    out = np.empty_like(mass)
    for g in range(cells.group_start.size - 1):
        c0, c1 = cells.group_start[g], cells.group_start[g + 1]
        if c0 == c1:
            continue
        data = _group(cells, patterns, g)
        p = mass[c0:c1]
        out[c0:c1] = p * data.spread(data.weight / data.probability(p)) / data.weight.sum()
    return out


def _stabbing_cells(data: _Group) -> IntArray:
    """A few cells that every pattern's set contains one of: a start with every Dᵢ > 0.

    Greedy interval stabbing of the event runs (by right end). An open order's second run ends
    at the group's last cell, and its first run, when the second is empty, at the last cause-1
    cell: those two cells cover every open order.
    """
    event = data.b2 == 0
    a, b = data.a1[event], data.b1[event]
    picks: list[int] = []
    last = -1
    for i in np.argsort(b, kind="stable"):
        if a[i] > last:
            last = int(b[i]) - 1
            picks.append(last)
    opened = ~event
    if (data.a2[opened] < data.b2[opened]).any():
        picks.append(data.m - 1)
    first_only = opened & (data.a2 >= data.b2)
    if first_only.any():
        picks.append(int(data.b1[first_only].max()) - 1)
    return np.unique(np.asarray(picks, dtype=np.int64))


def _nnls(gram: FloatArray, target: FloatArray, passive: BoolArray) -> FloatArray:
    """argmin ½ xᵀGx − targetᵀx over x ≥ 0, by block principal pivoting.

    Kim and Park (2011, *SIAM J. Sci. Comput.* 33:3261): solve on the passive set, then move
    every variable that breaks the Kuhn–Tucker conditions (x < 0 inside, gradient < 0 outside)
    across at once; after three exchanges that do not shrink the set of offenders, move only the
    last one (the backup rule of Portugal, Júdice and Vicente, which cannot cycle).
    Warm-started from the current support, it usually settles in two or three solves.
    """
    n = target.size
    passive = passive.copy()
    x = np.zeros(n)
    scale = max(float(np.abs(target).max(initial=0.0)), 1e-300)
    tol = 1e-12 * scale
    fewest, chances = n + 1, 3
    for _ in range(5 * n + 10):
        index = np.flatnonzero(passive)
        x[:] = 0.0
        if index.size:
            sub = gram[np.ix_(index, index)]
            try:
                x[index] = np.linalg.solve(sub, target[index])
            except np.linalg.LinAlgError:
                x[index] = np.linalg.lstsq(sub, target[index], rcond=None)[0]
        gradient = gram @ x - target
        offenders = (passive & (x < 0.0)) | (~passive & (gradient < -tol))
        count = int(offenders.sum())
        if count == 0:
            break
        if count < fewest:
            fewest, chances = count, 3
            passive ^= offenders
        elif chances > 0:
            chances -= 1
            passive ^= offenders
        else:
            last = int(np.flatnonzero(offenders)[-1])
            passive[last] = not passive[last]
    return np.maximum(x, 0.0)


@dataclasses.dataclass(frozen=True)
class GroupFit:
    """The NPMLE of one group."""

    mass: FloatArray
    log_likelihood: float
    iterations: int
    converged: bool


def _solve(data: _Group, *, tolerance: float, max_iterations: int) -> GroupFit:
    """Constrained Newton method (module docstring) for one group."""
    m = data.m
    total = float(data.weight.sum())
    p = np.zeros(m)
    start = _stabbing_cells(data)
    p[start] = 1.0 / start.size
    block = data.cause.astype(np.int64)
    previous = -np.inf
    for iteration in range(1, max_iterations + 1):
        d = data.probability(p)
        loglik = float(data.weight @ np.log(d))
        h = data.spread(data.weight / d)
        gradient = h - total
        support = p > 0
        if (
            loglik - previous < tolerance
            and gradient[~support].max(initial=-np.inf) <= GRADIENT_TOLERANCE * total
        ):
            return GroupFit(p, loglik, iteration, True)
        previous = loglik
        # New cells: the largest positive gradient between consecutive support cells.
        segment = np.cumsum(support) + block * (m + 1)
        outside = np.flatnonzero(~support & (gradient > 0))
        new = np.zeros(m, dtype=bool)
        if outside.size:
            order = np.lexsort((-gradient[outside], segment[outside]))
            seg = segment[outside][order]
            first = np.ones(seg.size, dtype=bool)
            first[1:] = seg[1:] != seg[:-1]
            new[outside[order][first]] = True
        cells = np.flatnonzero(support | new)
        gram = data.information(cells, d)
        q = _nnls(gram, 2.0 * h[cells] - total, support[cells])
        if q.sum() <= 0:
            break
        proposal = np.zeros(m)
        proposal[cells] = q / q.sum()
        slope = float(h @ (proposal - p))
        if slope <= 0:
            return GroupFit(p, loglik, iteration, True)
        step = 1.0
        while step > 1e-12:
            candidate = p + step * (proposal - p)
            if data.log_likelihood(candidate) >= loglik + step * slope / 3.0:
                break
            step /= 2.0
        p = candidate
    return GroupFit(p, data.log_likelihood(p), max_iterations, False)


@dataclasses.dataclass(frozen=True)
class Curve:
    """A group's cumulative incidence of cause 1, read off its NPMLE.

    Rows are points joined by straight lines. On the raw NPMLE they come in pairs per cause-1
    cell with mass: (left, F before) and (right, F after), so F₁ is linear inside a cell and
    flat between cells; on a smoothed curve they are a grid (`smooth`). `variance` is the
    variance of F₁ at each row. Past `known_until` (the start of the tail, ∞ without one) F₁
    is unknown.
    """

    time: FloatArray
    cif: FloatArray
    variance: FloatArray
    known_until: float
    mass_covariance: FloatArray | None = None
    """On the raw NPMLE: the covariance of its cells' masses (a cell per pair of rows), from
    which a smoothed curve's variance follows."""

    def at(self, horizons: FloatArray) -> tuple[FloatArray, FloatArray]:
        """F₁ and its variance at each horizon (NaN past `known_until`)."""
        value, var = np.zeros(horizons.size), np.zeros(horizons.size)
        if self.time.size:
            k = np.searchsorted(self.time, horizons, side="right") - 1
            inside = k >= 0
            kk = k[inside]
            nxt = np.minimum(kk + 1, self.time.size - 1)
            span = self.time[nxt] - self.time[kk]
            frac = np.divide(
                horizons[inside] - self.time[kk], span, out=np.zeros(kk.size), where=span > 0
            ).clip(0.0, 1.0)
            value[inside] = self.cif[kk] + frac * (self.cif[nxt] - self.cif[kk])
            var[inside] = self.variance[kk] + frac * (self.variance[nxt] - self.variance[kk])
        unknown = horizons > self.known_until
        value[unknown] = np.nan
        var[unknown] = np.nan
        return value, var

    def first_reaching(self, values: FloatArray, level: float) -> float:
        """First time the row-interpolated curve `values` reaches `level` (NaN if never)."""
        hit = np.flatnonzero(values >= level - QUANTILE_TOLERANCE)
        if hit.size == 0:
            return float("nan")
        j = int(hit[0])
        if j == 0 or self.time[j] == self.time[j - 1]:
            t = float(self.time[j])
        else:
            rise = values[j] - values[j - 1]
            frac = min(max((level - values[j - 1]) / rise, 0.0), 1.0) if rise > 0 else 1.0
            t = float(self.time[j - 1] + frac * (self.time[j] - self.time[j - 1]))
        return t if t <= self.known_until else float("nan")


def log_log_band(cif: FloatArray, variance: FloatArray) -> tuple[FloatArray, FloatArray]:
    """log(−log) transformed 95 % interval of F; NaN where F is 0, 1 or unknown."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_f = np.log(cif)
        se = np.sqrt(np.maximum(variance, 0.0)) / (cif * np.abs(log_f))
        centre = np.log(-log_f)
        low = np.exp(-np.exp(centre + Z_95 * se))
        high = np.exp(-np.exp(centre - Z_95 * se))
    defined = (cif > 0.0) & (cif < 1.0)
    return np.where(defined, low, np.nan), np.where(defined, high, np.nan)


def _curve(data: _Group, fit: GroupFit, cells: Cells, c0: int, g: int) -> Curve:
    """Cause-1 curve of a group with the observed-information variance (module docstring)."""
    p = fit.mass
    support = np.flatnonzero(p > 0)
    info = data.information(support, data.probability(p))
    inverse = np.linalg.pinv(info, hermitian=True)
    ones = inverse.sum(axis=1)
    covariance = inverse - np.outer(ones, ones) / ones.sum()
    mine = data.cause[support] == EVENT
    cov = covariance[np.ix_(mine, mine)]
    prefix = np.diag(cov.cumsum(0).cumsum(1)).copy() if cov.size else np.zeros(0)
    index = support[mine] + c0
    mass = p[support[mine]]
    after = np.cumsum(mass)
    before = after - mass
    var_after = np.maximum(prefix, 0.0)
    var_before = np.concatenate([[0.0], var_after])[:-1]
    return Curve(
        time=np.column_stack([cells.left[index], cells.right[index]]).ravel(),
        cif=np.column_stack([before, after]).ravel(),
        variance=np.column_stack([var_before, var_after]).ravel(),
        known_until=float(cells.tail_left[g]),
        mass_covariance=cov,
    )


def smooth(curve: Curve, sd: float) -> Curve:
    """`curve` smoothed with a kernel of standard deviation `sd` (itself when `sd` is 0 or
    it has no mass), with the smoothed curve's own variance (module docstring; without the
    masses' covariance, the raw curve's read at the new rows). Cells from `known_until` on
    are left out: the kernel would spread their unvouched mass back into the part of the
    curve that is read."""
    if sd <= 0.0 or curve.time.size == 0:
        return curve
    left, right = curve.time[0::2], curve.time[1::2]
    mass = curve.cif[1::2] - curve.cif[0::2]
    known = left < curve.known_until
    if not known.any():
        return curve
    centres = (left[known] + right[known]) / 2.0
    time, cif = smoothed_cif(centres, mass[known], sd)
    if curve.mass_covariance is None:
        _, variance = curve.at(time)
    else:
        covariance = curve.mass_covariance[np.ix_(known, known)]
        variance = smoothed_variance(time, centres, covariance, sd)
    return Curve(time=time, cif=cif, variance=variance, known_until=curve.known_until)


def _bandwidths(obs: Observations) -> FloatArray:
    """Per group, the kernel standard deviation for its cause-1 events (`smoothing`)."""
    mine = obs.cause == EVENT
    group, lower, upper, count = (a[mine] for a in (obs.group, obs.lower, obs.upper, obs.count))
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(obs.n_groups + 1))
    lower, upper, count = lower[order], upper[order], count[order]
    return np.array(
        [bandwidth(lower[a:b], upper[a:b], count[a:b]) for a, b in itertools.pairwise(bounds)]
    )


def _limit_unseen_tails(
    obs: Observations, cells: Cells, mass: FloatArray, curves: list[Curve]
) -> list[Curve]:
    """`curves` known only up to their group's last open order where the orders followed past
    it are too few to vouch for the open ones (`survival.known_until`, the same rule as the
    Aalen–Johansen curves). Without that, the open orders' mass lands on the cells after them
    and a median is read off the last few orders. Groups with a tail keep it."""
    open_ = obs.cause == CENSORED
    last_open = np.full(obs.n_groups, -np.inf)
    np.maximum.at(last_open, obs.group[open_], obs.upper[open_])
    # An event order was surely followed past the last open one when it came after it.
    came = np.where(obs.lower >= obs.upper, obs.upper, obs.lower)
    followed = ~open_ & (came > last_open[obs.group])
    beyond = np.bincount(
        obs.group[followed], weights=obs.count[followed], minlength=obs.n_groups
    ).astype(np.float64)
    resolved = np.zeros(obs.n_groups)
    done = cells.right <= last_open[cells.group]
    np.add.at(resolved, cells.group[done], mass[done])
    with np.errstate(divide="ignore"):
        bound = unseen_tail_bound(np.clip(1.0 - resolved, 0.0, 1.0), beyond)
    unvouched = np.isfinite(last_open) & ((beyond == 0) | (bound > UNSEEN_TAIL_MAX))
    return [
        dataclasses.replace(curve, known_until=float(last_open[g]))
        if unvouched[g] and last_open[g] < curve.known_until
        else curve
        for g, curve in enumerate(curves)
    ]


@dataclasses.dataclass(frozen=True)
class Fit:
    """The NPMLE of every group, with each group's cause-1 curve.

    Attributes:
        cells: the cells.
        patterns: the distinct observations.
        mass: probability of each cell (sums to 1 per group).
        groups: per group, its solver result.
        curves: per group, its cumulative incidence of cause 1 (the raw NPMLE).
        smoothed: per group, the same curve smoothed (`smooth`); figures are read off it.
        bandwidths: per group, the kernel standard deviation used (0: not smoothed).
    """

    cells: Cells
    patterns: Patterns
    mass: FloatArray
    groups: list[GroupFit]
    curves: list[Curve]
    smoothed: list[Curve]
    bandwidths: FloatArray


def fit(
    obs: Observations,
    *,
    tolerance: float = TOLERANCE,
    max_iterations: int = MAX_ITERATIONS,
) -> Fit:
    """The NPMLE of every group of `obs` (module docstring)."""
    # The solves are small: more BLAS threads only contend, badly so on a busy machine
    # (measured 15x slower with both cores taken by another process).
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit(obs, tolerance=tolerance, max_iterations=max_iterations)


def _fit(obs: Observations, *, tolerance: float, max_iterations: int) -> Fit:
    """`fit` on the BLAS threads it was given."""
    cells, patterns = build_cells(obs)
    mass = np.zeros(cells.size)
    groups: list[GroupFit] = []
    curves: list[Curve] = []
    for g in range(obs.n_groups):
        c0, c1 = int(cells.group_start[g]), int(cells.group_start[g + 1])
        if c0 == c1:
            result = GroupFit(np.zeros(0), 0.0, 0, True)
            groups.append(result)
            curves.append(Curve(np.zeros(0), np.zeros(0), np.zeros(0), np.inf))
            continue
        result, curve = _solved(cells, patterns, g, tolerance, max_iterations)
        mass[c0:c1] = result.mass
        groups.append(result)
        curves.append(curve)
    curves = _limit_unseen_tails(obs, cells, mass, curves)
    sds = _bandwidths(obs)
    return Fit(
        cells=cells,
        patterns=patterns,
        mass=mass,
        groups=groups,
        curves=curves,
        smoothed=[smooth(curve, sd) for curve, sd in zip(curves, sds, strict=True)],
        bandwidths=sds,
    )


SOLVED_GROUPS_KEPT = 256
"""Groups whose fit is remembered (`_solved`): a refresh fits the same provider-wide groups
for its summaries, its curves and the scorecard's all-time row."""
SOLVED_BYTES_KEPT = 256 << 20
"""Most bytes of arrays the remembered fits may hold (a curve keeps its masses' covariance,
which grows with the square of its cells)."""
_SOLVED: OrderedDict[bytes, tuple[GroupFit, Curve]] = OrderedDict()


def _solved(
    cells: Cells, patterns: Patterns, g: int, tolerance: float, max_iterations: int
) -> tuple[GroupFit, Curve]:
    """Group `g`'s NPMLE and raw curve, from memory when a group with the same cells and
    observations was fitted before (the result is a function of those alone)."""
    c0, c1 = int(cells.group_start[g]), int(cells.group_start[g + 1])
    data = _group(cells, patterns, g)
    digest = hashlib.blake2b(repr((tolerance, max_iterations)).encode(), digest_size=20)
    for part in (
        data.cause, data.weight, data.a1, data.b1, data.a2, data.b2,
        cells.left[c0:c1], cells.right[c0:c1], cells.tail_left[g : g + 1],
    ):  # fmt: skip
        digest.update(np.ascontiguousarray(part).tobytes())
        digest.update(b"|")
    key = digest.digest()
    if key in _SOLVED:
        _SOLVED.move_to_end(key)
        return _SOLVED[key]
    result = _solve(data, tolerance=tolerance, max_iterations=max_iterations)
    curve = _curve(data, result, cells, c0, g)
    for shared in (result.mass, curve.time, curve.cif, curve.variance, curve.mass_covariance):
        if shared is not None:
            shared.flags.writeable = False  # handed out again: nobody may change it in place
    solved = result, curve
    _SOLVED[key] = solved
    while len(_SOLVED) > 1 and (
        len(_SOLVED) > SOLVED_GROUPS_KEPT
        or sum(_nbytes(*kept) for kept in _SOLVED.values()) > SOLVED_BYTES_KEPT
    ):
        _SOLVED.popitem(last=False)
    return solved


def _nbytes(result: GroupFit, curve: Curve) -> int:
    arrays = (result.mass, curve.time, curve.cif, curve.variance, curve.mass_covariance)
    return sum(array.nbytes for array in arrays if array is not None)


EVENT_AFTER = "event_after_s"
EVENT_BY = "event_by_s"


@dataclasses.dataclass(frozen=True)
class GroupedFit:
    """`Fit` of per-order records, with the group columns of each group.

    Attributes:
        keys: one row per group, in group-index order, with the group columns.
        fit: the NPMLE of every group.
    """

    keys: pl.DataFrame
    fit: Fit


def fit_records(
    records: pl.DataFrame,
    group_by: Sequence[str],
    *,
    code: str = "event_code",
    after: str = EVENT_AFTER,
    by: str = EVENT_BY,
) -> GroupedFit:
    """The NPMLE of every group of per-order records.

    Args:
        records: one row per order with `code` (0 open, 1 event, 2 competing) and the event's
            bounds: it lies in (`after`, `by`], at exactly `by` where the two are equal; for an
            open order `after` is its last poll and `by` is ignored (∞); or one row per `WEIGHT`
            identical orders.
        group_by: columns that define the groups; at least one.
        code: the event-code column.
        after: the lower-bound column.
        by: the upper-bound column.

    Returns:
        The fit and each group's key.
    """
    groups = list(group_by)
    if not groups:
        raise ValueError("fit_records needs at least one group column")
    keys = records.select(groups).unique(maintain_order=True)
    indexed = weighted(records).join(
        keys.with_row_index("_group"), on=groups, how="left", nulls_equal=True
    )
    is_open = pl.col(code) == CENSORED
    # Orders with the same group, outcome and bounds enter once, with their count.
    arrays = (
        indexed.select(
            pl.col("_group").cast(pl.Int64),
            pl.col(code).cast(pl.Int8),
            pl.when(is_open).then(None).otherwise(pl.col(after)).cast(pl.Float64).alias("_lower"),
            pl.when(is_open)
            .then(pl.col(after))
            .otherwise(pl.col(by))
            .cast(pl.Float64)
            .alias("_upper"),
            pl.col(WEIGHT),
        )
        .group_by("_group", code, "_lower", "_upper")
        .agg(pl.col(WEIGHT).sum().alias("_count"))
        .sort("_group", code, "_lower", "_upper", nulls_last=True)
    )
    obs = observations(
        arrays["_group"].to_numpy(),
        arrays[code].to_numpy(),
        arrays["_lower"].to_numpy(),
        arrays["_upper"].to_numpy(),
        n_groups=keys.height,
        count=arrays["_count"].to_numpy(),
    )
    return GroupedFit(keys=keys, fit=fit(obs))


def _nullable(values: Sequence[float] | FloatArray) -> pl.Series:
    return pl.Series(np.asarray(values, dtype=np.float64)).fill_nan(None)


def quantiles(fitted: GroupedFit, q: float = 0.5) -> pl.DataFrame:
    """Time at which each group's cumulative incidence reaches `q`, with its 95 % interval.

    The interval inverts the smoothed curve's band, each side at least as wide as the same
    inversion on a curve smoothed `SLOPE_SMOOTHING` times as wide reads it (module
    docstring, "Narrow intervals").

    Returns:
        One row per group: `quantile_s`, `quantile_ci_low_s`, `quantile_ci_high_s` (each null
        when the curve, or its bound, does not reach `q` while it is known).
    """
    point, low, high = [], [], []
    fit = fitted.fit
    for curve, raw, sd in zip(fit.smoothed, fit.curves, fit.bandwidths, strict=True):
        read = _quantile_interval(curve, q)
        if sd > 0.0:
            wide = _quantile_interval(smooth(raw, SLOPE_SMOOTHING * sd), q)
            read = _at_least_as_wide(read, wide, curve.known_until)
        point.append(read[0])
        low.append(read[1])
        high.append(read[2])
    return fitted.keys.with_columns(
        _nullable(point).alias("quantile_s"),
        _nullable(low).alias("quantile_ci_low_s"),
        _nullable(high).alias("quantile_ci_high_s"),
    )


def _quantile_interval(curve: Curve, q: float) -> tuple[float, float, float]:
    """Where `curve` reaches `q`, and where the upper and the lower bound of its band do."""
    band_low, band_high = log_log_band(curve.cif, curve.variance)
    return (
        curve.first_reaching(curve.cif, q),
        curve.first_reaching(np.where(np.isnan(band_high), curve.cif, band_high), q),
        curve.first_reaching(np.where(np.isnan(band_low), curve.cif, band_low), q),
    )


def _at_least_as_wide(
    read: tuple[float, float, float], wide: tuple[float, float, float], known_until: float
) -> tuple[float, float, float]:
    """`read`'s interval with each side widened to `wide`'s, around `read`'s own estimate.

    Only the widths are taken: the wider kernel's curve is flatter, and its estimate lies
    elsewhere (later, on a right-skewed time). Left as it is where either is open-ended; open
    above where the widened bound would lie past `known_until`, where the curve is unknown.
    """
    point, low, high = read
    wide_point, wide_low, wide_high = wide
    if any(math.isnan(value) for value in (*read, *wide)):
        return read
    high = max(high, point + (wide_high - wide_point))
    return (
        point,
        max(min(low, point - (wide_point - wide_low)), 0.0),
        high if high <= known_until else math.nan,
    )


def values_at(fitted: GroupedFit, horizons_s: Sequence[float]) -> pl.DataFrame:
    """Each group's cumulative incidence at each horizon, with its 95 % interval (long format).

    Before the first cell the incidence is 0 (interval null); past `known_until` every column
    is null, as in `pipeline.analytics.survival.values_at`.

    Returns:
        One row per (group, horizon): the group columns, `horizon_s`, `cif`, `cif_low`,
        `cif_high`.
    """
    horizons = np.asarray(horizons_s, dtype=np.float64)
    cif, low, high = [], [], []
    for curve in fitted.fit.smoothed:
        value, variance = curve.at(horizons)
        band_low, band_high = log_log_band(value, variance)
        cif.append(value)
        low.append(band_low)
        high.append(band_high)
    n = len(fitted.fit.smoothed)
    index = pl.Series("_group", np.repeat(np.arange(n), horizons.size), dtype=pl.UInt32)
    values = pl.DataFrame(
        {
            "_group": index,
            "horizon_s": np.tile(horizons, n),
            "cif": _nullable(np.concatenate(cif) if n else []),
            "cif_low": _nullable(np.concatenate(low) if n else []),
            "cif_high": _nullable(np.concatenate(high) if n else []),
        }
    )
    return (
        fitted.keys.with_row_index("_group").join(values, on="_group", how="inner").drop("_group")
    )


def curve_table(fitted: GroupedFit) -> pl.DataFrame:
    """Each group's cumulative incidence as points to join with straight lines (for plots).

    Returns:
        Per group, the smoothed curve's rows (two per cell with mass where it is not smoothed):
        the group columns, `time_s`, `cif`, `cif_var`,
        `cif_low`, `cif_high`, and `known_until_s` (null when every order's outcome is known).
    """
    parts = []
    for g, curve in enumerate(fitted.fit.smoothed):
        band_low, band_high = log_log_band(curve.cif, curve.variance)
        parts.append(
            pl.DataFrame(
                {
                    "_group": pl.Series(np.full(curve.time.size, g), dtype=pl.UInt32),
                    "time_s": curve.time,
                    "cif": curve.cif,
                    "cif_var": curve.variance,
                    "cif_low": _nullable(band_low),
                    "cif_high": _nullable(band_high),
                    "known_until_s": _nullable(np.full(curve.time.size, curve.known_until)),
                },
                schema_overrides={"known_until_s": pl.Float64},
            ).with_columns(
                pl.col("known_until_s").replace(float("inf"), None),
            )
        )
    rows = pl.concat(parts) if parts else pl.DataFrame(schema={"_group": pl.UInt32})
    return (
        fitted.keys.with_row_index("_group")
        .join(rows, on="_group", how="inner", maintain_order="right")
        .drop("_group")
    )
