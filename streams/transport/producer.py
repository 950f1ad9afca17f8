"""The app's Faust producer: Faust's aiokafka producer, with room for a batch's writes.

A table write reaches its changelog through Faust's producer buffer (`send_soon`),
which sends its records one by one. Before handing the stream each record, Faust's
conductor waits for the buffer to ebb (`ProducerBuffer.wait_until_ebb`): above
`max_messages` (100) it waits for a hundred sends, one `asyncio.wait_for` each, and
logs "producer buffer full" at WARNING. A fold batch writes a row or two per booking
it changes (a catch-up batch: thousands), so the stream waited at nearly every record
after a batch, and a live worker logged hundreds of these warnings a minute.

`BUFFER_MAX_MESSAGES` gives the buffer room for a catch-up batch's writes before the
stream waits; the buffer still bounds what a producer that cannot send (a broker
down) lets pile up. The commit guard (streams/transport/acks.py) is unchanged: a
commit still waits for every changelog write made before it.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

# Changelog writes queued before the stream waits for them to go out (Faust: 100).
BUFFER_MAX_MESSAGES = 10_000


class Producer(faust_aiokafka.Producer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.buffer.max_messages = BUFFER_MAX_MESSAGES
