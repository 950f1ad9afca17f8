"""The booking fold: events -> `BookingState` -> `BookingView`. Pure: no I/O.

The rules are docs/event-contract.md, "The fold".

A `BookingState` keeps every accepted event of one booking, keyed by `(source, id)`,
in replay order (`sequence`, `time`, `id`, then `source` so that ties between
sources are still deterministic). The view is what replaying them gives, so it
depends only on the set of events, never on arrival order or duplicates.

Events are stored in their JSON form (the pydantic model dumped once, when folded),
so a state loads from bytes with one `orjson.loads` and no pydantic validation.

Bounded history: at most `MAX_EVENTS_PER_BOOKING` events per booking. A new event
arriving at a full booking is not applied: `fold` answers outcome `history-full`
with the event in `dead_letter`, for the pipeline to send to the DLQ (nothing valid
is silently dropped). Duplicates of stored events are still recognised. 256
lifecycle events for one booking means a producer loop, not a real booking.
"""

from __future__ import annotations

import bisect
import enum
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NamedTuple

import orjson

from schemas import BookingCompleted, BookingEvent, OutcomeData, event_from_dict
from streams.core.view import (
    REASSIGNABLE_PHASES,
    BookingView,
    CustomerInfo,
    HistoryEntry,
    LeftOrg,
    OwnerInfo,
    PageInfo,
    Phase,
    RejectedReassignment,
    RelatedRef,
    history_entry,
    utc_minute,
)

MAX_EVENTS_PER_BOOKING = 256
TIMER_SOURCE = "activity-sync/timer"
STATE_FORMAT = 1

