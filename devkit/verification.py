"""Does Salesforce hold what the pure fold says? For the tests, the benches and chaos.

`expected_events` folds and projects every booking of a list of event dicts;
`expected_by_org` does the same org by org, with the marks of the orgs a booking's Event
left (the projection's departures); `compare_salesforce` names each booking whose Event
is missing, differs, is there twice, or should not exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schemas import event_from_dict
from streams.core.fold import fold_all
from streams.core.projection import Projection, project
from streams.salesforce.org_registry import DEFAULT_ORG

Event = dict[str, Any]

COMPARED_FIELDS = (
    "Projection_Version__c",
    "Event_Status__c",
    "Cancel_Reschedule_Reason__c",
    "OwnerId",
    "StartDateTime",
    "EndDateTime",
    "Subject",
)


def _projections(events: Iterable[Event]) -> Iterable[Projection]:
    by_booking: dict[str, list[Any]] = {}
    for event in events:
        by_booking.setdefault(str(event["subject"]), []).append(event_from_dict(dict(event)))
    for folded in by_booking.values():
        projection = project(fold_all(folded))
        if projection is not None:
            yield projection


def expected_events(events: Iterable[Event]) -> dict[str, dict[str, Any]]:
    """What the pure fold says Salesforce should hold: booking id -> Event fields."""
    return {projection.booking_id: projection.fields for projection in _projections(events)}


def expected_by_org(events: Iterable[Event]) -> dict[str, dict[str, dict[str, Any]]]:
    """What the pure fold says each org should hold: org name (`default` for the
    default org) -> booking id -> Event fields: the full Event in the booking's org, the
    mark (no OwnerId, WhoId, WhatId) in each org it left."""
    expected: dict[str, dict[str, dict[str, Any]]] = {}
    for projection in _projections(events):
        org = projection.salesforce_org or DEFAULT_ORG
        expected.setdefault(org, {})[projection.booking_id] = projection.fields
        for departure in projection.departures:
            left = departure.salesforce_org or DEFAULT_ORG
            expected.setdefault(left, {})[projection.booking_id] = departure.fields
    return expected


def _normal(name: str, value: Any) -> Any:
    if value in (None, ""):
        return None
    if name.endswith("DateTime"):
        return datetime.fromisoformat(str(value).replace("+0000", "+00:00"))
    return value


@dataclass
class Comparison:
    """Salesforce against the expected Events, booking by booking."""

    lost: list[str] = field(default_factory=list)  # expected, no Event
    stale: list[str] = field(default_factory=list)  # one Event, a field differs
    duplicate: list[str] = field(default_factory=list)  # more than one Event
    unexpected: list[str] = field(default_factory=list)  # an Event the fold does not give
    details: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.stale or self.duplicate or self.unexpected)


def compare_salesforce(
    records: Sequence[dict[str, Any]], expected: dict[str, dict[str, Any]]
) -> Comparison:
    by_booking: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_booking.setdefault(str(record.get("Booking_Id__c")), []).append(record)
    result = Comparison()
    for booking, fields in expected.items():
        found = by_booking.get(booking, [])
        if not found:
            result.lost.append(booking)
            result.details.append(f"{booking}: no Event")
            continue
        if len(found) > 1:
            result.duplicate.append(booking)
            result.details.append(f"{booking}: {len(found)} Events")
        for name in COMPARED_FIELDS:
            if name not in fields:  # a mark leaves the owner as it was: not compared
                continue
            want, got = _normal(name, fields.get(name)), _normal(name, found[0].get(name))
            if want != got:
                result.stale.append(booking)
                result.details.append(f"{booking}.{name}: want {want!r}, got {got!r}")
                break
    for booking in by_booking:
        if booking not in expected:
            result.unexpected.append(booking)
            result.details.append(f"{booking}: unexpected Event")
    return result
