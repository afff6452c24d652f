"""Hypothesis profiles for the fuzz harness.

- `ci` (default): a few dozen examples per property, derandomized, so every CI run tries the same
  inputs and a red run is reproducible by running it again; no example database.
- `long`: thousands of random examples per property, for a run by hand. Failing examples are
  kept in `.cache/hypothesis/` (git-ignored) and replayed first next time; the failure report
  prints a `@reproduce_failure` blob.

Choose with `HYPOTHESIS_PROFILE=long` (or hypothesis' own `--hypothesis-profile long`, which wins).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

PROFILE_ENV = "HYPOTHESIS_PROFILE"
DEFAULT_PROFILE = "ci"
LONG_RUN_DATABASE = Path(__file__).resolve().parents[2] / ".cache" / "hypothesis"

# Timing health checks would make a red CI run depend on how busy the shared machine is.
_UNTIMED = [HealthCheck.too_slow]

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=_UNTIMED,
)
settings.register_profile(
    "long",
    max_examples=5_000,
    deadline=None,
    derandomize=False,
    database=DirectoryBasedExampleDatabase(LONG_RUN_DATABASE),
    print_blob=True,
    suppress_health_check=_UNTIMED,
)


def pytest_configure(config: pytest.Config) -> None:
    """Load the profile named by `HYPOTHESIS_PROFILE` unless `--hypothesis-profile` was given."""
    if config.getoption("hypothesis_profile", default=None) is None:
        settings.load_profile(os.environ.get(PROFILE_ENV, DEFAULT_PROFILE))