Outcome = Literal["accepted", "duplicate", "conflicting-duplicate", "history-full"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# `tuple.__new__(NamedTupleClass, values)`: a named tuple made without its generated
# `__new__`, a Python function (a frame per call); for the ones made per folded event,
# with every field given in order.
_tuple = tuple.__new__
_ONE_US = timedelta(microseconds=1)
_WHO = {"customer": "customer", "owner": "booking owner"}


def to_epoch_us(moment: datetime) -> int:
    """Exact microseconds since the epoch (no float rounding) of an aware datetime."""
    return (moment - _EPOCH) // _ONE_US


def from_epoch_us(micros: int) -> datetime:
    return _EPOCH + timedelta(0, 0, micros)  # positional: a third cheaper than microseconds=


class StoredEvent(NamedTuple):
    """One accepted event: its replay sort key, then its JSON form (extensions dropped)."""

    sequence: int
    time_us: int
    id: str
    source: str
    body: Mapping[str, Any]

    @property
    def type(self) -> str:
        return str(self.body["type"])

    def canonical_json(self) -> bytes:
        """Sorted keys, no spaces: decides which of two conflicting copies is kept."""
        return orjson.dumps(self.body, option=orjson.OPT_SORT_KEYS)

    def to_event(self) -> BookingEvent:
        return event_from_dict(dict(self.body))


def _sort_key(stored: StoredEvent) -> tuple[int, int, str, str]:
    return (stored.sequence, stored.time_us, stored.id, stored.source)


def stored_event(event: BookingEvent) -> StoredEvent:
    # The serializer directly, with nulls kept: measurably cheaper than model_dump with
    # exclude_none, and just as canonical (absent and null validate to the same model).
    body = event.__pydantic_serializer__.to_python(event, mode="json")
    return _tuple(
        StoredEvent, (event.sequence, to_epoch_us(event.time), event.id, event.source, body)
    )


def _page(raw: Mapping[str, Any]) -> PageInfo:
    return PageInfo(
        raw["id"],
        raw["name"],
        raw["salesforce_connected"],
        raw.get("create_activity_event", True),
        raw.get("salesforce_org"),
    )


def _owner(raw: Mapping[str, Any]) -> OwnerInfo:
    return OwnerInfo(raw["id"], raw["name"], raw["email"], raw.get("salesforce_user_id"))


def reason_text(reason: str | None, by: str) -> str:
    """`Sick (customer)`: the reason first, who gave it after."""
    text = reason.strip() if reason else ""
    return f"{text or 'No reason given'} ({_WHO.get(by, by)})"


def moved_reason(page_name: str) -> str:
    """The reason an Event left behind in another org shows."""
    return f"Moved to another Salesforce org (page {page_name})"


class _Unset(enum.Enum):
    UNSET = enum.auto()


_UNSET = _Unset.UNSET


def _left_order(left: LeftOrg) -> tuple[bool, str]:
    return (left.salesforce_org is not None, left.salesforce_org or "")


class _Replay:
    """The mutable accumulator of one replay; `view()` freezes it into a BookingView."""

    __slots__ = (
        "booking_id",
        "booking_owner",
        "creates_event",
        "customer",
        "description",
        "end",
        "history",
        "last_sequence",
        "left",
        "location",
        "named",
        "only_named",
        "owner",
        "page",
        "phase",
        "reason",
        "reassigned",
        "rejected",
        "related",
        "related_org",
        "salesforce_org",
        "scheduled",
        "start",
        "title",
    )

    def __init__(self, booking_id: str) -> None:
        self.booking_id = booking_id
        self.scheduled = False
        self.creates_event = False
        self.phase: Phase | None = None
        self.reassigned = False
        self.reason: str | None = None
        self.title: str | None = None
        # Kept in the view's types, converted once per event that sets them: a replay
        # applies each event once but the view is frozen after every folded event.
        self.start: datetime | None = None
        self.end: datetime | None = None
        self.location: str | None = None
        self.description: str | None = None
        self.page: PageInfo | None = None
        self.owner: OwnerInfo | None = None
        self.booking_owner: OwnerInfo | None = None
        self.customer: CustomerInfo | None = None
        self.related: RelatedRef | None = None
        self.rejected: list[RejectedReassignment] = []
        self.history: list[HistoryEntry] = []
        self.last_sequence: int | None = None
        # The org the Event lives in (None: the default org), the org `related` names
        # records of, and the orgs the Event has left (None until it first moves: the
        # common case costs nothing). `left` is replaced, never changed in place, so a
        # copy may share it.
        self.salesforce_org: str | None = None
        self.related_org: str | None = None
        self.left: dict[str | None, LeftOrg] | None = None
        # The orgs the events' pages name: `only_named` while they all name one org
        # (the common case costs a comparison), else the set `named`.
        self.only_named: str | _Unset | None = _UNSET
        self.named: set[str | None] | None = None

    def copy(self) -> _Replay:
        # Spelled out: a generic slot loop or copy.copy costs several times more.
        twin = _Replay.__new__(_Replay)
        twin.booking_id = self.booking_id
        twin.booking_owner = self.booking_owner
        twin.creates_event = self.creates_event
        twin.customer = self.customer
        twin.description = self.description
        twin.end = self.end
        twin.last_sequence = self.last_sequence
        twin.location = self.location
        twin.owner = self.owner
        twin.page = self.page
        twin.phase = self.phase
        twin.reason = self.reason
        twin.reassigned = self.reassigned
        twin.related = self.related
        twin.related_org = self.related_org
        twin.salesforce_org = self.salesforce_org
        twin.left = self.left
        twin.only_named = self.only_named
        twin.named = set(self.named) if self.named is not None else None
        twin.scheduled = self.scheduled
        twin.start = self.start
        twin.title = self.title
        twin.rejected = list(self.rejected)
        twin.history = list(self.history)
        return twin

    def _take_details(self, data: Mapping[str, Any]) -> None:
        self.title = data["title"]
        self.start = datetime.fromisoformat(data["start"])
        self.end = datetime.fromisoformat(data["end"])
        self.location = data.get("location")
        self.description = data.get("description")
        self.page = _page(data["page"])
        self.owner = self.booking_owner = _owner(data["owner"])
        customer = data["customer"]
        self.customer = CustomerInfo(customer["name"], customer["email"], customer.get("phone"))
        related = data.get("related")
        self.related = RelatedRef(related["type"], related["id"]) if related else None
        # Record ids belong to one org: the one the booking was made in.
        self.related_org = self.salesforce_org

    def _name(self, org: str | None) -> None:
        """A page of the booking's events names `org` (applied or not)."""
        if self.named is None:
            if self.only_named is _UNSET:
                self.only_named = org
                return
            if org == self.only_named:
                return
            self.named = {self.only_named}
        self.named.add(org)

    def withdrawn(self) -> tuple[str | None, ...]:
        """The orgs named but neither the Event's nor one it left (default org first)."""
        if self.named is None:
            return ()
        gone = self.named - {self.salesforce_org}
        if self.left:
            gone -= self.left.keys()
        return tuple(sorted(gone, key=lambda org: (org is not None, org or "")))

    def _move(self, org: str | None, page_name: str) -> None:
        """The Event now lives in `org`. If it exists, the org it leaves keeps it as it
        stands, marked as moved (docs/event-contract.md, "The fold"); an org it comes
        back to writes the full Event again."""
        left = dict(self.left) if self.left else {}
        if self.scheduled and self.creates_event and self.phase is not None:
            phase = self.phase
            # The picklist has a reassigned form of Scheduled and Rescheduled only.
            status = f"{phase} (Reassigned by User)" if phase in REASSIGNABLE_PHASES else phase
            left[self.salesforce_org] = LeftOrg(
                self.salesforce_org,
                status,
                moved_reason(page_name),
                self.title,
                self.start,
                self.end,
                self.location,
                self.description,
                len(self.history) + 1,  # the moving event's own entry is appended last
            )
        left.pop(org, None)
        self.left = left or None
        self.salesforce_org = org

    def apply(self, stored: StoredEvent) -> None:
        body = stored.body
        kind = body["type"]
        data = body.get("data") or {}
        applied = True
        if kind == "booking.scheduled":
            page = data["page"]
            org = page.get("salesforce_org")
            self._name(org)
            if org != self.salesforce_org:
                self._move(org, page["name"])
            if not self.scheduled:
                # create_activity_event (and the connection) count only at scheduling.
                self.scheduled = True
                self.creates_event = bool(
                    page["salesforce_connected"] and page.get("create_activity_event", True)
                )
            self._take_details(data)
            self.phase, self.reassigned = "Scheduled", False
            detail = f"on page {data['page']['name']} with {data['owner']['name']}"
        elif kind == "booking.requested":
            self._name(data["page"].get("salesforce_org"))
            if self.scheduled:
                applied, detail = False, "ignored: the booking is already scheduled"
            else:
                org = data["page"].get("salesforce_org")
                if org != self.salesforce_org:
                    self._move(org, data["page"]["name"])
                self._take_details(data)
                self.phase = "Requested"
                detail = "awaiting the owner's approval"
        elif kind == "booking.rescheduled":
            self.start = datetime.fromisoformat(data["start"])
            self.end = datetime.fromisoformat(data["end"])
            self.reason = reason_text(data.get("reason"), data["by"])
            self.phase, self.reassigned = "Rescheduled", False
            detail = f"{self.reason}; new time {utc_minute(self.start, data['start'])} UTC"
        elif kind == "booking.canceled":
            self.reason = reason_text(data.get("reason"), data["by"])
            self.phase, self.reassigned = "Canceled", False
            detail = self.reason
        elif kind == "booking.reassigned":
            self._name(data["page"].get("salesforce_org"))
            if self.phase in REASSIGNABLE_PHASES:
                new_page, new_owner = _page(data["page"]), _owner(data["owner"])
                both_connected = bool(
                    self.page and self.page.salesforce_connected and new_page.salesforce_connected
                )
                if both_connected:
                    # The Event follows the page to its org only when it follows the
                    # page at all: the same rule as its owner.
                    if new_page.salesforce_org != self.salesforce_org:
                        self._move(new_page.salesforce_org, new_page.name)
                    self.owner, self.reassigned = new_owner, True
                self.booking_owner = new_owner
                self.page = new_page
                detail = f"to {new_owner.name} on page {new_page.name}"
                if not both_connected:
                    detail += " (a page is not connected to Salesforce: Event owner kept)"
            else:
                self.rejected.append(RejectedReassignment(stored.source, stored.id, self.phase))
                applied = False
                detail = f"rejected: the booking is {self.phase or 'not scheduled'}"
        elif kind == "booking.completed":
            self.phase, self.reassigned = "Completed", False
            detail = "automatically, end time passed" if stored.source == TIMER_SOURCE else ""
        elif kind == "booking.no_show":
            self.phase, self.reassigned = "No-show", False
            detail = ""
        else:  # pragma: no cover - the schema admits no other type
            raise ValueError(f"unknown event type {kind!r}")
        by = data.get("by")
        if by and kind in ("booking.reassigned", "booking.completed", "booking.no_show"):
            detail = f"{detail} (by {by})" if detail else f"by {by}"
        self.history.append(
            history_entry(from_epoch_us(stored.time_us), kind, detail, applied, body["time"])
        )
        self.last_sequence = stored.sequence

    def view(self) -> BookingView:
        status: str | None = None
        if self.scheduled and self.creates_event and self.phase is not None:
            status = self.phase
            if self.reassigned:
                status += " (Reassigned by User)"
        # In BookingView's field order (test_view_fields_are_built_in_order checks it).
        return _tuple(
            BookingView,
            (
                self.booking_id,
                status,
                self.phase,
                self.reassigned,
                self.scheduled,
                self.creates_event,
                self.reason,
                self.owner,
                self.booking_owner,
                self.page,
                self.start,
                self.end,
                self.title,
                self.location,
                self.description,
                self.customer,
                # Another org's record ids mean nothing where the Event lives now: found
                # by the customer's email there instead.
                self.related if self.related_org == self.salesforce_org else None,
                tuple(self.rejected),
                tuple(self.history),
                self.last_sequence,
                self.history[-1].time if self.history else None,
                self.salesforce_org,
                tuple(sorted(self.left.values(), key=_left_order)) if self.left else (),
                self.withdrawn(),
            ),
        )


def _replay(booking_id: str, events: Iterable[StoredEvent]) -> _Replay:
    acc = _Replay(booking_id)
    for stored in events:
        acc.apply(stored)
    return acc


@dataclass(frozen=True)
class BookingState:
    """Every accepted event of one booking, in replay order, and its version.

    `version` is the number of distinct event copies folded: the events kept plus the
    conflicting copies set aside (`losers`, digests of their canonical JSON). It is a
    function of the set of copies received, whatever their order or repetition, so a
    rebuild, a replay or another worker reaches the same number for the same events;
    and it grows by one with every copy that changes the state. The sink, `synced` and
    Salesforce's version fence (streams/salesforce/fence.py) compare it.
    """

    booking_id: str
    events: tuple[StoredEvent, ...] = ()
    version: int = 0
    # The replay of `events` when the fold already had it (appending in order); a cache.
    _seed: _Replay | None = field(default=None, compare=False, repr=False)
    # Sorted digests of the conflicting copies that lost to a kept event (at most
    # MAX_EVENTS_PER_BOOKING; past that a losing copy is still dead-lettered, not counted).
    losers: tuple[str, ...] = ()

    # Derived values are cached in the instance dict; functools.cached_property would
    # do the same but takes a lock on every access on Python 3.11.
    @property
    def _replayed(self) -> _Replay:
        cached = self._seed
        if cached is None:
            cached = self.__dict__.get("_replayed_cache")
            if cached is None:
                cached = self.__dict__["_replayed_cache"] = _replay(self.booking_id, self.events)
        return cached

    @property
    def view(self) -> BookingView:
        """The booking as its events say now (computed once per state)."""
        cached: BookingView | None = self.__dict__.get("_view_cache")
        if cached is None:
            cached = self.__dict__["_view_cache"] = self._replayed.view()
        return cached

    @property
    def full(self) -> bool:
        return len(self.events) >= MAX_EVENTS_PER_BOOKING

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "format": STATE_FORMAT,
                "booking_id": self.booking_id,
                "version": self.version,
                "events": [list(stored) for stored in self.events],
                **({"losers": list(self.losers)} if self.losers else {}),
            }
        )

    @staticmethod
    def version_of(raw: bytes) -> int:
        """The `version` of a state written by `to_bytes`, without loading its events."""
        loaded = orjson.loads(raw)
        if loaded.get("format") != STATE_FORMAT:
            raise ValueError(f"unknown BookingState format {loaded.get('format')!r}")
        version: int = loaded["version"]
        return version

    @classmethod
    def from_bytes(cls, raw: bytes) -> BookingState:
        """Load a state written by `to_bytes`; no pydantic validation (it was validated once)."""
        loaded = orjson.loads(raw)
        if loaded.get("format") != STATE_FORMAT:
            raise ValueError(f"unknown BookingState format {loaded.get('format')!r}")
        return cls(
            booking_id=loaded["booking_id"],
            events=tuple(StoredEvent(*stored) for stored in loaded["events"]),
            version=loaded["version"],
            losers=tuple(loaded.get("losers", ())),
        )


