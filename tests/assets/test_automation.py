"""Sensors: the ingestion sensor keeps exactly one long run polling and asks for its successor
shortly before it ends (never while one waits); the inbox sensor detects new CSV files."""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.remote_origin import (
    RegisteredCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)

from pipeline.assets.automation import (
    HANDOVER_LEAD_S,
    INGESTION_TAG,
    inbox_fingerprint,
    inbox_sensor,
    ingestion_job,
    ingestion_sensor,
)
from pipeline.assets.ingestion import POLLS_UNTIL_TAG


def _ingestion_run(
    instance: dg.DagsterInstance, status: dg.DagsterRunStatus, polls_for_s: float | None = None
) -> None:
    """An ingestion run in `status`; with `polls_for_s`, tagged as polling that much longer."""
    from pipeline.definitions import defs

    tags = {INGESTION_TAG: "all"}
    if polls_for_s is not None:
        tags[POLLS_UNTIL_TAG] = f"{time.time() + polls_for_s:.0f}"
    instance.create_run_for_job(
        defs.resolve_job_def(ingestion_job.name),
        status=status,
        tags=tags,
        remote_job_origin=_origin() if status == dg.DagsterRunStatus.QUEUED else None,
    )


def _origin() -> RemoteJobOrigin:
    # Dagster refuses a queued run without the code location the daemon would launch it from.
    location = RegisteredCodeLocationOrigin("order_status_history")
    return RemoteJobOrigin(RemoteRepositoryOrigin(location, "__repository__"), ingestion_job.name)


def _evaluate(instance: dg.DagsterInstance) -> dg.RunRequest | dg.SkipReason:
    return ingestion_sensor(dg.build_sensor_context(instance=instance))


def test_sensor_requests_one_tagged_run_when_none_is_active() -> None:
    with dg.instance_for_test() as instance:
        _ingestion_run(instance, dg.DagsterRunStatus.SUCCESS, polls_for_s=-60)  # finished
        request = _evaluate(instance)
    assert isinstance(request, dg.RunRequest)
    assert request.tags[INGESTION_TAG] == "all"


@pytest.mark.parametrize(
    "status",
    [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING],
)
def test_sensor_skips_while_a_run_waits_to_start(status: dg.DagsterRunStatus) -> None:
    with dg.instance_for_test() as instance:
        _ingestion_run(instance, status)
        assert isinstance(_evaluate(instance), dg.SkipReason)


def test_sensor_skips_while_a_started_run_has_not_begun_polling() -> None:
    with dg.instance_for_test() as instance:
        _ingestion_run(instance, dg.DagsterRunStatus.STARTED)  # e.g. waiting for its pool slot
        assert isinstance(_evaluate(instance), dg.SkipReason)


def test_sensor_skips_while_the_polling_run_has_long_to_go() -> None:
    with dg.instance_for_test() as instance:
        _ingestion_run(instance, dg.DagsterRunStatus.STARTED, polls_for_s=HANDOVER_LEAD_S + 600)
        result = _evaluate(instance)
    assert isinstance(result, dg.SkipReason)
    assert "polls until" in (result.skip_message or "")


def test_sensor_requests_the_successor_shortly_before_the_polling_run_ends() -> None:
    with dg.instance_for_test() as instance:
        _ingestion_run(instance, dg.DagsterRunStatus.STARTED, polls_for_s=HANDOVER_LEAD_S - 20)
        assert isinstance(_evaluate(instance), dg.RunRequest)
        _ingestion_run(instance, dg.DagsterRunStatus.QUEUED)  # the successor, once requested
        assert isinstance(_evaluate(instance), dg.SkipReason)


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


def test_inbox_sensor_leaves_the_inbox_to_a_polling_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path))
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "orders.csv").write_text("provider,order_id\nbaanx,o-1\n")
    with dg.instance_for_test() as instance:
        _ingestion_run(instance, dg.DagsterRunStatus.STARTED, polls_for_s=600)
        result = inbox_sensor(dg.build_sensor_context(instance=instance))
    assert isinstance(result, dg.SkipReason)
    assert "registers the inbox" in (result.skip_message or "")
