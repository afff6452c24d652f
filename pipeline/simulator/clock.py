"""Clocks: the real one, and a fake one tests move by hand.

Every order's state is a pure function of its drawn timeline and the current time, so a test can
create orders, advance a `FakeClock` by minutes and poll again without sleeping.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

DEFAULT_FAKE_START = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


class Clock(Protocol):
    """Something that tells the current time as an aware UTC datetime."""

    def now(self) -> datetime:
        """The current time (aware, UTC)."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        """The current time (aware, UTC)."""
        return datetime.now(UTC)


class FakeClock:
    """A clock that only moves when told to.

    Args:
        start: the initial time (aware); defaults to 2026-01-01T12:00:00Z.
    """

    def __init__(self, start: datetime = DEFAULT_FAKE_START) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware start time")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        """The current fake time."""
        return self._now

    def advance(self, seconds: float) -> datetime:
        """Move forward by `seconds` and return the new time."""
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._now += timedelta(seconds=seconds)
        return self._now

    def set(self, moment: datetime) -> None:
        """Jump to `moment` (aware, not earlier than now)."""
        moment = moment.astimezone(UTC)
        if moment < self._now:
            raise ValueError("a clock does not go backwards")
        self._now = moment