class FoldResult(NamedTuple):
    """What folding one event did. A NamedTuple: one is made per folded event, and a
    frozen dataclass pays an `object.__setattr__` per field."""

    state: BookingState
    outcome: Outcome
    changed: bool
    # The copy the pipeline sends to the DLQ: the losing conflicting duplicate (incoming
    # or previously stored), or an event refused because the history is full.
    dead_letter: BookingEvent | None = None
    # An accepted `booking.reassigned` that the booking's phase refused
    # (docs/event-contract.md): kept in the state as rejected, not applied. Says how the
    # event was read on arrival; a late event sorting before it can change that later
    # (the view's `rejected_reassignments`).
    rejected_reassignment: bool = False


def _new_state(
    booking_id: str,
    events: tuple[StoredEvent, ...],
    version: int,
    seed: _Replay | None,
    losers: tuple[str, ...],
) -> BookingState:
    """`BookingState(...)` for the fold, which makes one per folded event: the frozen
    dataclass's `__init__` pays an `object.__setattr__` per field, filling the instance
    dict directly does not (the same fields, so equality and `to_bytes` are unchanged)."""
    state = object.__new__(BookingState)
    state.__dict__.update(
        booking_id=booking_id, events=events, version=version, _seed=seed, losers=losers
    )
    return state


