"""The projection: `BookingState` -> Salesforce `Event` fields. Pure: no I/O.

The fields and mappings are docs/event-contract.md, "The projection".

Times are written as UTC ISO-8601 with whole seconds and a `Z` suffix
(`2026-11-24T09:30:00Z`); sub-second parts are dropped. Text longer than a field's
limit is cut to the limit, ending with "…", so a long title never costs the Event.

Orgs (docs/event-contract.md, "The fold"): `Projection.salesforce_org` is the org the
booking's Event lives in (None: the default org), and `fields` are for that org. A
booking whose Event moved to another org (a reassignment to a connected page of
another org) leaves a `Departure` per org it left: the new org gets the full Event,
upserted by the external id there; the old org's Event is marked once, at the move,
and then left alone: its status becomes the phase with " (Reassigned by User)"
(`Scheduled (Reassigned by User)`; a Canceled, Completed or No-show Event keeps its
status), its reason says `Moved to another Salesforce org (page NAME)`, its subject,
times, location and description are as they stood at the move, and OwnerId, WhoId and
WhatId are not written (its owner stays). Every projection after the move carries the
same marks with its own `version` (the same number in every org's fields), so
Salesforce's version fence orders them with the Event's earlier writes in that org,
and a lost write, a rebuild or a replay still lands them. A booking that moves back to
an org it left gets the full Event there again (the same external id row), and the org
it left instead is marked.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson

from streams.core.fold import BookingState
from streams.core.view import BookingView, HistoryEntry, LeftOrg

SUBJECT_MAX = 255
LOCATION_MAX = 255
REASON_MAX = 255
DESCRIPTION_MAX = 32_000
PROJECTION_FORMAT = 1

_HISTORY_HEADING = "Booking history (UTC):"


@dataclass(frozen=True, slots=True)
class FieldMapping:
    """Names of the custom Event fields this org uses (standard fields are fixed)."""

    external_id_field: str = "Booking_Id__c"
    status_field: str = "Event_Status__c"
    reason_field: str = "Cancel_Reschedule_Reason__c"
    # The version fence's number field (salesforce/force-app: a validation rule refuses
    # a lower value than the Event has). Ours in every preset, never the connector's.
    version_field: str = "Projection_Version__c"


PRESETS: dict[str, FieldMapping] = {
    "default": FieldMapping(),
    # The ScheduleOnce connector's managed-package fields.
    "oncehub": FieldMapping(
        status_field="ScheduleOnce__Event_status__c",
        reason_field="ScheduleOnce__Cancel_reschedule_reason__c",
    ),
}


def cut(text: str | None, limit: int) -> str | None:
    """`text` cut to at most `limit` characters, marking the cut with "…"."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


# Every projection of a booking writes its start and end again, and formatting a
# datetime costs more than a cache hit; equal instants give the same text, so the cache
# may be shared by any datetimes.
@functools.lru_cache(maxsize=8192)
def salesforce_datetime(moment: datetime) -> str:
    """UTC, whole seconds, `Z`: `2026-11-24T09:30:00Z` (isoformat: far cheaper than strftime)."""
    return moment.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


@dataclass(frozen=True, slots=True)
class Departure:
    """The mark for an org the booking's Event has left: `fields` to upsert there, by
    the projection's `external_id_field`, with the projection's version."""

    salesforce_org: str | None  # None: the default org
    fields: dict[str, str | int | None]


