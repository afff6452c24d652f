"""How a long polling window is cut into reports: one per interval, handed from the polling
thread to the op's thread through a queue; a report due just before the end is folded into the
final one; a failed window hands over no final report (its figures would pass for a quiet one);
a cancelled polling thread still ends the reports, so the op never waits forever; a provider not
asked at all in an interval keeps its previous outage verdict."""

from __future__ import annotations

import asyncio
import threading

from pipeline.assets.ingestion import IntervalReporter, PollingThread, in_outage
from pipeline.polling.tick import ProviderTick, TickResult


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _tick(polls: int) -> TickResult:
    return TickResult({"baanx": ProviderTick("baanx", attempts=polls, ok=polls)})


def _feed(reporter: IntervalReporter, clock: Clock, seconds: list[float]) -> None:
    for second in seconds:
        clock.now = 1000.0 + second
        reporter.on_tick(_tick(1))


def test_one_report_per_interval_and_the_rest_in_the_final_one() -> None:
    clock = Clock()
    reporter = IntervalReporter(["baanx"], window_s=12, report_every_s=4, clock=clock)
    _feed(reporter, clock, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
    reporter.finish(_tick(0))
    reports = list(reporter.reports(wait_s=0.01))
    assert [(r.result.providers["baanx"].attempts, r.final) for r in reports] == [
        (4, False),
        (4, False),
        (4, True),  # the report due at 12 s is the final one, not a stub after it
    ]
    assert [r.interval_s for r in reports] == [4, 4, 4]
    assert reporter.ended is not None and reporter.ended.error is None


def test_a_report_due_just_before_the_end_is_folded_into_the_final_one() -> None:
    clock = Clock()
    reporter = IntervalReporter(["baanx"], window_s=9, report_every_s=4, clock=clock)
    _feed(reporter, clock, [4, 8, 9])  # at 8 s only 1 s is left: less than half an interval
    reporter.finish(_tick(0))
    reports = list(reporter.reports(wait_s=0.01))
    assert [(r.result.providers["baanx"].attempts, r.final) for r in reports] == [
        (1, False),
        (2, True),
    ]


def test_a_failed_window_ends_the_reports_without_a_final_one() -> None:
    clock = Clock()
    reporter = IntervalReporter(["baanx"], window_s=12, report_every_s=4, clock=clock)
    _feed(reporter, clock, [4, 5])
    reporter.finish(None, RuntimeError("poller broke"))
    reports = list(reporter.reports(wait_s=0.01))
    assert [r.final for r in reports] == [False]
    assert reporter.ended is not None and isinstance(reporter.ended.error, RuntimeError)


def test_a_cancelled_polling_thread_still_ends_the_reports() -> None:
    reporter = IntervalReporter(["baanx"], window_s=3600, report_every_s=60)
    started = threading.Event()

    async def forever() -> TickResult:
        started.set()
        await asyncio.sleep(3600)
        return _tick(0)

    thread = PollingThread(forever, reporter.finish)
    thread.start()
    assert started.wait(timeout=10)
    thread.cancel()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert list(reporter.reports(wait_s=0.01)) == []
    assert reporter.ended is not None
    assert isinstance(reporter.ended.error, asyncio.CancelledError)


def test_outage_verdicts() -> None:
    assert not in_outage(ProviderTick("baanx", attempts=5, ok=1), was_down=True)
    assert in_outage(ProviderTick("baanx", attempts=5, ok=0))
    refused = ProviderTick("baanx")
    refused.skipped["circuit_open"] += 1
    assert in_outage(refused)
    idle = ProviderTick("baanx")  # nothing asked: no news either way
    assert not in_outage(idle)
    assert in_outage(idle, was_down=True)
