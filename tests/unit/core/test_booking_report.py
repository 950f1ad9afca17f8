"""The booking report (`GET /bookings/{id}/`) and how `activity-sync status` renders it."""

from __future__ import annotations

import json

from streams.commands.status import SalesforceCheck, booking_url, render_report
from streams.core.booking_report import booking_report
from streams.core.projection import PRESETS
from streams.core.synced import encode_synced
from tests.factories import (
    ALICE,
    BOB,
    CIRRUS_PAGE,
    canceled,
    fold_dicts,
    reassigned,
    requested,
    rescheduled,
    scheduled,
)

DEFAULT = PRESETS["default"]
NOT_ASKED = SalesforceCheck.skipped("--no-salesforce")


def test_report_holds_events_view_projection_and_sync_state() -> None:
    state = fold_dicts([scheduled(), rescheduled(2, reason="Sick", by="customer")])
    report = booking_report(state, synced=1, mapping=DEFAULT)
    json.dumps(report)  # served as JSON: everything must be serialisable

    assert report["booking_id"] == "b-1042"
    assert [e["type"] for e in report["events"]] == ["booking.scheduled", "booking.rescheduled"]
    assert report["view"]["status"] == "Rescheduled"
    assert report["view"]["reason"] == "Sick (customer)"
    assert report["projection"]["version"] == state.version
    assert report["projection"]["fields"]["Event_Status__c"] == "Rescheduled"
    assert report["sync"] == {
        "synced_version": 1,
        "rejected": False,
        "in_sync": False,
        "fallbacks": [],
        "fenced": False,
    }


def test_a_version_salesforce_rejected_is_reported_as_such() -> None:
    state = fold_dicts([scheduled()])
    report = booking_report(
        state, synced=encode_synced(state.version, rejected=True), mapping=DEFAULT
    )
    assert report["sync"] == {
        "synced_version": state.version,
        "rejected": True,
        "in_sync": True,
        "fallbacks": [],
        "fenced": False,
    }


def test_a_version_the_fence_refused_is_reported_as_such() -> None:
    state = fold_dicts([scheduled()])
    report = booking_report(state, encode_synced(state.version, fenced=True), DEFAULT)
    assert report["sync"]["synced_version"] == state.version
    assert report["sync"]["fenced"] is True
    assert report["sync"]["rejected"] is False
    assert booking_report(state, state.version, DEFAULT)["sync"]["fenced"] is False


def test_report_is_in_sync_once_the_version_is_written() -> None:
    state = fold_dicts([scheduled()])
    report = booking_report(state, synced=state.version, mapping=DEFAULT)
    assert report["sync"]["in_sync"] is True


def test_report_uses_the_oncehub_field_names() -> None:
    state = fold_dicts([scheduled(), canceled(2)])
    fields = booking_report(state, 0, PRESETS["oncehub"])["projection"]["fields"]
    assert fields["ScheduleOnce__Event_status__c"] == "Canceled"
    assert "Event_Status__c" not in fields


def test_booking_without_an_event_has_no_projection_and_is_in_sync() -> None:
    report = booking_report(fold_dicts([requested()]), 0, DEFAULT)
    assert report["projection"] is None
    assert report["view"]["status"] is None
    assert report["sync"]["in_sync"] is True


def test_render_shows_view_events_projection_and_sync() -> None:
    state = fold_dicts(
        [scheduled(owner=ALICE), reassigned(2, owner=BOB), rescheduled(3, reason="Travel")]
    )
    report = booking_report(state, synced=state.version, mapping=DEFAULT)
    fields = report["projection"]["fields"]
    text = render_report(report, SalesforceCheck(event=dict(fields)), DEFAULT)
    lines = text.splitlines()
    assert lines[0] == f"Booking b-1042 (state version {state.version})"
    assert any(line.split() == ["status", "Rescheduled"] for line in lines)
    assert f"event owner    {BOB['name']} ({BOB['salesforce_user_id']})" in text
    assert "Events (3, in replay order):" in text
    assert "booking.reassigned" in text
    assert f"Projection (version {state.version}):" in text
    assert "Event_Status__c" in text
    assert lines[-1] == f"Sync: in sync (Salesforce has version {state.version})"


def test_render_says_why_a_booking_has_no_event() -> None:
    cirrus = render_report(
        booking_report(fold_dicts([scheduled(page=CIRRUS_PAGE)]), 0, DEFAULT), NOT_ASKED
    )
    assert "Activity Events off" in cirrus
    assert "Projection: none" in cirrus
    assert cirrus.endswith("Sync: nothing to write")
    pending = render_report(booking_report(fold_dicts([requested()]), 0, DEFAULT), NOT_ASKED)
    assert "not scheduled yet" in pending


def test_render_shows_pending_writes() -> None:
    state = fold_dicts([scheduled(), canceled(2)])
    never = render_report(booking_report(state, 0, DEFAULT), NOT_ASKED)
    assert never.endswith(f"pending (not written yet, latest is version {state.version})")
    behind = render_report(booking_report(state, 1, DEFAULT), NOT_ASKED)
    assert behind.endswith(f"pending (version 1 handled, latest is {state.version})")


def test_booking_url_quotes_the_id() -> None:
    assert booking_url("http://w:6066/", "b 1/2") == "http://w:6066/bookings/b%201%2F2/"


def test_render_names_a_rejected_version() -> None:
    state = fold_dicts([scheduled()])
    text = render_report(
        booking_report(state, encode_synced(state.version, rejected=True), DEFAULT), NOT_ASKED
    )
    assert f"rejected by Salesforce at version {state.version}" in text


def test_the_fallbacks_taken_are_reported_and_rendered() -> None:
    state = fold_dicts([scheduled()])
    synced = encode_synced(state.version, fallbacks=["owner-fallback", "who-dropped"])
    report = booking_report(state, synced, DEFAULT)
    assert report["sync"]["in_sync"] is True
    assert report["sync"]["fallbacks"] == ["owner-fallback", "who-dropped"]
    lines = render_report(report, NOT_ASKED).splitlines()
    assert lines[-3:] == [
        "Fallbacks (Salesforce refused a reference; written instead):",
        "  owner-fallback: owner refused: ACTIVITY_SYNC_SALESFORCE_FALLBACK_OWNER_ID",
        "  who-dropped: WhoId refused: written without WhoId",
    ]
