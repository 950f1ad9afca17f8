"""The view's history lines: the minute read from an event's JSON is the one its time has."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st
from pydantic import AwareDatetime, TypeAdapter

from streams.core.view import history_entry, utc_minute

_WIRE = TypeAdapter(AwareDatetime)
_ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=9)), timezone(timedelta(hours=-5, minutes=-30))]
)


@given(moment=st.datetimes(timezones=_ZONES))
def test_the_minute_read_from_the_wire_is_the_utc_minute(moment: datetime) -> None:
    # As the fold stores an event: pydantic's JSON form of the time (`Z` for UTC).
    wire = _WIRE.dump_python(moment, mode="json")
    assert utc_minute(moment, wire) == str(moment.astimezone(UTC))[:16]
    assert utc_minute(moment) == str(moment.astimezone(UTC))[:16]


def test_a_history_line_shows_the_utc_minute_label_and_detail() -> None:
    moment = datetime(2026, 11, 24, 10, 30, 59, 999999, tzinfo=timezone(timedelta(hours=1)))
    entry = history_entry(moment, "booking.canceled", "Sick (customer)", True)
    assert entry.line == "2026-11-24 09:30 Canceled: Sick (customer)"
    wired = history_entry(moment, "booking.canceled", "", False, "2026-11-24T09:30:59.999999Z")
    assert wired.line == "2026-11-24 09:30 Canceled (not applied)"
