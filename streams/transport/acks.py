"""Faust's consumer, acknowledging only current records (the ack guard).

`Consumer.ack` lets a record's acknowledgement move the committed offset only when the
record is current (streams/runtime/ownership.py: the flow is active and the record was
fetched in this consumer generation). Any other record is marked done for Faust's
waiters and not committed, so after the rebalance its partition's owner reads it again
from the committed offset and folds it (the fold counts an event once, so a second pass
is harmless).

Why: Faust 0.15.3, on a rebalance, pops each revoked partition's committed offset and
then keeps acknowledging records of the old assignment: records fetched before the
rebalance that its stream skips while the flow is suspended (it acks what it skips)
and the rest of a batch an agent was still working on. With no committed offset to
compare against, Faust's `Consumer.ack` accepts them all, and they stay in its acked
list when the partition comes back to the same worker; the next commit would move past
records that were skipped, not processed (docs/performance.md, "Losses found on the
way"; tests/integration/worker/test_pipeline.py,
`test_a_worker_joining_while_the_fold_catches_up_loses_nothing`).

The commit guard: `Consumer._commit_offsets` commits only once Faust's producer buffer
is empty. Table writes reach their changelog through that buffer (`send_soon`), and
Faust flushes it before a commit, but its flush returns as soon as no message went out
for 0.1 s (`ProducerBuffer.flush_atmost`): a send held up longer (metadata of a new
leader, a full accumulator) left changelog writes queued while the offsets of the
events behind them were committed, and a worker stopped then dropped them (chaos seed
37 on 2026-12-05: a booking's state lost, its next event folded onto nothing;
docs/performance.md, "Losses found on the way"). `drained` waits until the buffer is
empty; when it cannot be (the producer stopping, or still not empty after
`DRAIN_PATIENCE_S`) nothing is committed, and the partition's next owner reads those
events again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

from streams.runtime.ownership import is_current

log = logging.getLogger(__name__)

DRAIN_PATIENCE_S = 30.0


class Buffer(Protocol):
    """What the commit guard reads of Faust's `ProducerBuffer`."""

    @property
    def size(self) -> int: ...

    @property
    def state(self) -> str: ...

    async def flush(self) -> None: ...


async def drained(
    buffer: Buffer,
    patience_s: float = DRAIN_PATIENCE_S,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Whether `buffer` is empty, waiting while it drains; False when it cannot be: the
    producer is not running, or messages are still queued after `patience_s`."""
    deadline = clock() + patience_s
    while buffer.size:
        if buffer.state != "running" or clock() >= deadline:
            return False
        try:
            await buffer.flush()  # returns after a 0.1 s lull, maybe not yet empty
        except RuntimeError:  # "Cannot flush: Producer not Running": stopped meanwhile
            return False
    return True


class Consumer(faust_aiokafka.Consumer):
    async def _commit_offsets(
        self, offsets: Mapping[TP, int], start_new_transaction: bool = True
    ) -> bool:
        # The commit guard (this module's docstring): nothing is committed past table
        # writes still queued for their changelog.
        buffer = self.app.producer.buffer
        if not await drained(buffer):
            log.warning(
                "commit skipped: %d writes still queued in the producer (%s); the "
                "partitions' next owner reads their events again",
                buffer.size,
                buffer.state,
            )
            return False
        return bool(
            await super()._commit_offsets(offsets, start_new_transaction=start_new_transaction)
        )

    def ack(self, message: Message) -> bool:
        # A current record (streams/runtime/ownership.py): the flow active, and fetched
        # in this consumer generation.
        if is_current(message, self.app):
            return bool(super().ack(message))
        with ack_lock:
            # Done with as far as waiters are concerned, but not committed.
            message.acked = True
            self._unacked_messages.discard(message)
            notify(self._waiting_for_ack)
        return False
