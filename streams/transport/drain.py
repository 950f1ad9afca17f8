"""Faust's fetch-and-deliver loop: a fetch that cannot lose records, and one race per fetch.

**The fetch.** Faust keeps the partitions it wants records of (the assignment minus
paused ones) in one mutable set and hands that very set to its consumer thread, where
aiokafka reads it when records arrive. A pause in between (Faust pauses the changelog
partitions the moment table recovery ends) can leave it empty, and aiokafka reads an
empty set as "every partition": it hands over, and moves its position past, records
of partitions Faust has paused, and Faust drops them because they are paused. A
restarted worker then folds nothing: its `booking-events` records are fetched during
recovery and dropped, and with no committed offset to seek back to, never read again
(`test_worker_killed_mid_stream_recovers_its_tables` caught it about 1 run in 15;
docs/performance.md, "Losses found on the way"). `DrainPerFetch._getmany`
hands the thread a frozen copy taken when the fetch starts, so aiokafka returns only
records of partitions Faust asked for.

**The race.** Faust 0.15.3's `Consumer._drain_messages` hands each fetched record to
the conductor with `Service.wait_first(callback(message), suspend_flow.wait())`, so
that a record stuck behind a full stream buffer is abandoned when a rebalance
suspends the flow.
`wait_first` creates four tasks and an `asyncio.wait` for every record: ~45 µs,
about a quarter of Faust's whole per-record cost on this machine and more than our
fold spends on an event (docs/performance.md, "Faust's delivery loop").

`DrainPerFetch._drain_messages` is the same loop with the race around the delivery
of a whole fetch: the fetch's records are delivered in one task, raced once against
the flow suspension. Nothing else changes: the read offsets, gap tracking, periodic
commits and yields are Faust's, record by record. If the flow is suspended
mid-fetch, the rest of that fetch is abandoned, as Faust abandons each remaining
record (its `getmany` also stops yielding once the flow is inactive): the records
are not acknowledged, so after the rebalance their partition's owner reads them
again from the committed offset.

**A fetch outlives no rebalance.** `wait_first` cancels the delivery task, but a
cancellation is only seen where the task next waits, and Faust can swallow it there:
the conductor waits for the producer buffer to ebb (`ProducerBuffer.flush_atmost`, an
`asyncio.wait_for` on "a message was sent"), and Python 3.11's `wait_for` returns
normally when its inner wait completes in the same step as the cancellation. The task
then went on delivering its fetch after the rebalance, and set the partition's read
offset to its last record after `perform_seek` had set it back to the committed
offset: every record re-read below it was dropped as "read before a seek back", never
folded nor acknowledged (`test_a_worker_joining_while_the_fold_catches_up_loses_nothing`,
1 run in 8 on 2026-12-05: ~1,900 events of each partition the first worker kept). So
`_deliver` itself stops at the first record fetched before a rebalance began (the flow
suspended or a new consumer generation), and does not count as read a record whose
hand-over a rebalance interrupted.

**No gap after a seek.** Faust counts a jump in a partition's offsets as a gap (records
the log does not hold: compaction, transaction markers) and commits gaps as if acked.
`perform_seek` (Faust's "Seek stream partitions to committed offsets", after every
rebalance) sets the read offset back to the committed offset when its thread call
returns; records the fetcher drained meanwhile, after the thread's seek, leave the
broker position beyond it. The next record then "jumps", and the records between the
committed offset and it become a gap and are committed, whether or not the agent has
folded them: a worker taking a partition over resumes at the head, and its records
are committed without ever being folded (chaos seed 5 lost ~220 `booking-events`
records so; docs/performance.md, "Chaos"). Here the first record of each partition after a seek
never counts a gap: at worst the commit waits for records the agent still acks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, cast

from faust.transport.consumer import CONSUMER_FETCHING, ThreadDelegateConsumer
from faust.types import TP, Message
from mode import ServiceT

# Faust's: give the event loop a turn every this many records.
YIELD_EVERY = 100


class DrainPerFetch(ThreadDelegateConsumer):
    """Mixin for Faust's threaded consumer (the aiokafka one's base): fetches of a
    frozen partition set, `_drain_messages` with one flow race per fetch, and no gap
    counted across a seek."""

    # Partitions whose read offset a seek has just set: their next record counts no gap.
    _seeked: set[TP] | None = None

    async def perform_seek(self) -> None:
        await super().perform_seek()
        # Same event-loop step as Faust's read-offset update: no delivery in between.
        self._seeked = set(self._read_offset)

    async def _getmany(self, active_partitions: set[TP] | None, timeout: float) -> Any:  # noqa: ASYNC109
        if active_partitions is None:  # a client-only app: every assigned partition
            return await super()._getmany(None, timeout)
        wanted = frozenset(active_partitions)
        if not wanted:
            return {}  # never ask aiokafka with an empty set: it means "all"
        return await super()._getmany(cast(set[TP], wanted), timeout)

    async def _drain_messages(self, fetcher: ServiceT) -> None:
        # Runs for the life of the consumer (started by Faust's Fetcher service).
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set  # type: ignore[attr-defined]
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                # Fetching waits inside getmany while the flow is suspended; once it
                # returns, the flow cannot change until this task yields.
                fetched = [item async for item in self.getmany(timeout=1.0)]
                await self.sleep(0)  # as Faust: getmany may return at once, in a loop
                if fetched and not self.should_stop:
                    await self.wait_first(self._deliver(fetched), self.suspend_flow.wait())
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _deliver(self, fetched: Sequence[tuple[TP, Message]]) -> None:
        """Faust's per-record body of the drain loop, for one fetch."""
        callback: Callable[[Message], Any] = self.callback
        read_offset = self._read_offset
        acks_enabled_for = self.app.topics.acks_enabled_for
        since_yield = 0
        for tp, message in fetched:
            since_yield += 1
            if since_yield > YIELD_EVERY:
                await asyncio.sleep(0)
                since_yield = 0
            if not self._deliverable(message):
                return  # a rebalance began: the rest of the fetch is abandoned
            offset = message.offset
            last_read = read_offset[tp]
            if last_read is not None and offset < last_read:
                self.log.dev("DROPPED MESSAGE ROFF %r", offset)  # read before a seek back
                continue
            seeked = self._seeked
            if seeked is not None and tp in seeked:
                seeked.discard(tp)  # read offset from a seek, not from a delivery
            elif last_read and offset - last_read > 1 and acks_enabled_for(message.topic):
                await self._add_gap(tp, last_read + 1, offset)
            if self._commit_every is not None and self._n_acked >= self._commit_every:
                self._n_acked = 0
                await self.commit()
            await callback(message)
            if not self._deliverable(message):
                return  # handed on as a rebalance began: read again, not counted as read
            read_offset[tp] = offset

    def _deliverable(self, message: Message) -> bool:
        """Whether no rebalance began since `message` was fetched (this module's
        docstring, "A fetch outlives no rebalance")."""
        return (
            not self.suspend_flow.is_set()
            and message.generation_id == self.app.consumer_generation_id
        )
