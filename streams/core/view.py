"""The read-only view of one booking that the fold derives and the projection reads.

`BookingView` and the named tuples inside it: what a booking's events say now. Built
by `streams.core.fold` (after every folded event), read by `streams.core.projection`
and the booking report; pure, no I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal, NamedTuple

_tuple = tuple.__new__

Phase = Literal["Requested", "Scheduled", "Rescheduled", "Canceled", "Completed", "No-show"]

# Every status an Event can show (`Event_Status__c`, a restricted picklist in
# salesforce/force-app): the phases that make an Event, and the reassigned forms.
STATUSES: tuple[str, ...] = (
    "Scheduled",
    "Rescheduled",
    "Canceled",
    "Completed",
    "No-show",
    "Scheduled (Reassigned by User)",
    "Rescheduled (Reassigned by User)",
)

# Phases from which a reassignment applies; from any other it is rejected.
REASSIGNABLE_PHASES: frozenset[str] = frozenset({"Scheduled", "Rescheduled"})


class PageInfo(NamedTuple):
    id: str
    name: str
    salesforce_connected: bool
    create_activity_event: bool
    # The org the page's Events live in (a registry name); None: the default org.
    salesforce_org: str | None = None


class OwnerInfo(NamedTuple):
    id: str
    name: str
    email: str
    salesforce_user_id: str | None


class CustomerInfo(NamedTuple):
    name: str
    email: str
    phone: str | None


class RelatedRef(NamedTuple):
    type: Literal["Lead", "Contact", "Case"]
    id: str


_TYPE_LABEL = {
    "booking.scheduled": "Scheduled",
    "booking.requested": "Requested",
    "booking.rescheduled": "Rescheduled",
    "booking.reassigned": "Reassigned",
    "booking.canceled": "Canceled",
    "booking.completed": "Completed",
    "booking.no_show": "No-show",
}


class HistoryEntry(NamedTuple):
    """One event of the lifecycle history shown in the Event's Description.

    `line` is that entry as the Description shows it, rendered once when the event is
    folded (`history_entry`): a projection follows every folded event and lists the
    whole history, so rendering it there cost a line per entry per projection.
    """

    time: datetime
    type: str
    detail: str
    applied: bool
    line: str


def utc_minute(moment: datetime, wire: str | None = None) -> str:
    """`2026-11-24 09:30`: the UTC minute of `moment`. `wire` is the same instant as an
    event's JSON wrote it, when the caller has it: one ending in `Z` holds the UTC minute
    in its first 16 characters, read without converting or formatting a datetime (str()
    is far cheaper than strftime, and slicing cheaper still)."""
    if wire is not None and wire[-1:] == "Z":
        return f"{wire[:10]} {wire[11:16]}"
    return str(moment.astimezone(UTC))[:16]


def history_entry(
    time: datetime, type: str, detail: str, applied: bool, wire_time: str | None = None
) -> HistoryEntry:
    """The entry with its line: `2026-11-24 09:30 Canceled: Sick (customer)` (UTC, to
    the minute). `wire_time`: the event's `time` as its JSON wrote it (`utc_minute`)."""
    label = _TYPE_LABEL.get(type, type)
    if not applied:
        label += " (not applied)"
    when = utc_minute(time, wire_time)
    line = f"{when} {label}: {detail}" if detail else f"{when} {label}"
    # tuple.__new__: one is made per folded event, and the named tuple's own __new__ is
    # a Python frame.
    return _tuple(HistoryEntry, (time, type, detail, applied, line))


class RejectedReassignment(NamedTuple):
    source: str
    id: str
    phase: str | None


class LeftOrg(NamedTuple):
    """An org the booking's Event has left, and how its Event there stays, for good.

    Taken when the Event moved out of the org (docs/event-contract.md, "The fold"): the
    Event as it stood there, with `status` and `reason` saying it moved. Later events
    of the booking never change it; moving back into the org drops it.
    """

    salesforce_org: str | None  # None: the default org
    status: str  # `Scheduled (Reassigned by User)`, ...: see the fold
    reason: str  # `Moved to another Salesforce org (page Sales EU)`
    title: str | None
    start: datetime | None
    end: datetime | None
    location: str | None
    description: str | None
    # The lifecycle history the Event there shows: the view's first `history_length`
    # entries, up to and including the move.
    history_length: int


class BookingView(NamedTuple):
    """What the booking's events say now; `status` is None when no Event should exist.

    A NamedTuple rather than a frozen dataclass: it is built on every state change,
    and a frozen dataclass pays an `object.__setattr__` per field.
    """

    booking_id: str
    status: str | None
    phase: Phase | None
    reassigned: bool
    scheduled: bool
    creates_event: bool
    reason: str | None
    owner: OwnerInfo | None  # the Salesforce Event's owner (kept on unconnected moves)
    booking_owner: OwnerInfo | None  # who owns the booking now
    page: PageInfo | None
    start: datetime | None
    end: datetime | None
    title: str | None
    location: str | None
    description: str | None
    customer: CustomerInfo | None
    related: RelatedRef | None
    rejected_reassignments: tuple[RejectedReassignment, ...]
    history: tuple[HistoryEntry, ...]
    last_sequence: int | None
    last_time: datetime | None
    # The org the booking's Event lives in (None: the default org), and the orgs it has
    # left, sorted (the default org first), never including `salesforce_org`.
    salesforce_org: str | None
    left_orgs: tuple[LeftOrg, ...]
    # Orgs a page of the booking's events names that are neither its org nor an org it
    # left (the default org first): a projection made before all the events were folded
    # may have written an Event there (a move that an earlier event, folded later,
    # undid), and the sink deletes it (docs/event-contract.md, "Which org...").
    withdrawn_orgs: tuple[str | None, ...] = ()

    def completion_due(self, now: datetime, grace: timedelta) -> bool:
        """The completion timer's test: Scheduled/Rescheduled and end + grace < now."""
        return (
            self.scheduled
            and self.phase in REASSIGNABLE_PHASES
            and self.end is not None
            and self.end + grace < now
        )
