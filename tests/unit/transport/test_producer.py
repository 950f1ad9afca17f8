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


async def test_the_stream_waits_while_too_many_changelog_writes_are_unacknowledged() -> None:
    made = producer.Producer(app.transport)
    assert made.changelog_batches.max_records == producer.MAX_UNACKNOWLEDGED
    made.changelog_batches.unsettled = producer.MAX_UNACKNOWLEDGED + 1
    waiting = asyncio.ensure_future(made.buffer.wait_until_ebb())  # what the conductor calls
    await asyncio.sleep(0.05)
    assert not waiting.done()
    waiting.cancel()
    made.changelog_batches.unsettled = producer.MAX_UNACKNOWLEDGED
    await asyncio.wait_for(made.buffer.wait_until_ebb(), 1)
