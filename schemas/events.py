"""The booking event contract (topic `booking-events`): CloudEvents 1.0, structured JSON.

One pydantic model per event type, joined in the discriminated union `BookingEvent`
(tag: `type`). `parse_event` is the single entry the pipeline uses for raw Kafka
messages; producers build a model, which validates on construction, and send
`event.to_json()`.

Decisions (also in docs/event-contract.md):

- Unknown attributes at the envelope level are accepted and ignored. CloudEvents lets
  any hop add extension attributes (`traceparent`, `partitionkey`, ...); they say
  nothing about the booking, so they are not kept, and two copies of an event that
  differ only in extensions are identical copies, not a conflicting duplicate.
- Unknown fields inside `data` (and in its nested objects) are rejected: a misspelt
  `reasn` would otherwise silently lose the reason shown in Salesforce.
- `specversion` must be present on the wire and be "1.0"; Python producers get it
  by default. `time` must carry a timezone (naive times are rejected), as must
  `start` and `end`; `end` must be after `start`.
- `booking.scheduled` / `booking.requested` must carry `data.booking_id == subject`.
- `page.salesforce_org` (on `scheduled`, `requested`, `reassigned`) names the org the
  page's Events live in, a registry name (`^[a-z0-9][a-z0-9-]{0,39}$`); absent or
  null means the default org (the worker's own Salesforce settings).
- Text fields accept any length within the 64 KiB message limit: cutting to
  Salesforce's field limits is the projection's job, so a long title never costs
  a booking its Event.
"""

from __future__ import annotations

import functools
import operator
from typing import Annotated, Any, Literal, Self

import pydantic_core
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    model_validator,
)

MAX_EVENT_BYTES = 64 * 1024

EVENT_TYPES = (
    "booking.scheduled",
    "booking.requested",
    "booking.rescheduled",
    "booking.reassigned",
    "booking.canceled",
    "booking.completed",
    "booking.no_show",
)

NonEmptyStr = Annotated[StrictStr, Field(min_length=1)]
# 15- or 18-character Salesforce record id (case-sensitive / case-safe form).
SalesforceId = Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")]
Email = Annotated[StrictStr, Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=254)]
# Who gave a cancel/reschedule reason: the customer or the booking owner.
Actor = Literal["customer", "owner"]
# A Salesforce org's name in the org registry: lowercase letters, digits and hyphens,
# at most 40 characters, not starting with a hyphen.
ORG_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,39}$"
OrgName = Annotated[StrictStr, Field(pattern=ORG_NAME_PATTERN)]


