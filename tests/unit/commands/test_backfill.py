"""Backfill progress: group names, progress, API usage (streams/commands/backfill.py)."""

from __future__ import annotations

from streams.commands.backfill import Progress, group_id, measure, parse_usage


def test_group_id_follows_faust_versioning() -> None:
    assert group_id("booking-activity-sync", 1) == "booking-activity-sync"
    assert group_id("booking-activity-sync", 3) == "booking-activity-sync-v3"


def test_measure_progress_against_the_target_offsets() -> None:
    begin = {"e0": 0, "e1": 10}
    target = {"e0": 100, "e1": 60}
    nothing = measure({}, begin, target, {"p0": 0})
    assert nothing == Progress(done=0, total=150, caught_up=False, projections_lag=0)
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
