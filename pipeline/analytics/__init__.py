"""Analytics over the observation log: status history and time-to-event statistics.

Pure polars functions, frames in and frames out; the Dagster assets store each result under the
table name given in its docstring.

- `history`: `build_status_history`, `update_status_history` (incremental), `late_observations`.
- `events`: per-order time-to-event records (origin, outcome, bounds, censoring).
- `survival`: Kaplan–Meier, Aalen–Johansen, intervals and quantiles, vectorised over groups.
- `npmle`: the nonparametric MLE of cumulative incidence for interval-censored competing risks
  (events seen only between two polls), with its intervals and quantiles.
- `metrics`: `time_to_code`, `time_to_completion`, `expiry_rates`, `expiry_rates_over_time`.
- `rollups`: mergeable per-minute poll and latency rollups of the log, and `error_mix`.
- `scorecard`: `provider_scorecard` (rolling windows) and `provider_reliability` (all time).
- `curves`: `incidence_curves`, the cumulative-incidence curves behind the time-to-event medians.
"""

from pipeline.analytics.curves import incidence_curves
from pipeline.analytics.events import time_to_event_records
from pipeline.analytics.history import (
    HISTORY_COLUMNS,
    build_status_history,
    late_observations,
    status_history_delta,
    update_status_history,
)
from pipeline.analytics.metrics import (
    expiry_rates,
    expiry_rates_over_time,
    time_to_code,
    time_to_completion,
)
from pipeline.analytics.rollups import error_mix, latency_rollups, poll_rollups
from pipeline.analytics.scorecard import provider_reliability, provider_scorecard

__all__ = [
    "HISTORY_COLUMNS",
    "build_status_history",
    "error_mix",
    "expiry_rates",
    "expiry_rates_over_time",
    "incidence_curves",
    "late_observations",
    "latency_rollups",
    "poll_rollups",
    "provider_reliability",
    "provider_scorecard",
    "status_history_delta",
    "time_to_code",
    "time_to_completion",
    "time_to_event_records",
    "update_status_history",
]
