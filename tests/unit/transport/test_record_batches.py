"""The app's own records in batches (streams/transport/record_batches.py): one record
batch per partition and send, in order, with their headers; each record told its
partition and offset once the broker has it; a failed batch logged and counted, its
callbacks not run; the backlog the stream waits on counts until the broker answers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError
from faust.types import TP

from streams.transport.record_batches import Backlog, RecordBatches, record_offsets
from tests.unit.transport.fake_aiokafka import Builder, FakeProducer, Metadata, settled

P0, P1 = TP("activity-projections", 0), TP("activity-projections", 1)
HEADERS = [("app_version", b"3")]


def batches_with_backlog(bound: int = 100) -> tuple[RecordBatches, Backlog, list[bool]]:
    backlog, opened = Backlog(bound), []
    return RecordBatches(backlog, lambda: opened.append(True)), backlog, opened


async def test_records_leave_as_one_batch_per_partition_and_learn_their_offsets() -> None:
    batches, backlog, opened = batches_with_backlog()
    offsets: list[tuple[bytes, int, int]] = []

    def told(key: bytes) -> Callable[[int, int], None]:
        return lambda partition, offset: offsets.append((key, partition, offset))

    for key, tp in ((b"b-1", P0), (b"b-2", P1), (b"b-3", P0), (b"b-1", P0)):
        batches.send(tp, key, b"v-" + key, HEADERS, told(key))
    assert opened == [True, True], "the sender woken once per batch opened"
    assert backlog.records == 4
    producer = FakeProducer()
    await batches.send_open(producer)
    assert producer.records_sent() == [
        (P0, [(b"b-1", b"v-b-1"), (b"b-3", b"v-b-3"), (b"b-1", b"v-b-1")]),
        (P1, [(b"b-2", b"v-b-2")]),
    ], "in the order sent; no record folded into another"
    assert all(headers == HEADERS for _, records, _ in producer.sent for *_, headers in records)
    assert offsets == [], "told only once the broker has it"
    producer.next_offset[P0] = 500
    producer.acknowledge_all()
    await settled()
    assert offsets == [(b"b-1", 0, 500), (b"b-3", 0, 501), (b"b-1", 0, 502), (b"b-2", 1, 0)]
    assert backlog.records == 0
    assert not batches.has_open


@pytest.mark.parametrize("how", ["the broker refused it", "it could not be queued"])
async def test_a_failed_batch_is_counted_and_its_records_are_not_told_an_offset(
    how: str,
) -> None:
    class Refusing(FakeProducer):
        async def send_batch(self, batch: Builder, topic: str, *, partition: int) -> Any:
            raise KafkaTimeoutError()

    batches, backlog, _ = batches_with_backlog()
    told: list[int] = []
    batches.send(P0, b"b-1", b"v", HEADERS, lambda _p, o: told.append(o))
    producer = FakeProducer() if how.startswith("the broker") else Refusing()
    await batches.send_open(producer)
    if how.startswith("the broker"):
        producer.sent[0][2].set_exception(KafkaTimeoutError())
    await settled()
    assert told == []
    assert batches.failed == 1
    assert backlog.records == 0


async def test_an_error_that_is_not_the_broker_s_is_raised() -> None:
    class Broken(FakeProducer):
        async def send_batch(self, batch: Builder, topic: str, *, partition: int) -> Any:
            raise TypeError("a bug")

    batches, _, _ = batches_with_backlog()
    batches.send(P0, b"b-1", b"v")
    with pytest.raises(TypeError):
        await batches.send_open(Broken())


async def test_nothing_is_sent_once_the_producer_stopped() -> None:
    batches, backlog, _ = batches_with_backlog()
    batches.send(P0, b"b-1", b"v")
    await batches.send_open(None)
    assert batches.failed == 1
    assert backlog.records == 0


async def test_the_stream_waits_while_the_backlog_is_over_its_bound() -> None:
    batches, backlog, _ = batches_with_backlog(bound=1)
    batches.send(P0, b"b-1", b"v")
    batches.send(P0, b"b-2", b"v")
    producer = FakeProducer()
    await batches.send_open(producer)
    waiting = asyncio.ensure_future(backlog.wait_until_ebb())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    producer.acknowledge_all()
    await asyncio.wait_for(waiting, 1)


@pytest.mark.parametrize(
    ("bases", "counts", "offsets"),
    [([7], [1], [7]), ([40, 70], [2, 1], [40, 41, 70]), ([0, 3], [3, 2], [0, 1, 2, 3, 4])],
)
def test_each_record_s_offset_comes_from_its_batch_s_base_offset(
    bases: list[int], counts: list[int], offsets: list[int]
) -> None:
    assert record_offsets([Metadata(base) for base in bases], counts) == offsets
