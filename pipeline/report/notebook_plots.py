"""Matplotlib drawing for the notebook, where people restyle and extend the plots themselves.

The report draws its own charts (`pipeline.report.charts`, SVG); the notebook draws the same
curves, from the same points (`curve_points`), on matplotlib axes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from pipeline.report.charts import curve_points
from pipeline.report.markup import DurationUnit
from pipeline.report.plot import BAND_OPACITY
from pipeline.report.providers import provider_colour, provider_name, provider_order

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def draw_cumulative_incidence(
    axes: Axes,
    curves: pl.DataFrame,
    *,
    unit: DurationUnit,
    counts: dict[str, int] | None = None,
) -> None:
    """Draw each provider's cumulative incidence and its 95 % band onto `axes`; each line's
    gid is its provider.

    Args:
        axes: where to draw.
        curves: `incidence_curves` rows of one measure (`provider`, `time_s`, `cif`,
            `cif_low`, `cif_high`, `known_until_s`).
        unit: the unit of the time axis (`pipeline.report.charts.curves_unit`).
        counts: orders per provider, shown in the legend.
    """
    for name in provider_order(curves["provider"].unique().to_list()):
        frame = curve_points(curves.filter(pl.col("provider") == name))
        colour = provider_colour(name)
        x = (frame["time_s"] / unit.seconds).to_list()
        # A `$` would start matplotlib's mathtext.
        legend = provider_name(name).replace("$", r"\$")
        if counts and name in counts:
            legend = f"{legend} (n={counts[name]})"
        axes.plot(x, frame["cif"].to_list(), color=colour, linewidth=2, label=legend, gid=name)
        axes.fill_between(
            x,
            frame["cif_low"].to_list(),
            frame["cif_high"].to_list(),
            color=colour,
            alpha=BAND_OPACITY,
            linewidth=0,
        )
