"""Realistic booking events for demos, `activity-sync produce --generate` and benchmarks.

Pure and seeded: the same seed gives the same events. Everything here returns plain
JSON-able dicts in the wire format of `schemas` (CloudEvents structured JSON).

`generate_events(n, seed)` interleaves n bookings the way a topic sees them: in
order per booking mostly, sometimes swapped, with duplicate copies re-sent later.
Booking ids carry the seed (`b-s7-000000`, `seed_id_prefix`): two seeds sent to one
topic never share a booking id (they would be conflicting duplicates), and the same
seed sent twice sends the same events, which the fold counts once.
Lifecycles cover rescheduling (also after a cancellation), reassignment across
connected and unconnected pages, pages with `create_activity_event` off, cancels
with reasons from either side, completions by the timer, no-shows, requested
bookings, and reassignments that must be rejected.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from streams.core.fold import TIMER_SOURCE

DEFAULT_SOURCE = "booking-pages/acme"
DEFAULT_BASE_TIME = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)

Event = dict[str, Any]

_ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_REASONS = (
    "Sick",
    "Double booked",
    "Travel delay",
    "Need more time to prepare",
    "Conflict with another meeting",
    "Budget not approved yet",
    None,
)
_TITLES = ("Product demo", "Discovery call", "Onboarding session", "Quarterly review", "Support")
_FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim")
_LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson")
_OFFSETS = (0, 1, -5, 5.5, 9)  # hours: producers send local times with offsets


def salesforce_id(prefix: str, rng: random.Random) -> str:
    """An 18-character Salesforce id with the given key prefix ("005" User, "00Q" Lead, ...)."""
    base = prefix + "".join(rng.choice(_ID_ALPHABET) for _ in range(15 - len(prefix)))
    suffix = ""
    for chunk in range(3):
        bits = sum(
            1 << i for i, char in enumerate(base[chunk * 5 : chunk * 5 + 5]) if char.isupper()
        )
        suffix += _SUFFIX_ALPHABET[bits]
    return base + suffix


# Generated bookings reference Salesforce records from a fixed pool per object (Users,
# Contacts, Leads, Cases), so an org can hold every one: the dev kit's emulator seeds
# the whole pool by default (devkit/salesforce_emulator/seed.py), as a real org would
# have to for generated traffic to pass its reference checks.
POOL_SIZE = 50
POOL_PREFIXES = {"User": "005", "Contact": "003", "Lead": "00Q", "Case": "500"}


def pool_id(prefix: str, n: int) -> str:
    """Record `n` (0 <= n < POOL_SIZE) of the pool of `prefix`'s object."""
    return salesforce_id(prefix, random.Random(f"{prefix}-{n}"))


def pool_ids(prefix: str) -> list[str]:
    return [pool_id(prefix, n) for n in range(POOL_SIZE)]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def page(page_id: str, name: str, *, connected: bool = True, create: bool = True) -> Event:
    return {
        "id": page_id,
        "name": name,
        "salesforce_connected": connected,
        "create_activity_event": create,
    }


def owner(owner_id: str, name: str, salesforce_user_id: str | None) -> Event:
    email = name.lower().replace(" ", ".") + "@acme.example"
    return {"id": owner_id, "name": name, "email": email, "salesforce_user_id": salesforce_user_id}


def customer(name: str, email: str | None = None, phone: str | None = None) -> Event:
    return {
        "name": name,
        "email": email or name.lower().replace(" ", ".") + "@customer.example",
        "phone": phone,
    }


def envelope(
    event_type: str,
    booking_id: str,
    sequence: int,
    time: datetime,
    data: Event,
    *,
    source: str = DEFAULT_SOURCE,
    event_id: str | None = None,
) -> Event:
    return {
        "specversion": "1.0",
        "id": event_id or f"{booking_id}-{sequence}",
        "source": source,
        "type": event_type,
        "time": iso(time),
        "subject": booking_id,
        "sequence": sequence,
        "datacontenttype": "application/json",
        "data": data,
    }


def booking_data(
    booking_id: str,
    *,
    start: datetime,
    end: datetime,
    page: Event,
    owner: Event,
    customer: Event,
    title: str = "Product demo",
    location: str | None = None,
    description: str | None = None,
    related: Event | None = None,
) -> Event:
    data: Event = {
        "booking_id": booking_id,
        "title": title,
        "start": iso(start),
        "end": iso(end),
        "page": page,
        "owner": owner,
        "customer": customer,
    }
    if location is not None:
        data["location"] = location
    if description is not None:
        data["description"] = description
    if related is not None:
        data["related"] = related
    return data


