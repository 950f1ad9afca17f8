"""The app's producer (streams/transport/producer.py): both broker profiles' transports
make it, with room for a fold batch's table writes before the stream waits."""

from __future__ import annotations

import pytest

from streams.transport import producer, tansu
from streams.transport.consumer import Transport
from streams.worker.app import app


@pytest.mark.parametrize("transport", [Transport, tansu.Transport])
def test_both_transports_make_the_app_s_producer(transport: type[Transport]) -> None:
    assert transport.Producer is producer.Producer


def test_the_stream_waits_only_past_a_catch_up_batch_s_writes() -> None:
    buffer = app.producer.buffer
    assert isinstance(app.producer, producer.Producer)
    assert buffer.max_messages == producer.BUFFER_MAX_MESSAGES > 100  # Faust's own: 100
