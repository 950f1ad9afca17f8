"""The ingest agent's per-booking fold (streams/worker/ingest.py), its tables and topics
replaced by in-memory fakes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from streams.core.due_index import parse_key
from streams.core.projection import Projection
from streams.core.retention import marker
from streams.worker import ingest, metrics
from tests import factories as f

REJECTED = "activity_sync_reassignments_rejected_total"


@dataclass
class Message:
    timestamp: float = 1_700_000_000.0


@dataclass
class Event:
    message: Message


class Bookings:
    """`bookings` as the agent uses it: rows read and written under an event."""

    def __init__(self) -> None:
        self.rows: dict[bytes, bytes] = {}

    def get(self, key: bytes, *, under: Any) -> bytes | None:
        return self.rows.get(key)

    def set(self, key: bytes, value: bytes, *, under: Any) -> None:
        self.rows[key] = value


class DueIndex:
    """The due index as the agent uses it: entries added and removed under an event."""

    def __init__(self) -> None:
        self.keys: set[bytes] = set()
        self.versions: dict[bytes, int] = {}  # a reconcile entry's projection version

    def apply(self, changes: Any, *, under: Any) -> None:
        self.keys = (self.keys - changes.remove) | changes.add

    def add(self, key: bytes, *, under: Any, version: int = 0) -> None:
        self.keys.add(key)
        self.versions[key] = version


@pytest.fixture
def index(monkeypatch: pytest.MonkeyPatch) -> DueIndex:
    fake = DueIndex()
    monkeypatch.setattr(ingest, "due_index", fake)
    return fake


@pytest.fixture
def sent(index: DueIndex, monkeypatch: pytest.MonkeyPatch) -> list[Projection]:
    projections: list[Projection] = []

    async def send_projection(key: bytes, projection: Projection, **_: Any) -> None:
        projections.append(projection)

    async def dead_letter_event(*_: Any, **__: Any) -> None:
        raise AssertionError("nothing here goes to the DLQ")

    monkeypatch.setattr(ingest, "bookings", Bookings())
    monkeypatch.setattr(ingest, "send_projection", send_projection)
    monkeypatch.setattr(ingest, "dead_letter_event", dead_letter_event)
    return projections


def rejected_so_far() -> float:
    return metrics.REGISTRY.get_sample_value(REJECTED) or 0.0


async def fold_in(*wires: dict[str, Any]) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    items = [(Event(Message()), f.event(wire)) for wire in wires]
    await ingest.fold_booking(f.BOOKING_ID.encode(), items, outcomes)
    return outcomes


async def test_a_rejected_reassignment_is_counted_once(sent: list[Projection]) -> None:
    before = rejected_so_far()
    await fold_in(f.scheduled(), f.canceled(2))
    assert rejected_so_far() == before
    outcomes = await fold_in(f.reassigned(3))
    assert outcomes == {"accepted": 1}
    assert rejected_so_far() == before + 1
    # Redelivered: a duplicate, not another rejection.
    assert await fold_in(f.reassigned(3)) == {"duplicate": 1}
    assert rejected_so_far() == before + 1
    assert sent[-1].fields["Event_Status__c"] == "Canceled"


async def test_an_applied_reassignment_is_not_counted(sent: list[Projection]) -> None:
    before = rejected_so_far()
    await fold_in(f.scheduled(), f.reassigned(2))
    assert rejected_so_far() == before
    assert sent[-1].fields["Event_Status__c"] == "Scheduled (Reassigned by User)"


async def test_the_fold_keeps_the_booking_s_completion_entry_and_a_reconcile_entry(
    sent: list[Projection], index: DueIndex
) -> None:
    def standing() -> list[str]:
        return sorted(parse_key(k).kind for k in index.keys if parse_key(k).kind != "reconcile")

    await fold_in(f.scheduled())
    assert standing() == ["completion"]
    (reconcile,) = (k for k in index.keys if parse_key(k).kind == "reconcile")
    # It records the version it was sent at: the sweep settles it from `synced` alone.
    assert index.versions[reconcile] == sent[-1].version
    await fold_in(f.completed(2))
    assert standing() == ["retention"]
    # Only duplicates: nothing changed, nothing for the reconcile timer to check.
    before = set(index.keys)
    await fold_in(f.completed(2))
    assert index.keys == before


async def test_an_event_for_an_expired_booking_goes_to_the_dlq_and_folds_nothing(
    sent: list[Projection], index: DueIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = f.fold_dicts([f.scheduled(), f.completed(2)])
    ingest.bookings.set(f.BOOKING_ID.encode(), marker(state), under=None)
    dead: list[str] = []

    async def dead_letter_event(event: Any, code: str, message: str, value: Any = None) -> None:
        dead.append(code)

    monkeypatch.setattr(ingest, "dead_letter_event", dead_letter_event)
    outcomes = await fold_in(f.rescheduled(3), f.canceled(4))
    assert outcomes == {"booking-expired": 2}
    assert dead == ["booking-expired", "booking-expired"]
    assert sent == []
    assert ingest.bookings.get(f.BOOKING_ID.encode(), under=None) == marker(state)