def rescheduled_data(start: datetime, end: datetime, reason: str | None, by: str) -> Event:
    data: Event = {"start": iso(start), "end": iso(end), "by": by}
    if reason is not None:
        data["reason"] = reason
    return data


def canceled_data(reason: str | None, by: str) -> Event:
    return {"by": by} if reason is None else {"reason": reason, "by": by}


def reassigned_data(new_owner: Event, new_page: Event, by: str | None = None) -> Event:
    data: Event = {"owner": new_owner, "page": new_page}
    if by is not None:
        data["by"] = by
    return data


@dataclass(frozen=True)
class Catalog:
    """The pages and owners bookings are drawn from; weights favour connected pages."""

    connected_pages: tuple[Event, ...]
    unconnected_pages: tuple[Event, ...]
    no_event_pages: tuple[Event, ...]
    owners: tuple[Event, ...]

    @classmethod
    def build(cls, rng: random.Random, owners: int = 12) -> Catalog:
        people = tuple(
            owner(
                f"u-{i}",
                f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
                pool_id("005", rng.randrange(POOL_SIZE)),
            )
            for i in range(owners)
        )
        return cls(
            connected_pages=tuple(page(f"p-sales-{i}", f"Sales {i}") for i in range(4)),
            unconnected_pages=(page("p-support", "Support", connected=False),),
            # Such a page's team syncs calendars with another tool (e.g. Cirrus Insight).
            no_event_pages=(page("p-cirrus", "Partner desk", create=False),),
            owners=people,
        )

    def pick_page(self, rng: random.Random) -> Event:
        roll = rng.random()
        if roll < 0.8:
            return rng.choice(self.connected_pages)
        if roll < 0.9:
            return rng.choice(self.unconnected_pages)
        return rng.choice(self.no_event_pages)


def _related(rng: random.Random) -> Event | None:
    roll = rng.random()
    if roll < 0.4:
        return None  # found by the customer's email
    if roll < 0.65:
        return {"type": "Contact", "id": pool_id("003", rng.randrange(POOL_SIZE))}
    if roll < 0.85:
        return {"type": "Lead", "id": pool_id("00Q", rng.randrange(POOL_SIZE))}
    return {"type": "Case", "id": pool_id("500", rng.randrange(POOL_SIZE))}


def _local(moment: datetime, rng: random.Random) -> datetime:
    hours = rng.choice(_OFFSETS)
    return moment.astimezone(timezone(timedelta(hours=hours)) if hours else UTC)


