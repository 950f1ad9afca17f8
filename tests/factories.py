"""Builders of realistic booking events for tests (unit, pipeline and integration).

Every builder returns the wire form (a JSON-able dict); `event(d)` validates it into
a `BookingEvent` and `raw(d)` gives the Kafka message value. Defaults describe one
booking `b-1042` on a connected page, so a test states only what matters to it:

    events = [scheduled(), rescheduled(2, reason="Sick"), canceled(3)]
    state = fold_dicts(events)

`random_lifecycle(rng, booking_id)` and `generate_events(n, seed)` come from
`streams.commands.generate` (also used by `activity-sync produce --generate` and the benches).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from schemas import BookingEvent, parse_event
from streams.commands.generate import (
    DEFAULT_SOURCE,
    Catalog,
    booking_data,
    canceled_data,
    customer,
    envelope,
    generate_events,
    owner,
    page,
    random_lifecycle,
    reassigned_data,
    rescheduled_data,
    salesforce_id,
)
from streams.core.fold import TIMER_SOURCE, BookingState, fold

__all__ = [
    "ALICE",
    "BOB",
    "BOOKING_ID",
    "CAROL",
    "CIRRUS_PAGE",
    "CUSTOMER",
    "DEFAULT_SOURCE",
    "OTHER_SALES_PAGE",
    "SALES_PAGE",
    "START",
    "SUPPORT_PAGE",
    "TIMER_SOURCE",
    "Catalog",
    "canceled",
    "completed",
    "event",
    "fold_dicts",
    "generate_events",
    "no_show",
    "random_lifecycle",
    "raw",
    "reassigned",
    "requested",
    "rescheduled",
    "scheduled",
    "sfid",
    "timer_completed",
]

Event = dict[str, Any]

BOOKING_ID = "b-1042"
START = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
BOOKED_AT = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def sfid(prefix: str, seed: int = 0) -> str:
    """A stable 18-character Salesforce id: `sfid("005", 1)` is always the same User id."""
    return salesforce_id(prefix, random.Random(f"{prefix}-{seed}"))


ALICE = owner("u-alice", "Alice Archer", sfid("005", 1))
BOB = owner("u-bob", "Bob Baker", sfid("005", 2))
CAROL = owner("u-carol", "Carol Cole", sfid("005", 3))
SALES_PAGE = page("p-sales", "Sales")
OTHER_SALES_PAGE = page("p-sales-eu", "Sales EU")
SUPPORT_PAGE = page("p-support", "Support", connected=False)
CIRRUS_PAGE = page("p-cirrus", "Partner desk", create=False)
CUSTOMER = customer("Dana Diaz", "dana@customer.example", "+1-555-0100")


def _wire(
    event_type: str,
    sequence: int,
    data: Event,
    booking_id: str,
    time: datetime | None,
    source: str,
    event_id: str | None,
) -> Event:
    """The envelope of every builder; without `time`, one hour per sequence after booking."""
    at = time or BOOKED_AT + timedelta(hours=sequence)
    return envelope(event_type, booking_id, sequence, at, data, source=source, event_id=event_id)


def scheduled(
    sequence: int = 1,
    *,
    booking_id: str = BOOKING_ID,
    time: datetime | None = None,
    start: datetime = START,
    duration: timedelta = timedelta(minutes=30),
    page: Event = SALES_PAGE,
    owner: Event = ALICE,
    customer: Event = CUSTOMER,
    title: str = "Product demo",
    location: str | None = "Zoom",
    description: str | None = "Agenda: pricing",
    related: Event | None = None,
    source: str = DEFAULT_SOURCE,
    event_id: str | None = None,
    event_type: str = "booking.scheduled",
) -> Event:
    data = booking_data(
        booking_id,
        start=start,
        end=start + duration,
        page=page,
        owner=owner,
        customer=customer,
        title=title,
        location=location,
        description=description,
        related=related,
    )
    return _wire(event_type, sequence, data, booking_id, time, source, event_id)


def requested(sequence: int = 1, **kwargs: Any) -> Event:
    return scheduled(sequence, event_type="booking.requested", **kwargs)


def rescheduled(
    sequence: int,
    *,
    start: datetime = START + timedelta(days=1),
    duration: timedelta = timedelta(minutes=30),
    reason: str | None = "Sick",
    by: str = "customer",
    booking_id: str = BOOKING_ID,
    time: datetime | None = None,
    source: str = DEFAULT_SOURCE,
    event_id: str | None = None,
) -> Event:
    data = rescheduled_data(start, start + duration, reason, by)
    return _wire("booking.rescheduled", sequence, data, booking_id, time, source, event_id)


def reassigned(
    sequence: int,
    *,
    owner: Event = BOB,
    page: Event = OTHER_SALES_PAGE,
    by: str | None = "admin",
    booking_id: str = BOOKING_ID,
    time: datetime | None = None,
    source: str = DEFAULT_SOURCE,
    event_id: str | None = None,
) -> Event:
    data = reassigned_data(owner, page, by)
    return _wire("booking.reassigned", sequence, data, booking_id, time, source, event_id)


def canceled(
    sequence: int,
    *,
    reason: str | None = "Sick",
    by: str = "customer",
    booking_id: str = BOOKING_ID,
    time: datetime | None = None,
    source: str = DEFAULT_SOURCE,
    event_id: str | None = None,
) -> Event:
    data = canceled_data(reason, by)
    return _wire("booking.canceled", sequence, data, booking_id, time, source, event_id)


def completed(
    sequence: int,
    *,
    by: str | None = None,
    booking_id: str = BOOKING_ID,
    time: datetime | None = None,
    source: str = DEFAULT_SOURCE,
    event_id: str | None = None,
    event_type: str = "booking.completed",
) -> Event:
    return _wire(
        event_type, sequence, {} if by is None else {"by": by}, booking_id, time, source, event_id
    )


def no_show(sequence: int, **kwargs: Any) -> Event:
    return completed(sequence, event_type="booking.no_show", **kwargs)


def timer_completed(sequence: int, *, time: datetime, booking_id: str = BOOKING_ID) -> Event:
    """What the completion timer emits: the last sequence it saw, its own later time."""
    return completed(
        sequence,
        booking_id=booking_id,
        time=time,
        source=TIMER_SOURCE,
        event_id=f"completed:{booking_id}:{sequence}",
    )


def raw(wire: Event) -> bytes:
    return orjson.dumps(wire)


def event(wire: Event) -> BookingEvent:
    """Validate a wire dict exactly as the pipeline does (key = subject)."""
    return parse_event(raw(wire), str(wire["subject"]).encode())


def fold_dicts(wires: Iterable[Event], state: BookingState | None = None) -> BookingState:
    folded = state
    for wire in wires:
        folded = fold(folded, event(wire)).state
    if folded is None:
        raise ValueError("fold_dicts needs at least one event or a state")
    return folded


def salesforce_event(booking_id: str, **fields: Any) -> dict[str, Any]:
    """The fields of an Event as the sink writes it (a test's own upsert or seed)."""
    return {
        "Booking_Id__c": booking_id,
        "Subject": f"Intro call {booking_id}",
        "StartDateTime": "2026-11-24T09:30:00.000Z",
        "EndDateTime": "2026-11-24T10:00:00.000Z",
        "Event_Status__c": "Scheduled",
        **fields,
    }