def fold(state: BookingState | None, event: BookingEvent) -> FoldResult:
    """Add one event to a booking's state (None: the booking's first event)."""
    if state is None:
        state = _new_state(event.subject, (), 0, None, ())
    elif state.booking_id != event.subject:
        raise ValueError(f"event for {event.subject!r} folded into booking {state.booking_id!r}")
    incoming = stored_event(event)
    events = state.events
    for index, stored in enumerate(events):
        if stored.id != incoming.id or stored.source != incoming.source:
            continue
        if stored.body == incoming.body:
            return FoldResult(state, "duplicate", False)
        if incoming.canonical_json() < stored.canonical_json():
            kept = [*events[:index], *events[index + 1 :]]
            bisect.insort(kept, incoming, key=_sort_key)
            losers = _with_loser(state.losers, stored)
            replaced = _new_state(state.booking_id, tuple(kept), state.version + 1, None, losers)
            return FoldResult(replaced, "conflicting-duplicate", True, stored.to_event())
        losers = _with_loser(state.losers, incoming)
        if losers == state.losers:  # this losing copy was counted before (or no room)
            return FoldResult(state, "conflicting-duplicate", False, event)
        # Counted, so the version is the same as when this copy came first.
        counted = _new_state(state.booking_id, events, state.version + 1, state._seed, losers)
        return FoldResult(counted, "conflicting-duplicate", True, event)
    if len(events) >= MAX_EVENTS_PER_BOOKING:
        return FoldResult(state, "history-full", False, event)
    seed: _Replay | None = None
    if not events or _sort_key(incoming) > _sort_key(events[-1]):
        # Appending in replay order: continue the previous replay instead of redoing it.
        seed = state._replayed.copy() if events else _Replay(state.booking_id)
        seed.apply(incoming)
        grown = (*events, incoming)
    else:
        kept = list(events)
        bisect.insort(kept, incoming, key=_sort_key)
        grown = tuple(kept)
    folded = _new_state(state.booking_id, grown, state.version + 1, seed, state.losers)
    rejected = incoming.type == "booking.reassigned" and any(
        (r.source, r.id) == (incoming.source, incoming.id)
        for r in folded.view.rejected_reassignments
    )
    return _tuple(FoldResult, (folded, "accepted", True, None, rejected))