def random_lifecycle(
    rng: random.Random,
    booking_id: str,
    *,
    base_time: datetime = DEFAULT_BASE_TIME,
    catalog: Catalog | None = None,
    source: str = DEFAULT_SOURCE,
    grace: timedelta = timedelta(minutes=15),
) -> list[Event]:
    """One booking's events in the order the producer sends them (valid, no duplicates)."""
    catalog = catalog or Catalog.build(rng)
    now = base_time + timedelta(minutes=rng.randrange(0, 7 * 24 * 60))
    start = (now + timedelta(days=rng.randrange(1, 14))).replace(minute=rng.choice((0, 30)))
    length = timedelta(minutes=rng.choice((15, 30, 45, 60)))
    current_page = catalog.pick_page(rng)
    current_owner = rng.choice(catalog.owners)
    person = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
    details = booking_data(
        booking_id,
        start=_local(start, rng),
        end=_local(start + length, rng),
        page=current_page,
        owner=current_owner,
        customer=customer(person, phone=f"+1-555-{rng.randrange(1000, 9999)}"),
        title=f"{rng.choice(_TITLES)} with {person}",
        location=rng.choice((None, "Zoom", "Room 4.12", "Phone")),
        description=rng.choice((None, "Booked from the pricing page.", "Agenda: goals, timeline")),
        related=_related(rng),
    )
    events: list[Event] = []
    sequence = 0

    def emit(kind: str, data: Event, *, at: datetime | None = None) -> None:
        nonlocal sequence, now
        sequence += 1
        now = at or now + timedelta(minutes=rng.randrange(1, 600))
        events.append(envelope(kind, booking_id, sequence, _local(now, rng), data, source=source))

    phase = "Requested" if rng.random() < 0.15 else "Scheduled"
    emit(f"booking.{phase.lower()}", details)
    for _ in range(rng.randrange(0, 6)):
        roll = rng.random()
        if phase == "Requested":
            if roll < 0.7:
                emit("booking.scheduled", details)
                phase = "Scheduled"
            elif roll < 0.9:
                emit("booking.canceled", canceled_data(rng.choice(_REASONS), "owner"))
                phase = "Canceled"
            else:
                break
        elif phase in ("Scheduled", "Rescheduled"):
            if roll < 0.25:
                start += timedelta(days=rng.randrange(1, 5), minutes=rng.choice((0, 30, 60)))
                reason, by = rng.choice(_REASONS), rng.choice(("customer", "owner"))
                emit(
                    "booking.rescheduled",
                    rescheduled_data(_local(start, rng), _local(start + length, rng), reason, by),
                )
                phase = "Rescheduled"
            elif roll < 0.4:
                current_page = catalog.pick_page(rng)
                current_owner = rng.choice(catalog.owners)
                emit("booking.reassigned", reassigned_data(current_owner, current_page, "admin"))
            elif roll < 0.55:
                reason, by = rng.choice(_REASONS), rng.choice(("customer", "owner"))
                emit("booking.canceled", canceled_data(reason, by))
                phase = "Canceled"
            elif roll < 0.7:
                # The completion timer: the last sequence it saw (not +1), its own later time.
                now = max(now + timedelta(seconds=1), start + length + grace)
                completed = envelope(
                    "booking.completed",
                    booking_id,
                    sequence,
                    now,
                    {},
                    source=TIMER_SOURCE,
                    event_id=f"completed:{booking_id}:{sequence}",
                )
                events.append(completed)
                phase = "Completed"
            elif roll < 0.85:
                emit("booking.completed", {"by": "owner"}, at=max(now, start + length))
                phase = "Completed"
            else:
                emit("booking.no_show", {"by": "owner"}, at=max(now, start + length))
                phase = "No-show"
        elif phase == "Canceled":
            if roll < 0.35:
                # The reschedule-request flow: a canceled booking gets a new slot.
                start += timedelta(days=rng.randrange(1, 5))
                emit(
                    "booking.rescheduled",
                    rescheduled_data(
                        _local(start, rng), _local(start + length, rng), "New slot", "customer"
                    ),
                )
                phase = "Rescheduled"
            elif roll < 0.5:
                # Rejected by the fold: a canceled booking cannot be reassigned.
                emit(
                    "booking.reassigned", reassigned_data(rng.choice(catalog.owners), current_page)
                )
            else:
                break
        elif phase == "Completed":
            if roll < 0.3:
                emit("booking.no_show", {"by": "owner"})
                phase = "No-show"
            else:
                break
        else:
            break
    return events


def seed_id_prefix(seed: int) -> str:
    """The booking id prefix of a seed's bookings: `b-s7-` for seed 7."""
    return f"b-s{seed}-"


def generate_events(
    n_bookings: int,
    seed: int = 0,
    *,
    duplicate_rate: float = 0.05,
    swap_rate: float = 0.02,
    concurrent: int = 64,
    base_time: datetime = DEFAULT_BASE_TIME,
    source: str = DEFAULT_SOURCE,
    id_prefix: str | None = None,
) -> Iterator[Event]:
    """Events of `n_bookings` bookings interleaved as on a topic, with duplicates.

    Booking ids are `id_prefix` + a zero-padded number; the prefix defaults to the
    seed's (`seed_id_prefix`)."""
    if id_prefix is None:
        id_prefix = seed_id_prefix(seed)
    rng = random.Random(seed)
    catalog = Catalog.build(rng)
    width = max(6, len(str(n_bookings)))
    pending: list[list[Event]] = []
    sent: list[Event] = []
    next_booking = 0
    while next_booking < n_bookings or pending:
        while next_booking < n_bookings and len(pending) < concurrent:
            booking_id = f"{id_prefix}{next_booking:0{width}d}"
            pending.append(
                random_lifecycle(
                    rng, booking_id, base_time=base_time, catalog=catalog, source=source
                )
            )
            next_booking += 1
        slot = rng.randrange(len(pending))
        queue = pending[slot]
        if len(queue) > 1 and rng.random() < swap_rate:
            queue[0], queue[1] = queue[1], queue[0]  # a late arrival
        event = queue.pop(0)
        if not queue:
            pending[slot] = pending[-1]
            pending.pop()
        yield event
        sent.append(event)
        if rng.random() < duplicate_rate:
            yield rng.choice(sent[-256:])  # an at-least-once re-send of a recent event
        if len(sent) > 4096:
            del sent[:2048]
