"""Faust's consumer, refusing acknowledgements that would commit past unprocessed records.

Faust 0.15.3, on a rebalance, pops each revoked partition's committed offset and then
keeps acknowledging records of the old assignment: records fetched before the
rebalance that its stream skips while the flow is suspended (it acks what it skips)
and the rest of a batch an agent was still working on. With no committed offset to
compare against, `Consumer.ack` accepts them all, and they stay in its acked list when
the partition comes back to the same worker. The next commit then moves past records
that were skipped, not processed. Seen in
`tests/integration/test_pipeline.py::test_a_worker_joining_while_the_fold_catches_up_loses_nothing`
(a long catch-up batch widens the window): a run of a partition's events was never
folded (docs/performance.md, "Losses found on the way").

`Consumer` here acknowledges a record only while the flow is active and the record
belongs to the current consumer generation. A refused record is not committed, so
after the rebalance its partition's owner reads it again from the committed offset
and folds it (the fold counts an event once, so a second pass is harmless).
"""

from __future__ import annotations

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import Message
from faust.types.tuples import ack_lock
from mode.utils.futures import notify


def ack_counts(
    *, message_generation: int | None, current_generation: int, flow_active: bool
) -> bool:
    """Whether an acknowledgement may move the committed offset (a record without a
    generation did not come from this consumer's fetches: Faust's rules apply)."""
    return flow_active and message_generation in (None, current_generation)


class Consumer(faust_aiokafka.Consumer):
    def ack(self, message: Message) -> bool:
        if ack_counts(
            message_generation=message.generation_id,
            current_generation=self.app.consumer_generation_id,
            flow_active=self.app.flow_control.is_active(),
        ):
            return bool(super().ack(message))
        with ack_lock:
            # Done with as far as waiters are concerned, but not committed.
            message.acked = True
            self._unacked_messages.discard(message)
            notify(self._waiting_for_ack)
        return False
