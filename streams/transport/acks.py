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

The commit guard: `Consumer._commit_offsets` commits only once every table changelog
write made before it is acknowledged by the broker. Table writes reached their changelog
through Faust's producer buffer (`send_soon`), and Faust flushes it before a commit, but
`ProducerBuffer.flush` returns as soon as no message went out for 0.1 s, and a send
held up longer (metadata of a new leader, a full accumulator) left changelog writes
queued while the offsets of the events behind them were committed; a worker stopped
then dropped them (chaos seed 37 on 2026-12-05: a booking's state lost, its next event
folded onto nothing; docs/performance.md, "Losses found on the way"). The writes (now
batches, streams/transport/changelog.py) are tracked from their first record
(streams/transport/tables.py `CHANGELOG_WRITES`); `acknowledged` waits for those of
the moment. When they cannot all be acknowledged (one
failed, the producer stopped, or `COMMIT_PATIENCE_S` passed) nothing is committed, and
the partitions' next owner reads those events again.

The head rule: `Consumer._new_offset` commits nothing while the record at the committed
offset (the next offset to read) is neither acknowledged nor in a gap. Faust 0.15.3
refuses only a hole of two or more records there, and commits past a single one
(faust-streaming#606, open): the record a stream still works on, or one a seek left
unread (streams/transport/drain.py, "A seek is read from its offset").

The commit cap: records the sink holds unwritten after Faust has acknowledged them (an
org's lane waiting out that org's pause, streams/worker/pipeline/org_sinks.py) are
registered with `hold_commits`; no partition's commit goes past the lowest offset held
in it, so a worker killed with them in hand leaves them to be read again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

from streams.runtime.ownership import is_current
from streams.transport.tables import CHANGELOG_WRITES

log = logging.getLogger(__name__)

COMMIT_PATIENCE_S = 30.0
POLL_S = 0.1


async def acknowledged(
    writes: Sequence[asyncio.Future[Any]],
    running: Callable[[], bool],
    patience_s: float = COMMIT_PATIENCE_S,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Whether every one of `writes` is acknowledged, waiting while they are sent; False
    when one failed or was cancelled, `running()` turns false, or `patience_s` passes."""
    deadline = clock() + patience_s
    waiting = [write for write in writes if not write.done()]
    while waiting:
        if not running() or clock() >= deadline:
            return False
        await asyncio.wait(waiting, timeout=POLL_S)
        waiting = [write for write in waiting if not write.done()]
    return not any(write.cancelled() or write.exception() is not None for write in writes)


def holds_commit(committed: int, lowest_acked: int, gap_begins: Sequence[int]) -> bool:
    """Whether the record at `committed` (the next offset to read) is neither
    acknowledged nor in a gap, so no commit may pass it (the head rule).

    >>> holds_commit(2585, 2585, [])
    False
    >>> holds_commit(2585, 2586, [])  # Faust commits 2590 here (faust-streaming#606)
    True
    >>> holds_commit(2585, 2590, [2585])  # 2585..2589 are not in the log
    False
    """
    return min([lowest_acked, *gap_begins]) > committed


# Where the app tells the commit cap which records it holds: each gives, per partition,
# the lowest offset held unwritten.
_HOLDERS: list[Callable[[], Mapping[TP, int]]] = []


def hold_commits(holder: Callable[[], Mapping[TP, int]]) -> None:
    """Register `holder`: no commit goes past the offsets it names (the commit cap)."""
    _HOLDERS.append(holder)


def capped(offsets: Mapping[TP, int], held: Sequence[Mapping[TP, int]]) -> dict[TP, int]:
    """`offsets` to commit (each the next offset to read), none past a held record.

    >>> tp = TP("activity-projections", 0)
    >>> capped({tp: 120}, [{tp: 97}])
    {TP(topic='activity-projections', partition=0): 97}
    """
    result = dict(offsets)
    for holder in held:
        for tp, lowest in holder.items():
            if tp in result and lowest < result[tp]:
                result[tp] = lowest
    return result


class Consumer(faust_aiokafka.Consumer):
    async def _commit_offsets(
        self, offsets: Mapping[TP, int], start_new_transaction: bool = True
    ) -> bool:
        # The commit guard (this module's docstring): nothing is committed past table
        # writes the broker has not acknowledged.
        writes = CHANGELOG_WRITES.snapshot()
        producer = self.app.producer
        if not await acknowledged(writes, lambda: producer.state == "running"):
            log.warning(
                "commit skipped: %d of %d table changelog writes not acknowledged; the "
                "partitions' next owner reads their events again",
                sum(
                    not write.done() or write.cancelled() or write.exception() is not None
                    for write in writes
                ),
                len(writes),
            )
            return False
        # The commit cap (this module's docstring): records the sink still holds are read
        # again by the partition's next owner.
        offsets = capped(offsets, [holder() for holder in _HOLDERS])
        return bool(
            await super()._commit_offsets(offsets, start_new_transaction=start_new_transaction)
        )

    def _new_offset(self, tp: TP) -> int | None:
        # The head rule (this module's docstring): nothing is committed while the record
        # at the committed offset is neither acknowledged nor a gap.
        acked = self._acked[tp]
        committed = self._committed_offset[tp]
        if acked and committed is not None:
            gap = self._gap[tp]
            begins = [interval.begin for interval in gap.overlap(0, max(acked))] if gap else []
            if holds_commit(committed, min(acked), begins):
                return None
        offset = super()._new_offset(tp)
        return None if offset is None else int(offset)

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