@dataclass(frozen=True, slots=True)
class Projection:
    """The Event one booking should have now, as of state `version`.

    `version` (also in `fields`, as the mapping's `version_field`) is the booking's
    fold version: the number of distinct event copies folded (streams/core/fold.py),
    the same on every worker and after any rebuild for the same events, and the
    number Salesforce's version fence compares.

    `fields` is ready for an upsert by `external_id_field` once `complete_related`
    has filled WhoId from the lookup, when `lookup_email` is set.
    """

    booking_id: str
    version: int
    external_id_field: str
    fields: dict[str, str | int | None]
    # Set when WhoId must come from a Contact (or Lead) found by the customer's email.
    lookup_email: str | None
    # For an optional Lead creation when the lookup finds nothing (no related record).
    customer_name: str | None
    related_type: str | None
    # The customer's email, for a WhoId Salesforce refused (merged, converted, deleted):
    # looked up again. Absent from projections written before it existed.
    customer_email: str | None = None
    # The org `fields` are for; None: the default org. The orgs the Event has left, in
    # the view's order (the default org first). Both absent from the bytes when they
    # say nothing, so a default-org projection reads and writes as before they existed.
    salesforce_org: str | None = None
    departures: tuple[Departure, ...] = ()
    # Orgs where an Event of the booking may stand that the view no longer names (the
    # view's `withdrawn_orgs`): deleted there unless newer than `version`. Absent from
    # the bytes when empty.
    withdrawals: tuple[str | None, ...] = ()
    # This projection is itself a withdrawal (`withdrawal`): `fields` hold the external
    # id and the version, and the Event is deleted rather than upserted.
    withdraw: bool = False

    def to_bytes(self) -> bytes:
        body: dict[str, Any] = {
            "format": PROJECTION_FORMAT,
            "booking_id": self.booking_id,
            "version": self.version,
            "external_id_field": self.external_id_field,
            "fields": self.fields,
            "lookup_email": self.lookup_email,
            "customer_name": self.customer_name,
            "related_type": self.related_type,
            "customer_email": self.customer_email,
        }
        if self.salesforce_org is not None:
            body["salesforce_org"] = self.salesforce_org
        if self.departures:
            body["departures"] = [
                {"salesforce_org": gone.salesforce_org, "fields": gone.fields}
                for gone in self.departures
            ]
        if self.withdrawals:
            body["withdrawals"] = list(self.withdrawals)
        if self.withdraw:
            body["withdraw"] = True
        return orjson.dumps(body)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Projection:
        loaded: dict[str, Any] = orjson.loads(raw)
        if loaded.pop("format", None) != PROJECTION_FORMAT:
            raise ValueError("unknown Projection format")
        departures = loaded.pop("departures", None)
        if departures:
            loaded["departures"] = tuple(
                Departure(gone["salesforce_org"], gone["fields"]) for gone in departures
            )
        withdrawals = loaded.pop("withdrawals", None)
        if withdrawals:
            loaded["withdrawals"] = tuple(withdrawals)
        return cls(**loaded)


def description_text(current: BookingView) -> str:
    """The booking's description, then one line per lifecycle event."""
    return _description(current.description, current.history)


def _description(description: str | None, entries: Iterable[HistoryEntry]) -> str:
    history = "\n".join([_HISTORY_HEADING, *(entry.line for entry in entries)])
    if description:
        return f"{description}\n\n{history}"
    return history


def _departure(
    left: LeftOrg, current: BookingView, booking_id: str, version: int, mapping: FieldMapping
) -> Departure:
    """The mark for an org the Event left; no OwnerId, WhoId, WhatId: those stay."""
    if left.start is None or left.end is None:
        raise ValueError(f"booking {booking_id!r} left an org with no booking details")
    entries = current.history[: left.history_length]
    fields: dict[str, str | int | None] = {
        mapping.external_id_field: booking_id,
        mapping.version_field: version,
        mapping.status_field: left.status,
        mapping.reason_field: cut(left.reason, REASON_MAX),
        "Subject": cut(left.title, SUBJECT_MAX),
        "StartDateTime": salesforce_datetime(left.start),
        "EndDateTime": salesforce_datetime(left.end),
        "Location": cut(left.location, LOCATION_MAX),
        "Description": cut(_description(left.description, entries), DESCRIPTION_MAX),
    }
    return Departure(left.salesforce_org, fields)


def project(state: BookingState, mapping: FieldMapping = PRESETS["default"]) -> Projection | None:
    """The Salesforce Event fields for a booking, or None when no Event should exist."""
    current = state.view
    if current.status is None:
        return None
    if current.start is None or current.end is None or current.customer is None:
        raise ValueError(f"booking {state.booking_id!r} has a status but no booking details")
    who_id: str | None = None
    what_id: str | None = None
    lookup_email: str | None = None
    related = current.related
    if related is None:
        lookup_email = current.customer.email
    elif related.type == "Case":
        what_id = related.id
        lookup_email = current.customer.email
    else:  # Lead or Contact; a Lead forbids WhatId, a Contact here has none to give.
        who_id = related.id
    fields: dict[str, str | int | None] = {
        mapping.external_id_field: state.booking_id,
        mapping.version_field: state.version,
        mapping.status_field: current.status,
        mapping.reason_field: cut(current.reason, REASON_MAX),
        "Subject": cut(current.title, SUBJECT_MAX),
        "StartDateTime": salesforce_datetime(current.start),
        "EndDateTime": salesforce_datetime(current.end),
        "OwnerId": current.owner.salesforce_user_id if current.owner else None,
        "Location": cut(current.location, LOCATION_MAX),
        "Description": cut(description_text(current), DESCRIPTION_MAX),
        "WhoId": who_id,
        "WhatId": what_id,
    }
    departures: tuple[Departure, ...] = ()
    if current.left_orgs:
        departures = tuple(
            _departure(left, current, state.booking_id, state.version, mapping)
            for left in current.left_orgs
        )
    return Projection(
        booking_id=state.booking_id,
        version=state.version,
        external_id_field=mapping.external_id_field,
        fields=fields,
        lookup_email=lookup_email,
        customer_name=current.customer.name,
        related_type=related.type if related else None,
        customer_email=current.customer.email,
        salesforce_org=current.salesforce_org,
        departures=departures,
        withdrawals=current.withdrawn_orgs,
    )


