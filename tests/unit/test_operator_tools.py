"""The pure parts of the operator commands: input parsing, progress, tables, demo data."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from devkit.demo import MALFORMED_VALUE, demo_bookings, demo_records, mismatches
from schemas import EventRejected, event_from_dict, parse_event
from streams.commands.backfill import Progress, group_id, measure, parse_usage
from streams.commands.base import UserError, one_line
from streams.commands.console import format_table, parse_table
from streams.commands.kafka_io import bootstrap_servers
from streams.commands.produce import read_lines, rejection_text, validate
from streams.commands.replay import parse_since
from streams.core.fold import fold_all
from streams.core.projection import project
from tests.factories import raw, scheduled

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


# produce ----------------------------------------------------------------------------


def test_read_lines_numbers_lines_and_skips_blank_ones() -> None:
    stream = io.BytesIO(b'{"a": 1}\n\n  \n{"b": 2}\r\n')
    assert list(read_lines(stream)) == [(1, b'{"a": 1}'), (4, b'{"b": 2}')]


def test_validate_keys_by_subject_and_rejects_with_the_field() -> None:
    good = raw(scheduled(booking_id="b-7"))
    assert validate(good) == (b"b-7", good)
    with pytest.raises(EventRejected) as rejected:
        validate(orjson.dumps({**scheduled(), "sequence": "3"}))
    assert rejection_text(rejected.value).startswith("schema at sequence: ")
    with pytest.raises(EventRejected) as broken:
        validate(b"{nope")
    assert rejection_text(broken.value).startswith("not-json")


def test_bootstrap_servers_from_faust_broker_urls() -> None:
    assert bootstrap_servers("kafka://a:9092") == ["a:9092"]
    assert bootstrap_servers("kafka://a:9092;kafka://b:9093") == ["a:9092", "b:9093"]
    assert bootstrap_servers("a:1,b:2") == ["a:1", "b:2"]
    with pytest.raises(UserError):
        bootstrap_servers(" ; ")


def test_one_line_flattens_messages() -> None:
    assert one_line(ValueError("a\n  b")) == "a b"
    assert one_line(TimeoutError()) == "TimeoutError"


# replay -----------------------------------------------------------------------------


def test_parse_since_takes_iso_times_and_ages() -> None:
    assert parse_since("2026-11-24T09:00:00Z") == datetime(2026, 11, 24, 9, tzinfo=UTC)
    assert parse_since("2026-11-24T10:00:00+01:00") == datetime(2026, 11, 24, 9, tzinfo=UTC)
    assert parse_since("2026-11-24T09:00:00") == datetime(2026, 11, 24, 9, tzinfo=UTC)
    assert parse_since("90m", now=NOW) == NOW - timedelta(minutes=90)
    assert parse_since("2h", now=NOW) == NOW - timedelta(hours=2)
    assert parse_since("1.5d", now=NOW) == NOW - timedelta(days=1.5)
    with pytest.raises(UserError, match="--since 'yesterday'"):
        parse_since("yesterday")


# backfill ---------------------------------------------------------------------------


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


# tables -----------------------------------------------------------------------------


def test_format_table_round_trips_through_parse_table() -> None:
    rows = [["demo-1", "Canceled", "Sick (customer)"], ["demo-2", "No-show", "-"]]
    text = "before\n" + format_table(("Booking", "Status", "Reason"), rows) + "\nafter | x"
    assert parse_table(text) == [
        {"Booking": "demo-1", "Status": "Canceled", "Reason": "Sick (customer)"},
        {"Booking": "demo-2", "Status": "No-show", "Reason": "-"},
    ]
    assert parse_table("no table here") == []


# demo -------------------------------------------------------------------------------


def test_demo_events_are_valid_and_the_fold_gives_the_expected_statuses() -> None:
    bookings = demo_bookings(NOW)
    stories = {b.expected_status for b in bookings}
    assert {"Scheduled (Reassigned by User)", "Canceled", "Rescheduled", "No-show"} <= stories
    assert "Completed" in stories
    assert None in stories  # bookings that must not get an Event
    for booking in bookings:
        events = [
            parse_event(orjson.dumps(e), key=booking.booking_id.encode()) for e in booking.events
        ]
        state = fold_all(events)
        projection = project(state)
        if booking.expected_status == "Completed":
            # The worker's completion timer completes it: its end is past the grace.
            assert state.view.completion_due(NOW, timedelta(seconds=600))
        elif booking.expected_status is None:
            assert projection is None
        else:
            assert projection is not None
            assert projection.fields["Event_Status__c"] == booking.expected_status


def test_demo_records_hold_one_duplicate_and_one_malformed_message() -> None:
    bookings = demo_bookings(NOW)
    records = demo_records(bookings)
    assert records[-1][1] == MALFORMED_VALUE
    with pytest.raises(EventRejected):
        parse_event(MALFORMED_VALUE)
    assert len(records) == sum(len(b.events) for b in bookings) + 2
    event_from_dict(orjson.loads(records[-2][1]))  # the re-sent copy is a valid event


def test_mismatches_names_missing_wrong_and_unexpected_events() -> None:
    bookings = demo_bookings(NOW)
    right = [
        {"Booking_Id__c": b.booking_id, "Event_Status__c": b.expected_status}
        for b in bookings
        if b.expected_status
    ]
    assert mismatches(bookings, right) == []
    wrong = [dict(right[0], Event_Status__c="Scheduled"), *right[1:], {"Booking_Id__c": "x"}]
    problems = mismatches(bookings, wrong)
    assert problems[0].startswith(f"{right[0]['Booking_Id__c']}: want")
    assert problems[-1] == "x: unexpected Event"
    assert len(mismatches(bookings, right[1:])) == 1
