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

**A seek is read from its offset.** Faust counts a jump in a partition's offsets as a
gap (records the log does not hold: compaction, transaction markers) and commits gaps
as if acked. `perform_seek` (Faust's "Seek stream partitions to committed offsets",
after every rebalance) sets the read offset back to the committed offset when its
thread call returns; records the fetcher drained meanwhile, after the thread's seek,
leave the broker position beyond it. The next record then "jumps", and the records
between the committed offset and it became a gap and were committed, whether or not
the agent had folded them (chaos seed 5 lost ~220 `booking-events` records so;
docs/performance.md, "Chaos"). Counting no gap there kept them from being committed,
but nobody read them again before the next rebalance: chaos still lost Events now and
then (seed 2 on 2026-12-06: 14 lost, 9 stale), and a diagnostic run found the first
record after a seek up to 445 records past it. Now the first record of a partition
after a seek, if it comes past the seek's offset, makes the drain seek there once
more (`_seek_again`) and leave the rest of that fetch of the partition; records read
twice are harmless (the fold counts an event once, the sink writes a version once).
Past the offset again after that second seek, the log itself holds nothing in
between (retention, compaction): a gap from the seek's offset. A gap is recorded from
the committed offset itself, the next offset to read (Faust's `_add_gap` starts after
it), and ends before the record that revealed it (Faust's includes that record, which
the agent may not have acked yet).

**Room in a stream buffer.** The drain hands a stream a whole fetch at once (~5,300
records in a backfill), more than Faust's stream buffer holds (`stream_buffer_maxsize`,
4,096). Past the buffer's pressure mark (4/5 full) Faust takes the partition out of
the next fetch (`Consumer.on_buffer_full`), and aiokafka then answered the other
partitions only at the fetch's timeout: the bare loop on this consumer ran 8,100 ev/s
against Faust's own 13,000, whose per-record loop never fills a buffer. A record now
waits until its stream's buffer is below the mark (`_room_for`); a stream that reads
nothing for `ROOM_PATIENCE_S` (a sink holding its batch through an outage) gets the rest
of that fetch at once, and Faust's own rule takes the partition out of the next.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from faust.transport.consumer import CONSUMER_FETCHING, ThreadDelegateConsumer
from faust.types import TP, Message
from mode import ServiceT

# Faust's: give the event loop a turn every this many records.
YIELD_EVERY = 100
# How long a record waits for room in its stream's buffer, and how often it looks.
ROOM_PATIENCE_S = 1.0
ROOM_POLL_S = 0.002


class DrainPerFetch(ThreadDelegateConsumer):
    """Mixin for Faust's threaded consumer (the aiokafka one's base): fetches of a
    frozen partition set, `_drain_messages` with one flow race per fetch, seeks read
    from their offset, and records that wait for room in their stream's buffer."""

    # Partitions whose read offset a seek has just set: their next record counts no gap.
    _seeked: set[TP] | None = None
    # Partitions seeked once more since that seek (`_seek_again`).
    _seeked_again: set[TP] | None = None

    async def perform_seek(self) -> None:
        await super().perform_seek()
        # Same event-loop step as Faust's read-offset update: no delivery in between.
        self._seeked = set(self._read_offset)
        self._seeked_again = set()

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
        # Partitions whose streams kept no room this fetch: Faust's way for the rest of it.
        impatient: set[TP] = set()
        # Partitions seeked again in this fetch: the rest of their records lie beyond.
        seeking_again: set[TP] = set()
        for tp, message in fetched:
            since_yield += 1
            if since_yield > YIELD_EVERY:
                await asyncio.sleep(0)
                since_yield = 0
            if not self._deliverable(message):
                return  # a rebalance began: the rest of the fetch is abandoned
            if tp in seeking_again:
                continue
            offset = message.offset
            last_read = read_offset[tp]
            if last_read is not None and offset < last_read:
                self.log.dev("DROPPED MESSAGE ROFF %r", offset)  # read before a seek back
                continue
            seeked = self._seeked
            if seeked is not None and tp in seeked:
                # The read offset is the seek's, not a delivery's: no gap counted from it.
                if last_read is not None and offset > last_read:
                    if await self._seek_again(tp, last_read, offset):
                        seeking_again.add(tp)
                        continue
                    if acks_enabled_for(message.topic):
                        await self._add_gap(tp, last_read, offset - 1)
                seeked.discard(tp)
            elif (
                last_read is not None and offset - last_read > 1 and acks_enabled_for(message.topic)
            ):
                await self._add_gap(tp, last_read + 1, offset - 1)
            if tp not in impatient:
                if not await self._room_for(tp):
                    impatient.add(tp)
                if not self._deliverable(message):
                    return  # a rebalance began while it waited
            if self._commit_every is not None and self._n_acked >= self._commit_every:
                self._n_acked = 0
                await self.commit()
            await callback(message)
            if not self._deliverable(message):
                return  # handed on as a rebalance began: read again, not counted as read
            read_offset[tp] = offset

    async def _seek_again(self, tp: TP, seek_offset: int, offset: int) -> bool:
        """The first record after a seek came past the seek's offset: seek there once
        more (this module's docstring, "A seek is read from its offset"). False when
        this seek was asked again already: the log itself holds nothing in between."""
        seeked_again = self._seeked_again
        if seeked_again is None or tp in seeked_again:
            return False
        seeked_again.add(tp)
        self.log.info(
            "%r: the first record after the seek to %d is %d; seeking to %d again",
            tp,
            seek_offset,
            offset,
            seek_offset,
        )
        try:
            await self.seek_wait({tp: seek_offset})
        except Exception as exc:  # a rebalance took it: the next one seeks anew
            seeked_again.discard(tp)
            self.log.warning("%r: seeking to %d again failed: %r", tp, seek_offset, exc)
        # The thread set it too; here it is set on the event loop, as the drain reads it.
        self._read_offset[tp] = seek_offset
        return True

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        """Faust's: offsets `offset_from`..`offset_to` (both included) are not in the
        log, and commit as if acknowledged. Faust clamps them to after the committed
        offset, which is the next offset to read: a gap starting there would then keep
        its first offset unacknowledged and hold every commit (streams/transport/acks.py
        `holds_commit`)."""
        committed = self._committed_offset[tp]
        if committed is not None:
            offset_from = max(offset_from, committed)
        if offset_from <= offset_to:
            self._gap[tp].addi(offset_from, offset_to + 1)
            await asyncio.sleep(0)

    async def _room_for(self, tp: TP) -> bool:
        """Wait until every stream buffer `tp`'s records go to is below Faust's
        pressure mark; False if one stayed above it for `ROOM_PATIENCE_S`, or a
        rebalance began while it waited."""
        channels = self.app.topics._tp_index.get(tp)  # type: ignore[attr-defined]
        if not channels:
            return True
        deadline: float | None = None
        for channel in channels:
            queue = channel.queue
            while queue.qsize() >= queue.pressure_high_size:
                now = time.monotonic()
                if deadline is None:
                    deadline = now + ROOM_PATIENCE_S
                elif now >= deadline or self.suspend_flow.is_set():
                    return False
                await asyncio.sleep(ROOM_POLL_S)
        return True

    def _deliverable(self, message: Message) -> bool:
        """Whether no rebalance began since `message` was fetched (this module's
        docstring, "A fetch outlives no rebalance")."""
        return (
            not self.suspend_flow.is_set()
            and message.generation_id == self.app.consumer_generation_id
        )
