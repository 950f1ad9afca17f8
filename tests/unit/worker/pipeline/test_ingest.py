"""The ingest agent's per-booking fold (streams/worker/pipeline/ingest.py), its tables and topics
replaced by in-memory fakes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from streams.core.due_index import SentBatch, parse_key, parse_sent_value, sent_entries
from streams.core.projection import Projection
from streams.core.retention import marker
from streams.core.sink_progress import SinkProgress
from streams.core.synced import encode_synced
from streams.worker.pipeline import ingest
from streams.worker.watch import metrics
from tests import factories as f

REJECTED = "activity_sync_reassignments_rejected_total"


@dataclass
class Message:
    timestamp: float = 1_700_000_000.0
    partition: int = 0
    offset: int = 0


@dataclass
class Event:
    message: Message


class Bookings:
    """`bookings` as the agent uses it: rows read and written under an event."""

    def __init__(self) -> None:
        self.rows: dict[bytes, bytes] = {}

    def under(self, event: Any) -> Bookings:
        return self

    def get(self, key: bytes) -> bytes | None:
        return self.rows.get(key)

    def set(self, key: bytes, value: bytes) -> None:
        self.rows[key] = value


class Synced:
    """`synced` as the agent reads it: the sink's handled version per booking."""

    def __init__(self) -> None:
        self.rows: dict[bytes, int] = {}

    def under(self, event: Any) -> Synced:
        return self

    def get(self, key: bytes) -> int | None:
        return self.rows.get(key)


class DueTable:
    """The due index as the agent uses it: entries added and removed under an event."""

    def __init__(self) -> None:
        self.keys: set[bytes] = set()
        self.versions: dict[bytes, int] = {}  # a reconcile entry's projection version
        self.sent: dict[bytes, SentBatch] = {}  # a sent entry's bookings

    def under(self, event: Any) -> DueTable:
        return self

    def apply(self, changes: Any) -> None:
        self.keys = (self.keys - changes.remove) | changes.add

    def add(self, key: bytes, *, version: int = 0) -> None:
        self.keys.add(key)
        self.versions[key] = version

    def add_sent(self, at_ms: int, bookings: list[tuple[bytes, int]]) -> None:
        for key, value in sent_entries(at_ms, 0, 0, bookings):
            self.keys.add(key)
            self.sent[key] = parse_sent_value(value)


@pytest.fixture
def index(monkeypatch: pytest.MonkeyPatch) -> DueTable:
    fake = DueTable()
    monkeypatch.setattr(ingest, "due_table", fake)
    return fake


@pytest.fixture
def sent(index: DueTable, monkeypatch: pytest.MonkeyPatch) -> list[Projection]:
    projections: list[Projection] = []

    async def send_projection(key: bytes, projection: Projection, **_: Any) -> None:
        projections.append(projection)

    async def dead_letter_event(*_: Any, **__: Any) -> None:
        raise AssertionError("nothing here goes to the DLQ")

    monkeypatch.setattr(ingest, "bookings", Bookings())
    monkeypatch.setattr(ingest, "synced", Synced(), raising=False)
    monkeypatch.setattr(ingest, "sink_progress", SinkProgress(), raising=False)
    monkeypatch.setattr(ingest, "send_projection", send_projection)
    monkeypatch.setattr(ingest, "dead_letter_event", dead_letter_event)
    return projections


def rejected_so_far() -> float:
    return metrics.REGISTRY.get_sample_value(REJECTED) or 0.0


async def fold_in(*wires: dict[str, Any]) -> Counter[str]:
    """The events as one batch of one booking."""
    outcomes: Counter[str] = Counter()
    items = [(Event(Message()), f.event(wire)) for wire in wires]
    sent = ingest.SentProjections()
    await ingest.fold_booking(f.BOOKING_ID.encode(), items, outcomes, sent)
    sent.write(1_700_000_000_000)
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


