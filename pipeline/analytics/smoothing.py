"""The smoothed NPMLE of a cumulative incidence from polled (interval-censored) events.

The NPMLE puts its mass on a few narrow cells and none between them, so its curve rises in
steps whose places depend on which polls happened to bracket which events; a median read off it
jumps by up to a polling interval between samples. Smoothing the NPMLE with a kernel (the
*smoothed maximum likelihood estimator*, Groeneboom, Jongbloed and Witte 2010, *Ann. Statist.*
38:352; Groeneboom and Ketelaars 2011, *Stat. Neerl.* 65:232) keeps its consistency and makes
smooth functionals such as the median converge faster.

Bandwidth: the smaller of half the median polling interval around the group's events and half
Silverman's rule of thumb (0.45 · min(sd, IQR/1.34) · n^(−1/5)) on their interval midpoints,
for a Gaussian kernel; the kernel used is Epanechnikov (compact, with a closed-form integral)
at the same standard deviation. Events seen at exact times have no interval: a group whose
median interval is zero is not smoothed, so exact-time providers keep the Aalen–Johansen curve.
Near zero the kernel is reflected, so no mass falls before the origin.

Measured on simulated polling (80 and 300 orders, polls a random phase apart, interval/median
0.05–2, 0–50 % open): the smoothed median was within max(¼ interval, 5 %) of the same orders'
true median in 77–100 % of samples where the raw NPMLE read-off managed 55–100 %, and never
worse by more than sampling noise; with half the orders still open both are limited by the
outcomes nobody has seen yet.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

EPANECHNIKOV_SD = math.sqrt(5.0)
"""Half-width of an Epanechnikov kernel with unit standard deviation."""
SILVERMAN = 0.45
"""Half Silverman's 0.9: undersmoothed, so the kernel's bias (it lowers a concave curve and
delays its median) stays below the noise the intervals account for."""
GRID_POINTS = 1024
"""Points at which the smoothed curve is evaluated (joined by straight lines)."""
_CHUNK = 1 << 22
"""Kernel evaluations done at once (bounds memory)."""


def bandwidth(lower: FloatArray, upper: FloatArray, counts: FloatArray | None = None) -> float:
    """Kernel standard deviation for the events seen in (lower, upper] (lower == upper: an
    exact time), each standing for `counts` orders (default one); 0 when the median interval is
    zero (see the module docstring). Counted events give what as many repeated ones would."""
    weight = np.ones(upper.size) if counts is None else np.asarray(counts, dtype=np.float64)
    if upper.size == 0 or weight.sum() <= 0:
        return 0.0
    width = _quantile(upper - lower, weight, 0.5)
    if width <= 0.0:
        return 0.0
    centre = (lower + upper) / 2.0
    n = float(weight.sum())
    mean = float(np.dot(weight, centre)) / n
    sd = math.sqrt(max(float(np.dot(weight, (centre - mean) ** 2)) / n, 0.0))
    iqr = _quantile(centre, weight, 0.75) - _quantile(centre, weight, 0.25)
    spread = min(sd, iqr / 1.34)
    if spread <= 0.0:
        return width / 2.0
    return min(width / 2.0, SILVERMAN * spread * n ** (-0.2))


def _quantile(values: FloatArray, counts: FloatArray, q: float) -> float:
    """`np.percentile(values repeated counts times, 100 q)` (linear interpolation between the
    two nearest ranks) without repeating them."""
    order = np.argsort(values, kind="stable")
    ordered, through = values[order], np.cumsum(counts[order])
    rank = (through[-1] - 1.0) * q
    below, above = math.floor(rank), math.ceil(rank)
    at = np.searchsorted(through, [below, above], side="right")
    low, high = float(ordered[at[0]]), float(ordered[at[1]])
    return low + (rank - below) * (high - low)


def integrated_kernel(u: FloatArray) -> FloatArray:
    """∫ K from −1 to u for the Epanechnikov kernel K on [−1, 1]: 1/2 + 3/4 v − 1/4 v³."""
    v = np.clip(u, -1.0, 1.0)
    return 0.5 + v * (0.75 - 0.25 * v * v)  # `v**3` calls pow() per element: 7x slower


def smoothed_cif(
    centres: FloatArray, masses: FloatArray, sd: float
) -> tuple[FloatArray, FloatArray]:
    """Grid times and the kernel-smoothed cumulative sum of `masses` placed at `centres`
    (reflected at zero), from just before the first centre's kernel to past the last's."""
    half = EPANECHNIKOV_SD * sd
    start = max(0.0, float(centres.min()) - half)
    grid = np.linspace(start, float(centres.max()) + half, GRID_POINTS)
    # Reflection at zero: each centre also stands at its mirror image, and the mirror images'
    # mass, which lies wholly before every grid time once past their kernels, is taken off.
    points = np.concatenate([centres, -centres])
    weights = np.concatenate([masses, masses])
    order = np.argsort(points, kind="stable")
    points, weights = points[order], weights[order]
    # The kernel is compact: points `half` or more before a grid time count whole, points
    # `half` or more after it not at all, and only those in between are evaluated (25x fewer
    # evaluations than the whole grid by every point, on the refresh's groups).
    first = np.searchsorted(points, grid - half, side="right")
    # A kernel narrower than the float spacing at a grid time leaves a point there on both
    # sides: it counts whole, and nothing is evaluated.
    end = np.maximum(np.searchsorted(points, grid + half, side="left"), first)
    cif = np.concatenate([[0.0], np.cumsum(weights)])[first] - float(masses.sum())
    pairs_before = np.concatenate([[0], np.cumsum(end - first)])
    row = 0
    while row < grid.size:
        fits = int(np.searchsorted(pairs_before, pairs_before[row] + _CHUNK, side="right")) - 1
        stop = min(grid.size, max(row + 1, fits))
        counts = end[row:stop] - first[row:stop]
        rows = np.repeat(np.arange(stop - row), counts)
        at = np.arange(pairs_before[row], pairs_before[stop]) - np.repeat(
            pairs_before[row:stop] - first[row:stop], counts
        )
        inside = integrated_kernel((grid[row + rows] - points[at]) / half) * weights[at]
        cif[row:stop] += np.bincount(rows, weights=inside, minlength=stop - row)
        row = stop
    return grid, np.maximum.accumulate(cif)


def smoothed_variance(
    grid: FloatArray, centres: FloatArray, covariance: FloatArray, sd: float
) -> FloatArray:
    """Variance of `smoothed_cif` at each grid time, given the covariance of the masses at
    `centres` (ascending, at or after zero) and the kernel's standard deviation `sd`.

    The smoothed curve at t is Σⱼ gⱼ(t) mⱼ, gⱼ(t) the kernel's weight of centre j before t
    (with its reflection at zero): 1 for a centre a kernel's half-width or more before t, 0 for
    one as far after it. Its variance gᵀCg is then the covariance block of the centres wholly
    before t (a 2-D prefix sum), twice their covariance with the few centres under the kernel,
    and those few among themselves: the cost follows the centres within reach of each grid
    time, not all of them squared.
    """
    half = EPANECHNIKOV_SD * sd
    size = centres.size
    before = np.searchsorted(centres, grid - half, side="right")
    end = np.maximum(np.searchsorted(centres, grid + half, side="left"), before)
    # Row a: Σ over the first a centres of C[i, :]; its prefix along the row gives the block.
    column_sums = np.vstack([np.zeros(size), np.cumsum(covariance, axis=0)])
    block = np.concatenate([[0.0], np.diag(np.cumsum(column_sums[1:], axis=1)).copy()])
    variance = block[before].copy()
    reach = end - before
    pairs_before = np.concatenate([[0], np.cumsum(reach * reach)])
    row = 0
    while row < grid.size:
        fits = int(np.searchsorted(pairs_before, pairs_before[row] + _CHUNK, side="right")) - 1
        stop = min(grid.size, max(row + 1, fits))
        rows = np.arange(row, stop)
        # The centres under each row's kernel, with their weights.
        under = np.repeat(rows, reach[row:stop])
        first_under = np.concatenate([[0], np.cumsum(reach[row:stop])])[:-1]
        col = before[under] + np.arange(under.size) - np.repeat(first_under, reach[row:stop])
        weight = _kernel_weight(grid[under], centres[col], half)
        variance[row:stop] += 2.0 * np.bincount(
            under - row, weights=weight * column_sums[before[under], col], minlength=stop - row
        )
        # Those centres in pairs, row by row.
        square = reach[row:stop] ** 2
        pair_row = np.repeat(np.arange(stop - row), square)
        q = np.arange(pair_row.size) - np.repeat(np.cumsum(square) - square, square)
        width = reach[row:stop][pair_row]
        first = first_under[pair_row]
        i, j = first + q // np.maximum(width, 1), first + q % np.maximum(width, 1)
        inside = weight[i] * weight[j] * covariance[col[i], col[j]]
        variance[row:stop] += np.bincount(pair_row, weights=inside, minlength=stop - row)
        row = stop
    return np.maximum(variance, 0.0)


def _kernel_weight(time: FloatArray, centre: FloatArray, half: float) -> FloatArray:
    """The kernel's weight of mass at `centre` before `time`, reflected at zero."""
    return (
        integrated_kernel((time - centre) / half) + integrated_kernel((time + centre) / half) - 1.0
    )
