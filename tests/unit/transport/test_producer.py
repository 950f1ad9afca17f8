"""The app's producer (streams/transport/producer.py): both broker profiles' transports
make it; the stream waits (Faust's conductor) while its changelog writes pile up."""

from __future__ import annotations

import asyncio

import pytest

from streams.transport import producer, tansu
from streams.transport.consumer import Transport
from streams.worker.app import app


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
