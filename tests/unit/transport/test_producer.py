"""The app's producer (streams/transport/producer.py): both broker profiles' transports
make it; the stream waits (Faust's conductor) while its changelog writes pile up; a
record is placed in its key's partition once the topic's partitions are known."""

from __future__ import annotations

import asyncio

import pytest

from streams.transport import producer, tansu
from streams.transport.consumer import Transport
from streams.worker.app import app
from tests.unit.transport.fake_aiokafka import FakeProducer


@pytest.mark.parametrize("transport", [Transport, tansu.Transport])
def test_both_transports_make_the_app_s_producer(transport: type[Transport]) -> None:
    assert transport.Producer is producer.Producer


async def test_the_stream_waits_while_too_many_records_are_unacknowledged() -> None:
    made = producer.Producer(app.transport)
    assert made.backlog.bound == producer.MAX_UNACKNOWLEDGED
    made.backlog.add(producer.MAX_UNACKNOWLEDGED + 1)
    waiting = asyncio.ensure_future(made.buffer.wait_until_ebb())  # what the conductor calls
    await asyncio.sleep(0.05)
    assert not waiting.done()
    made.backlog.settle(1)
    await asyncio.wait_for(waiting, 1)


async def test_a_record_waits_for_its_topic_s_partitions_before_it_is_placed() -> None:
    # A worker's first projection: the producer's metadata did not hold the topic yet,
    # and placing the record failed (its fold was dead-lettered as an internal error).
    made = producer.Producer(app.transport)
    made._producer = FakeProducer()
    await made.send_record("activity-projections", b"b-1", b"value")
    await made.send_open()
    [(tp, records)] = made._producer.records_sent()
    assert tp.topic == "activity-projections"
    assert records == [(b"b-1", b"value")]