class _Part(BaseModel):
    """Base of every object inside `data`: immutable, unknown fields rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Page(_Part):
    id: NonEmptyStr
    name: StrictStr
    salesforce_connected: StrictBool
    # The seed: "by default a Salesforce Activity Event is also always created".
    create_activity_event: StrictBool = True
    # The Salesforce org the page's Events live in; absent or null: the default org.
    # Left out of the dump when null, so a stored event without an org has the very
    # JSON it had before the field existed (the fold's duplicate check compares it).
    # `org is None` as a builtin: pydantic calls it for every page it serializes (the
    # fold dumps each event once), and a lambda costs a Python frame per call.
    salesforce_org: OrgName | None = Field(
        default=None, exclude_if=functools.partial(operator.is_, None)
    )


class Owner(_Part):
    id: NonEmptyStr
    name: StrictStr
    email: Email
    # An owner on a page that is not connected to Salesforce may have no User.
    salesforce_user_id: SalesforceId | None = None


class Customer(_Part):
    name: StrictStr
    email: Email
    phone: StrictStr | None = None


class Related(_Part):
    type: Literal["Lead", "Contact", "Case"]
    id: SalesforceId


class BookingDetails(_Part):
    """The full booking: `data` of `booking.scheduled` and `booking.requested`."""

    booking_id: NonEmptyStr
    title: StrictStr
    start: AwareDatetime
    end: AwareDatetime
    location: StrictStr | None = None
    description: StrictStr | None = None
    page: Page
    owner: Owner
    customer: Customer
    related: Related | None = None

    @model_validator(mode="after")
    def _end_after_start(self) -> Self:
        if self.end <= self.start:  # inline: pydantic calls it for every event with times
            raise ValueError("end must be after start")
        return self


class RescheduledData(_Part):
    start: AwareDatetime
    end: AwareDatetime
    reason: StrictStr | None = None
    by: Actor

    @model_validator(mode="after")
    def _end_after_start(self) -> Self:
        if self.end <= self.start:  # inline: pydantic calls it for every event with times
            raise ValueError("end must be after start")
        return self


class ReassignedData(_Part):
    owner: Owner
    page: Page
    # Free text: the user (or system) who reassigned the booking.
    by: StrictStr | None = None


class CanceledData(_Part):
    reason: StrictStr | None = None
    by: Actor


class OutcomeData(_Part):
    """`data` of `booking.completed` and `booking.no_show`."""

    by: StrictStr | None = None


def _wire_requires_tag_and_version(schema: dict[str, Any]) -> None:
    # Python producers get `type` and `specversion` by default, but on the wire both
    # are required (`parse_event` enforces it), so the exported schema says so.
    required = schema.setdefault("required", [])
    for name in ("specversion", "type"):
        if name not in required:
            required.append(name)


class _Envelope(BaseModel):
    """CloudEvents 1.0 envelope attributes shared by every booking event."""

    # extra="ignore": CloudEvents extension attributes are accepted and dropped (see
    # the module docstring). frozen: events are values; the fold keeps them as such.
    model_config = ConfigDict(
        extra="ignore", frozen=True, json_schema_extra=_wire_requires_tag_and_version
    )

    specversion: Literal["1.0"] = "1.0"
    id: Annotated[StrictStr, Field(min_length=1, max_length=256)]
    source: Annotated[StrictStr, Field(min_length=1, max_length=1024)]
    time: AwareDatetime
    # The booking id, also the Kafka key and the Salesforce external id (≤255).
    subject: Annotated[StrictStr, Field(min_length=1, max_length=255)]
    sequence: Annotated[StrictInt, Field(ge=0)]
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: StrictStr | None = None

    def to_json(self) -> bytes:
        """The event as compact JSON bytes, ready to be a Kafka message value."""
        return self.__pydantic_serializer__.to_json(self, exclude_none=True)


class _FullBookingEvent(_Envelope):
    data: BookingDetails

    @model_validator(mode="after")
    def _subject_is_booking(self) -> Self:
        if self.data.booking_id != self.subject:
            raise ValueError("data.booking_id must equal subject")
        return self


class BookingScheduled(_FullBookingEvent):
    type: Literal["booking.scheduled"] = "booking.scheduled"


class BookingRequested(_FullBookingEvent):
    type: Literal["booking.requested"] = "booking.requested"


class BookingRescheduled(_Envelope):
    type: Literal["booking.rescheduled"] = "booking.rescheduled"
    data: RescheduledData


class BookingReassigned(_Envelope):
    type: Literal["booking.reassigned"] = "booking.reassigned"
    data: ReassignedData


class BookingCanceled(_Envelope):
    type: Literal["booking.canceled"] = "booking.canceled"
    data: CanceledData


class BookingCompleted(_Envelope):
    type: Literal["booking.completed"] = "booking.completed"
    data: OutcomeData = OutcomeData()


class BookingNoShow(_Envelope):
    type: Literal["booking.no_show"] = "booking.no_show"
    data: OutcomeData = OutcomeData()


BookingEvent = Annotated[
    BookingScheduled
    | BookingRequested
    | BookingRescheduled
    | BookingReassigned
    | BookingCanceled
    | BookingCompleted
    | BookingNoShow,
    Field(discriminator="type"),
]

BOOKING_EVENT_ADAPTER: TypeAdapter[BookingEvent] = TypeAdapter(BookingEvent)

RejectCode = Literal["too-large", "not-utf8", "not-json", "schema", "unknown-type", "key-mismatch"]


class EventRejected(ValueError):
    """A message that cannot enter the fold; `code` names the DLQ reason."""

    def __init__(self, code: RejectCode, field: str | None, message: str) -> None:
        super().__init__(message)
        self.code: RejectCode = code
        self.field = field
        self.message = message

    def __repr__(self) -> str:
        return f"EventRejected(code={self.code!r}, field={self.field!r}, message={self.message!r})"


def parse_event(raw: bytes, key: bytes | None = None) -> BookingEvent:
    """Validate one Kafka message value (and its key, when given) into a `BookingEvent`.

    Raises `EventRejected` with a DLQ code and the offending field. The happy path
    is a single pass of pydantic's JSON parser over `raw`.
    """
    if len(raw) > MAX_EVENT_BYTES:
        raise EventRejected(
            "too-large", None, f"message is {len(raw)} bytes, the limit is {MAX_EVENT_BYTES}"
        )
    try:
        event = BOOKING_EVENT_ADAPTER.validate_json(raw)
    except ValidationError as exc:
        raise _rejection(exc, raw) from None
    if "specversion" not in event.model_fields_set:
        raise EventRejected("schema", "specversion", "specversion: field required")
    if key is not None and key != event.subject.encode():
        raise EventRejected(
            "key-mismatch",
            "subject",
            f"subject {event.subject!r} differs from the Kafka key {key[:300]!r}",
        )
    return event


def _rejection(exc: ValidationError, raw: bytes) -> EventRejected:
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    first = errors[0]
    kind = first["type"]
    if kind == "json_invalid":
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            return EventRejected("not-utf8", None, f"message is not UTF-8: {bad}")
        return EventRejected("not-json", None, f"message is not JSON: {first['msg']}")
    if kind == "union_tag_invalid":
        return EventRejected("unknown-type", "type", f"type: {first['msg']}")
    if kind == "union_tag_not_found":
        return EventRejected("schema", "type", "type: field required")
    if kind in ("dict_type", "model_attributes_type") and not first["loc"]:
        return EventRejected("schema", None, "message is not a JSON object")
    described = []
    for error in errors[:5]:
        # loc[0] is the union tag (the event type); the field path follows.
        path = ".".join(str(part) for part in error["loc"][1:]) or "(event)"
        described.append(f"{path}: {error['msg']}")
    field = ".".join(str(part) for part in first["loc"][1:]) or None
    more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    return EventRejected("schema", field, "; ".join(described) + more)


def event_from_dict(body: dict[str, Any]) -> BookingEvent:
    """Validate an already-decoded JSON object (e.g. a stored copy) into an event."""
    return BOOKING_EVENT_ADAPTER.validate_json(pydantic_core.to_json(body))
