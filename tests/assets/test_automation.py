"""Schedule and sensor: the right run requests, no pile-up of queued windows, inbox detection."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from pipeline.assets.automation import (
    INGESTION_TAG,
    inbox_fingerprint,
    inbox_sensor,
    ingestion_job,
    ingestion_schedule,
)


def test_schedule_requests_one_tagged_ingestion_run() -> None:
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(instance=instance)
        request = ingestion_schedule(context)
    assert isinstance(request, dg.RunRequest)
    assert request.tags[INGESTION_TAG] == "all"


def test_schedule_skips_while_a_previous_window_waits_in_the_queue() -> None:
    with dg.instance_for_test() as instance:
        from pipeline.definitions import defs

        job = defs.resolve_job_def(ingestion_job.name)
        instance.create_run_for_job(job, status=dg.DagsterRunStatus.NOT_STARTED)
        result = ingestion_schedule(dg.build_schedule_context(instance=instance))
    assert isinstance(result, dg.SkipReason)


def test_inbox_fingerprint_changes_when_a_file_arrives(tmp_path: Path) -> None:
    assert inbox_fingerprint(tmp_path) is None
    (tmp_path / "a.csv").write_text("provider,order_id\n")
    first = inbox_fingerprint(tmp_path)
    (tmp_path / "b.csv").write_text("provider,order_id\n")
    assert first is not None and inbox_fingerprint(tmp_path) not in (None, first)


def test_inbox_sensor_requests_a_registration_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path))
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance)
        assert isinstance(inbox_sensor(context), dg.SkipReason)
        (tmp_path / "inbox").mkdir()
        (tmp_path / "inbox" / "orders.csv").write_text("provider,order_id\nbaanx,o-1\n")
        request = inbox_sensor(dg.build_sensor_context(instance=instance))
    assert isinstance(request, dg.RunRequest) and request.run_key.startswith("inbox-")