def _with_loser(losers: tuple[str, ...], copy: StoredEvent) -> tuple[str, ...]:
    """`losers` with the digest of a losing conflicting copy (unchanged when known or full)."""
    digest = hashlib.blake2b(
        copy.source.encode() + b"\0" + copy.canonical_json(), digest_size=12
    ).hexdigest()
    if digest in losers or len(losers) >= MAX_EVENTS_PER_BOOKING:
        return losers
    return tuple(sorted((*losers, digest)))


def fold_all(events: Iterable[BookingEvent], state: BookingState | None = None) -> BookingState:
    """Fold events in the given order; conflicting duplicates resolve as in `fold`."""
    folded = state
    for event in events:
        folded = fold(folded, event).state
    if folded is None:
        raise ValueError("fold_all needs at least one event or a state")
    return folded


def completion_event(state: BookingState, grace: timedelta) -> BookingCompleted:
    """The timer's `booking.completed` for the booking's current end time.

    It carries the sequence of the last event (not +1), so a late producer event with
    a higher sequence still wins, and a time no earlier than end + grace and after the
    last event, so it sorts right after that event. Everything in it derives from the
    state, so firing twice for the same state gives identical copies (deduplicated).
    """
    current = state.view
    if current.end is None or current.last_sequence is None or current.last_time is None:
        raise ValueError(f"booking {state.booking_id!r} has no end time yet")
    fire_at = max(current.end + grace, current.last_time + _ONE_US)
    return BookingCompleted(
        id=f"completed:{state.booking_id}:{current.last_sequence}:{to_epoch_us(current.end)}",
        source=TIMER_SOURCE,
        subject=state.booking_id,
        sequence=current.last_sequence,
        time=fire_at,
        data=OutcomeData(),
    )
