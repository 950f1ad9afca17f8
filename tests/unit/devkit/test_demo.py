"""The demo's bookings and its comparison of Salesforce with them (devkit/demo.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from devkit.broker import EmbeddedBroker
from devkit.demo import (
    DEMO_SETTINGS,
    MALFORMED_VALUE,
    demo_bookings,
    demo_records,
    demo_settings,
    mismatches,
)
from schemas import EventRejected, event_from_dict, parse_event
from streams.core.fold import fold_all
from streams.core.projection import project

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


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


def test_the_demo_worker_names_the_embedded_profile() -> None:
    # The default profile is production's (Apache Kafka): the demo names its broker's.
    settings = demo_settings(EmbeddedBroker().connection)
    assert settings == {**DEMO_SETTINGS, "broker_profile": "embedded"}
