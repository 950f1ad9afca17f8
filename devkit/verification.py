"""Does Salesforce hold what the pure fold says? For the tests, the benches and chaos.

`expected_events` folds and projects every booking of a list of event dicts;
`expected_by_org` does the same org by org, with the marks of the orgs a booking's Event
left (the projection's departures); `compare_salesforce` names each booking whose Event
is missing, differs, is there twice, or should not exist; `RunningComparison` gives the
same answer for an org read as changes (the emulator's `changes`), judging again only
what changed.
"""

from __future__ import annotations

import itertools
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


# One booking's findings: (kind, detail), kind a `Comparison` list's name.
Finding = tuple[str, str]


def _judge(
    booking: str, found: Sequence[dict[str, Any]], fields: dict[str, Any] | None
) -> list[Finding]:
    """What is wrong with one booking's Events (`found`) against its expected fields
    (None: the fold gives it no Event)."""
    if fields is None:
        return [("unexpected", f"{booking}: unexpected Event")] if found else []
    if not found:
        return [("lost", f"{booking}: no Event")]
    findings: list[Finding] = []
    if len(found) > 1:
        findings.append(("duplicate", f"{booking}: {len(found)} Events"))
    for name in COMPARED_FIELDS:
        if name not in fields:  # a mark leaves the owner as it was: not compared
            continue
        want, got = _normal(name, fields.get(name)), _normal(name, found[0].get(name))
        if want != got:
            findings.append(("stale", f"{booking}.{name}: want {want!r}, got {got!r}"))
            break
    return findings


def _comparison(findings: Iterable[tuple[str, Sequence[Finding]]]) -> Comparison:
    result = Comparison()
    for booking, found in findings:
        for kind, detail in found:
            getattr(result, kind).append(booking)
            result.details.append(detail)
    return result


def _booking_of(record: dict[str, Any]) -> str:
    return str(record.get("Booking_Id__c"))


def compare_salesforce(
    records: Sequence[dict[str, Any]], expected: dict[str, dict[str, Any]]
) -> Comparison:
    by_booking: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_booking.setdefault(_booking_of(record), []).append(record)
    judged = [(b, _judge(b, by_booking.get(b, []), fields)) for b, fields in expected.items()]
    judged += [(b, _judge(b, found, None)) for b, found in by_booking.items() if b not in expected]
    return _comparison(judged)


class RunningComparison:
    """`compare_salesforce` kept up to date for a large org: Salesforce's records arrive
    as changes (`apply`: each a record as read, one with `IsDeleted` gone), the expected
    Events grow (`expect`), and `compare()` judges again only the bookings either touched
    since the last call. It answers what `compare_salesforce(all records, all expected)`
    answers (the findings' order aside)::

        running = RunningComparison()
        running.expect(expected_events(events))
        running.apply(records_changed_since_the_last_read)
        assert running.compare().ok
    """

    def __init__(self) -> None:
        self.expected: dict[str, dict[str, Any]] = {}
        self.records: dict[str, dict[str, Any]] = {}  # by Id
        self._ids_of: dict[str, set[str]] = {}  # booking -> its records' Ids
        self._touched: set[str] = set()
        self._rank: dict[str, int] = {}  # Id -> when first seen (a full read's order)
        self._ranks = itertools.count()
        self._findings: dict[str, list[Finding]] = {}

    def expect(self, expected: dict[str, dict[str, Any]]) -> None:
        self.expected.update(expected)
        self._touched.update(expected)

    def apply(self, records: Iterable[dict[str, Any]]) -> None:
        for record in records:
            record_id = str(record["Id"])
            before = self.records.get(record_id)
            booking = None if record.get("IsDeleted") else _booking_of(record)
            if before is not None and _booking_of(before) != booking:
                self._ids_of[_booking_of(before)].discard(record_id)
                self._touched.add(_booking_of(before))
            if booking is None:
                self.records.pop(record_id, None)
                self._rank.pop(record_id, None)
                continue
            # An update keeps the record's place: a full read lists by creation.
            self.records[record_id] = record
            if record_id not in self._rank:
                self._rank[record_id] = next(self._ranks)
            self._ids_of.setdefault(booking, set()).add(record_id)
            self._touched.add(booking)

    def compare(self) -> Comparison:
        for booking in self._touched:
            ids = sorted(self._ids_of.get(booking, ()), key=self._rank.__getitem__)
            found = [self.records[i] for i in ids]
            findings = _judge(booking, found, self.expected.get(booking))
            if findings:
                self._findings[booking] = findings
            else:
                self._findings.pop(booking, None)
        self._touched.clear()
        return _comparison(self._findings.items())
