"""Table changelog writes in batches (streams/transport/changelog.py): one record batch per
changelog partition and send, a key's last value only, the table's offset recorded on the
broker's ack, failed keys written again, nothing re-sent after a stop, and each write
counted in the backlog the stream waits on until the broker has it. A fake aiokafka
producer stands for the broker (tests/unit/transport/fake_aiokafka.py)."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from faust.types import TP

from streams.transport.changelog import ChangelogBatches
from streams.transport.record_batches import Backlog
from streams.transport.tables import ChangelogWrites
from tests.unit.transport.fake_aiokafka import Builder, FakeProducer, settled

BOOKINGS_0, BOOKINGS_1 = TP("app-bookings-changelog", 0), TP("app-bookings-changelog", 1)


class Store:
    def __init__(self) -> None:
        self.offsets: dict[TP, int] = {}

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        self.offsets[tp] = offset


def changelog_batches() -> tuple[ChangelogWrites, Store, Backlog, ChangelogBatches]:
    writes, store, backlog = ChangelogWrites(), Store(), Backlog(100)
    return writes, store, backlog, ChangelogBatches(writes, backlog, opened=lambda: None)


async def test_a_partitions_writes_leave_as_one_batch_with_each_keys_last_value() -> None:
    writes, store, backlog, batches = changelog_batches()
    producer = FakeProducer()
    batches.write(store, BOOKINGS_0, b"b-1", b"v1")
    batches.write(store, BOOKINGS_1, b"b-2", b"v1")
    batches.write(store, BOOKINGS_0, b"b-3", b"v1")
    batches.write(store, BOOKINGS_0, b"b-1", b"v2")
    batches.write(store, BOOKINGS_0, b"b-3", None)  # deleted: a tombstone
    assert backlog.records == 3
    assert len(writes.snapshot()) == 2, "tracked from the first write, before it leaves"
    await batches.send_open(producer)
    assert producer.records_sent() == [
        (BOOKINGS_0, [(b"b-1", b"v2"), (b"b-3", None)]),
        (BOOKINGS_1, [(b"b-2", b"v1")]),
    ]
    assert writes.snapshot(), "sent, not acknowledged"
    producer.next_offset[BOOKINGS_0] = 40
    producer.acknowledge_all()
    await settled()
    assert writes.snapshot() == []
    assert store.offsets == {BOOKINGS_0: 41, BOOKINGS_1: 0}, (
        "the offset of each batch's last record"
    )
    assert backlog.records == 0


async def test_a_batch_larger_than_a_record_batch_leaves_in_order_in_several() -> None:
    writes, store, _, batches = changelog_batches()
    producer = FakeProducer(capacity=2)
    for n in range(5):
        batches.write(store, BOOKINGS_0, b"b-%d" % n, b"v")
    await batches.send_open(producer)
    assert [[key for key, _ in records] for _, records in producer.records_sent()] == [
        [b"b-0", b"b-1"],
        [b"b-2", b"b-3"],
        [b"b-4"],
    ]
    producer.acknowledge_all()
    await settled()
    assert store.offsets == {BOOKINGS_0: 4}
    assert writes.snapshot() == []


async def test_writes_made_while_a_batch_is_on_its_way_open_the_next_one() -> None:
    _, store, _, batches = changelog_batches()
    producer = FakeProducer()
    batches.write(store, BOOKINGS_0, b"b-1", b"v1")
    await batches.send_open(producer)
    batches.write(store, BOOKINGS_0, b"b-1", b"v2")
    await batches.send_open(producer)
    assert producer.records_sent() == [
        (BOOKINGS_0, [(b"b-1", b"v1")]),
        (BOOKINGS_0, [(b"b-1", b"v2")]),
    ]


async def test_a_failed_batch_writes_again_the_keys_no_newer_write_followed() -> None:
    writes, store, backlog, batches = changelog_batches()
    producer = FakeProducer()
    batches.write(store, BOOKINGS_0, b"b-1", b"v1")
    batches.write(store, BOOKINGS_0, b"b-2", b"v1")
    await batches.send_open(producer)
    batches.write(store, BOOKINGS_0, b"b-2", b"v2")  # newer than the batch on its way
    await batches.send_open(producer)
    producer.sent[0][2].set_exception(KafkaTimeoutError())
    await settled()
    assert writes.resent == 1
    await batches.send_open(producer)
    assert producer.records_sent()[-1] == (BOOKINGS_0, [(b"b-1", b"v1")])
    producer.acknowledge_all()
    await settled()
    assert writes.snapshot() == []
    assert backlog.records == 0


async def test_after_the_producer_stopped_nothing_is_sent_again() -> None:
    writes, store, backlog, batches = changelog_batches()
    batches.write(store, BOOKINGS_0, b"b-1", b"v1")
    (write,) = writes.snapshot()
    await batches.send_open(None)
    await settled()
    assert write.cancelled()
    assert writes.snapshot() == []
    assert writes.resent == 0
    assert backlog.records == 0


@pytest.mark.parametrize("error", [KafkaTimeoutError(), KafkaConnectionError("broker gone")])
async def test_a_batch_that_cannot_be_queued_fails_and_is_written_again(error: Exception) -> None:
    class Refusing(FakeProducer):
        async def send_batch(self, batch: Builder, topic: str, *, partition: int) -> Any:
            raise error

    writes, store, _, batches = changelog_batches()
    batches.write(store, BOOKINGS_0, b"b-1", b"v1")
    await batches.send_open(Refusing())
    await settled()
    assert writes.resent == 1
    producer = FakeProducer()
    await batches.send_open(producer)
    assert producer.records_sent() == [(BOOKINGS_0, [(b"b-1", b"v1")])]


async def test_an_error_that_is_not_the_broker_s_is_raised_not_written_again() -> None:
    class Broken(FakeProducer):
        async def send_batch(self, batch: Builder, topic: str, *, partition: int) -> Any:
            raise TypeError("a bug")

    writes, store, _, batches = changelog_batches()
    batches.write(store, BOOKINGS_0, b"b-1", b"v1")
    with pytest.raises(TypeError):
        await batches.send_open(Broken())
    assert writes.resent == 0
    assert writes.snapshot(), "not acknowledged: no commit goes past it"