async def test_the_fold_keeps_the_booking_s_completion_entry_and_a_sent_entry(
    sent: list[Projection], index: DueTable
) -> None:
    def standing() -> list[str]:
        return sorted(parse_key(k).kind for k in index.keys if parse_key(k).kind != "sent")

    await fold_in(f.scheduled())
    assert standing() == ["completion"]
    (batch,) = index.sent.values()
    # It records the version sent: the sweep settles it from `synced` alone.
    assert batch.bookings == ((f.BOOKING_ID.encode(), sent[-1].version),)
    await fold_in(f.completed(2))
    assert standing() == ["retention"]
    # Only duplicates, and Salesforce has the version: nothing for the reconcile timer.
    ingest.synced.rows[f.BOOKING_ID.encode()] = encode_synced(sent[-1].version)
    before = set(index.keys)
    await fold_in(f.completed(2))
    assert index.keys == before


async def test_an_event_for_an_expired_booking_goes_to_the_dlq_and_folds_nothing(
    sent: list[Projection], index: DueTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = f.fold_dicts([f.scheduled(), f.completed(2)])
    ingest.bookings.set(f.BOOKING_ID.encode(), marker(state))
    dead: list[str] = []

    async def dead_letter_event(event: Any, code: str, message: str, value: Any = None) -> None:
        dead.append(code)

    monkeypatch.setattr(ingest, "dead_letter_event", dead_letter_event)
    outcomes = await fold_in(f.rescheduled(3), f.canceled(4))
    assert outcomes == {"booking-expired": 2}
    assert dead == ["booking-expired", "booking-expired"]
    assert sent == []
    assert ingest.bookings.get(f.BOOKING_ID.encode()) == marker(state)


async def test_a_redelivery_re_sends_the_projection_salesforce_does_not_have(
    sent: list[Projection],
) -> None:
    """A worker died after the changelog write and before its projection reached the
    broker (on Kafka a send waits out a leader's failover): the partition's next owner
    reads the events again and finds them folded; it must send the projection itself,
    not leave it to the reconcile timer."""
    await fold_in(f.scheduled(), f.completed(2))
    lost = sent.pop()
    # The next owner: its own sink_progress (nothing in flight), `synced` from before.
    ingest.synced.rows[f.BOOKING_ID.encode()] = encode_synced(lost.version - 1)
    assert await fold_in(f.completed(2)) == {"duplicate": 1}
    assert [p.version for p in sent] == [lost.version]
    assert sent[-1].fields == lost.fields


async def test_a_redelivery_sends_nothing_salesforce_has_or_the_sink_will_read(
    sent: list[Projection], monkeypatch: pytest.MonkeyPatch
) -> None:
    await fold_in(f.scheduled(), f.completed(2))
    version = sent.pop().version
    key = f.BOOKING_ID.encode()
    # This worker's sink has not read its projection yet: on its way.
    ingest.sink_progress.sent(key, version, partition=0, offset=7)
    await fold_in(f.completed(2))
    assert sent == []
    # Salesforce has it (written, or rejected: the sink is done with it either way).
    monkeypatch.setattr(ingest, "sink_progress", SinkProgress())
    for value in (encode_synced(version), encode_synced(version, rejected=True)):
        ingest.synced.rows[key] = value
        await fold_in(f.completed(2))
        assert sent == []


class Written:
    """The due index as `SentProjections.write` uses it: sent entries per anchor."""

    def __init__(self) -> None:
        self.entries: list[tuple[int, int, int, list[tuple[bytes, int]]]] = []
        self._anchor: Any = None

    def under(self, event: Any) -> Written:
        self._anchor = event
        return self

    def add_sent(self, at_ms: int, bookings: list[tuple[bytes, int]]) -> None:
        message = self._anchor.message
        self.entries.append((message.partition, message.offset, at_ms, list(bookings)))


def test_a_batch_writes_one_sent_entry_per_partition_under_its_newest_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    written = Written()
    monkeypatch.setattr(ingest, "due_table", written)
    sent = ingest.SentProjections()
    for partition, offset, key, version in [
        (0, 10, b"b-1", 1),
        (1, 4, b"b-2", 3),
        (0, 12, b"b-3", 2),
        (0, 11, b"b-4", 7),
    ]:
        sent.add(Event(Message(partition=partition, offset=offset)), key, version)
    sent.write(1_234)
    assert sorted(written.entries) == [
        (0, 12, 1_234, [(b"b-1", 1), (b"b-3", 2), (b"b-4", 7)]),
        (1, 4, 1_234, [(b"b-2", 3)]),
    ]
