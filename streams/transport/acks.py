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
"""

from __future__ import annotations

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import Message
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

from streams.runtime.ownership import is_current


class Consumer(faust_aiokafka.Consumer):
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
