"""Backfill progress: group names, progress, API usage (streams/commands/backfill.py)."""

from __future__ import annotations

import pytest

from streams.commands.backfill import Progress, group_id, measure, parse_usage
from streams.commands.base import UsageError
from streams.commands.versions import check_version


def test_group_id_follows_faust_versioning() -> None:
    assert group_id("booking-activity-sync", 1) == "booking-activity-sync"
    assert group_id("booking-activity-sync", 3) == "booking-activity-sync-v3"


def test_measure_progress_against_the_target_offsets() -> None:
    begin = {"e0": 0, "e1": 10}
    target = {"e0": 100, "e1": 60}
    nothing = measure({}, begin, target, {"p0": 0})
    assert nothing == Progress(done=0, total=150, caught_up=False, projections_lag=0)
    assert not nothing.events_done
    half = measure({"e0": 50, "e1": 35}, begin, target, {"p0": 40})
    assert (half.done, half.percent()) == (75, 50.0)
    assert half.projections_lag == 40
    # Past the target (new events arrived) counts as done, not more than 100 %.
    events_done = measure({"e0": 120, "e1": 60, "p0": 30}, begin, target, {"p0": 40})
    assert (events_done.done, events_done.caught_up, events_done.projections_lag) == (
        150,
        False,
        10,
    )
    assert measure({"e0": 100, "e1": 60, "p0": 40}, begin, target, {"p0": 40}).caught_up


def test_group_id_of_version_1_is_the_app_id() -> None:
    # A new deployment's first load is version 1's group, followed like a rebuild.
    assert check_version(1) == 1
    assert group_id("booking-activity-sync", check_version(1)) == "booking-activity-sync"
    with pytest.raises(UsageError):
        check_version(0)


def test_live_traffic_cannot_keep_a_caught_up_rebuild_running() -> None:
    # The old version and new events keep the projections topic's end moving faster than
    # the group commits (Faust commits every few seconds): never a zero lag under traffic.
    begin, target = {"e0": 0}, {"e0": 100}
    committed = {"e0": 130, "p0": 200}
    moving_end = {"p0": 230}
    assert not measure(committed, begin, target, moving_end).caught_up
    # Against the end taken when booking-events reached the target, it is caught up,
    # with the lag behind the end now still shown.
    done = measure(committed, begin, target, moving_end, projections_target={"p0": 190})
    assert (done.caught_up, done.events_done, done.projections_lag) == (True, True, 30)
    behind = measure(committed, begin, target, moving_end, projections_target={"p0": 210})
    assert (behind.caught_up, behind.events_done) == (False, True)


def test_parse_usage_sums_calls_and_written_records() -> None:
    text = "\n".join(
        [
            "# TYPE activity_sync_salesforce_calls counter",
            'activity_sync_salesforce_calls_total{operation="upsert"} 7.0',
            'activity_sync_salesforce_calls_total{operation="query"} 2.0',
            "# TYPE activity_sync_salesforce_records counter",
            'activity_sync_salesforce_records_total{outcome="created"} 300.0',
            'activity_sync_salesforce_records_total{outcome="updated"} 50.0',
            'activity_sync_salesforce_records_total{outcome="rejected"} 1.0',
        ]
    )
    usage = parse_usage(text + "\n")
    assert (usage.calls, usage.records_written) == (9.0, 350.0)
    assert usage.text() == "Salesforce API calls 9, records written 350"
