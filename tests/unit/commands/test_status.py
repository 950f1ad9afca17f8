"""`activity-sync status` output: times in UTC, WhoId explained (streams/commands/status.py)."""

from __future__ import annotations

from typing import Any

from streams.commands.status import WHO_ID_AT_WRITE, render_report, utc


def report(**view: Any) -> dict[str, Any]:
    return {
        "booking_id": "b-1",
        "version": 2,
        "events": [
            {
                "sequence": 1,
                "time": "2026-11-24T18:30:00+09:00",
                "type": "booking.scheduled",
                "source": "s",
                "id": "e-1",
            }
        ],
        "view": {"status": "Scheduled", "scheduled": True, **view},
        "projection": {"version": 2, "fields": {"Event_Status__c": "Scheduled", "WhoId": None}},
        "sync": {"synced_version": 2, "rejected": False, "in_sync": True},
    }


def test_utc() -> None:
    assert utc("2026-11-25T09:30:00+09:00") == "2026-11-25T00:30:00Z"
    assert utc("2026-11-25T00:30:00+00:00") == "2026-11-25T00:30:00Z"
    assert utc("not a time") == "not a time"


def test_start_and_end_are_both_shown_in_utc() -> None:
    text = render_report(report(start="2026-11-25T09:30:00+09:00", end="2026-11-25T01:00:00+00:00"))
    lines = [line.split() for line in text.splitlines()]
    assert ["start", "2026-11-25T00:30:00Z"] in lines
    assert ["end", "2026-11-25T01:00:00Z"] in lines
    assert "2026-11-24T09:30:00Z" in text  # the event's time too


def test_who_id_says_it_is_looked_up_when_written() -> None:
    text = render_report(report())
    assert f"WhoId            - ({WHO_ID_AT_WRITE})" in text