def complete_related(
    projection: Projection, found: Mapping[str, tuple[str, str]]
) -> dict[str, str | int | None]:
    """The final field dict, WhoId filled from lookups: email -> (sObject type, id).

    Emails match case-insensitively (Salesforce compares them so). For a Case only a
    Contact may become WhoId; without `related`, a Contact or a Lead (the caller
    looks up Contacts first). Nothing found leaves WhoId empty.
    """
    fields = dict(projection.fields)
    email = projection.lookup_email
    if email is None:
        return fields
    hit = found.get(email)
    if hit is None:
        lowered = email.lower()
        hit = next((value for key, value in found.items() if key.lower() == lowered), None)
    if hit is None:
        return fields
    sobject, record_id = hit
    if projection.related_type == "Case":
        if sobject == "Contact":
            fields["WhoId"] = record_id
    elif sobject in ("Contact", "Lead"):
        fields["WhoId"] = record_id
        fields["WhatId"] = None
    return fields


def departure_mark(projection: Projection, departure: Departure) -> Projection:
    """The write that marks an org the Event left, as a projection of its own for that
    org: the departure's fields with the projection's version, and no lookup (WhoId,
    WhatId and OwnerId are not in the mark's fields: they stay as they are there).

    >>> moved = Projection("b-1", 4, "Booking_Id__c", {}, None, None, None,
    ...     salesforce_org="acme", departures=(Departure(None, {"Booking_Id__c": "b-1"}),))
    >>> mark = departure_mark(moved, moved.departures[0])
    >>> (mark.salesforce_org, mark.version, mark.fields, mark.lookup_email)
    (None, 4, {'Booking_Id__c': 'b-1'}, None)
    """
    return Projection(
        booking_id=projection.booking_id,
        version=projection.version,
        external_id_field=projection.external_id_field,
        fields=departure.fields,
        lookup_email=None,
        customer_name=None,
        related_type=None,
        salesforce_org=departure.salesforce_org,
    )


def withdrawal(projection: Projection, org: str | None, mapping: FieldMapping) -> Projection:
    """The write that deletes the booking's Event in `org` (one of the projection's
    `withdrawals`), as a projection of its own for that org: the external id and the
    projection's version, so an Event there that is newer stays.

    >>> undone = Projection("b-1", 5, "Booking_Id__c", {"Projection_Version__c": 5,
    ...     "Booking_Id__c": "b-1", "Subject": "Demo"}, None, None, None, withdrawals=("acme",))
    >>> gone = withdrawal(undone, "acme", FieldMapping())
    >>> (gone.salesforce_org, gone.withdraw, gone.version, gone.fields)
    ('acme', True, 5, {'Booking_Id__c': 'b-1', 'Projection_Version__c': 5})
    """
    return Projection(
        booking_id=projection.booking_id,
        version=projection.version,
        external_id_field=projection.external_id_field,
        fields={
            projection.external_id_field: projection.booking_id,
            mapping.version_field: projection.version,
        },
        lookup_email=None,
        customer_name=None,
        related_type=None,
        salesforce_org=org,
        withdraw=True,
    )


def for_mapping(projection: Projection, source: FieldMapping, target: FieldMapping) -> Projection:
    """`projection` (made with `source`'s field names) for an org that uses `target`'s:
    the status and reason fields renamed; the same projection when the names agree.

    >>> p = Projection("b-1", 1, "Booking_Id__c", {"Event_Status__c": "Scheduled"},
    ...     None, None, None)
    >>> for_mapping(p, PRESETS["default"], PRESETS["oncehub"]).fields
    {'ScheduleOnce__Event_status__c': 'Scheduled'}
    """
    renames = {
        old: new
        for old, new in (
            (source.status_field, target.status_field),
            (source.reason_field, target.reason_field),
            (source.external_id_field, target.external_id_field),
            (source.version_field, target.version_field),
        )
        if old != new
    }
    if not renames:
        return projection
    fields = {renames.get(name, name): value for name, value in projection.fields.items()}
    return replace(projection, fields=fields, external_id_field=target.external_id_field)
