"""The drain loop with one flow race per fetch (streams/transport/drain.py), on scripted fetches."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP
from intervaltree import IntervalTree
from mode import Service
from mode.utils.locks import Event

from streams.transport.drain import DrainPerFetch

TOPIC = "booking-events"
P0, P1 = TP(TOPIC, 0), TP(TOPIC, 1)

Record = tuple[TP, SimpleNamespace]


def records(tp: TP, *offsets: int, generation: int = 1) -> list[Record]:
    return [
        (tp, SimpleNamespace(topic=tp.topic, offset=offset, generation_id=generation))
        for offset in offsets
    ]


class ScriptedConsumer(Service):
    """What `DrainPerFetch` reads of a Faust consumer, with fetches given in advance."""

    _drain_messages = DrainPerFetch._drain_messages
    _deliver = DrainPerFetch._deliver
    _deliverable = DrainPerFetch._deliverable
    _room_for = DrainPerFetch._room_for
    _seek_again = DrainPerFetch._seek_again
    _seeked: set[TP] | None = None
    _seeked_again: set[TP] | None = None
    consumer_stopped_errors = ()

    def __init__(
        self,
        fetches: Sequence[list[Record]],
        callback: Callable[[SimpleNamespace], Awaitable[None]],
        *,
        commit_every: int | None = None,
    ) -> None:
        super().__init__()
        self.fetches = list(fetches)
        self.callback = callback
        self.suspend_flow = Event()
        self._read_offset: defaultdict[TP, int | None] = defaultdict(lambda: None)
        self._commit_every = commit_every
        self._n_acked = 0
        self.commits = 0
        self.gaps: list[tuple[TP, int, int]] = []
        self.seeks: list[dict[TP, int]] = []
        self.app = SimpleNamespace(
            topics=SimpleNamespace(acks_enabled_for=lambda topic: True, _tp_index={}),
            consumer_generation_id=1,
        )
        self.transport = SimpleNamespace(app=SimpleNamespace(should_stop=True))

    async def getmany(self, timeout: float) -> Any:  # noqa: ASYNC109  (Faust's signature)
        # A fetch resumes the flow, as Faust's does once a rebalance is over.
        self.suspend_flow.clear()
        if not self.fetches:
            self._stopped.set()
            return
        for item in self.fetches.pop(0):
            yield item

    async def _add_gap(self, tp: TP, start: int, end: int) -> None:
        self.gaps.append((tp, start, end))

    async def seek_wait(self, partitions: dict[TP, int]) -> None:
        self.seeks.append(partitions)

    async def commit(self) -> None:
        self.commits += 1


async def drain(consumer: ScriptedConsumer) -> None:
    fetcher = Service()
    await asyncio.wait_for(consumer._drain_messages(fetcher), timeout=5)


class Delivered(list[int]):
    """A `deliver` callback that keeps the offsets handed to it, in order."""

    async def __call__(self, message: SimpleNamespace) -> None:
        self.append(message.offset)


async def test_every_record_of_every_fetch_is_delivered_in_order() -> None:
    delivered = Delivered()
    fetches = [records(P0, 0, 1, 2) + records(P1, 0), records(P0, 3, 4)]
    consumer = ScriptedConsumer(fetches, delivered)
    await drain(consumer)
    assert delivered == [0, 1, 2, 0, 3, 4]
    assert consumer._read_offset[P0] == 4
    assert consumer._read_offset[P1] == 0


async def test_records_before_the_read_offset_are_dropped_and_gaps_recorded() -> None:
    delivered = Delivered()
    consumer = ScriptedConsumer([records(P0, 3, 5, 6, 9)], delivered)
    consumer._read_offset[P0] = 5  # read up to 5 before a seek back to 3
    await drain(consumer)
    assert delivered == [5, 6, 9]
    assert consumer.gaps == [(P0, 7, 8)]  # 9 itself is delivered, not a gap


async def test_a_fetch_is_abandoned_when_the_flow_is_suspended_mid_delivery() -> None:
    delivered: list[int] = []
    consumer: ScriptedConsumer

    async def deliver(message: SimpleNamespace) -> None:
        delivered.append(message.offset)
        if message.offset == 1:
            # A rebalance starts while this record waits for room in a full stream buffer.
            consumer.suspend_flow.set()
            await asyncio.Event().wait()

    consumer = ScriptedConsumer([records(P0, 0, 1, 2, 3), records(P1, 7)], deliver)
    await drain(consumer)
    assert delivered == [0, 1, 7]  # 2 and 3 were never handed on; the next fetch was
    assert consumer._read_offset[P0] == 0  # 1 never finished: not counted as read


async def test_a_delivery_that_outlives_its_cancellation_stops_at_the_rebalance() -> None:
    """The joining test's loss: the delivery task's cancellation was swallowed (Python
    3.11's `wait_for`, in Faust's producer-buffer wait), it went on after the rebalance
    and set the read offset past what the new generation re-read from the committed
    offset, so those records were dropped as already read."""
    delivered: list[tuple[int, int]] = []
    consumer: ScriptedConsumer

    async def deliver(message: SimpleNamespace) -> None:
        delivered.append((message.generation_id, message.offset))
        if (message.generation_id, message.offset) == (1, 1):
            # The rebalance: the flow stops, a new generation, the seek back to 0.
            consumer.suspend_flow.set()
            consumer.app.consumer_generation_id = 2
            consumer._read_offset[P0] = None
            with contextlib.suppress(asyncio.CancelledError):  # swallowed, as `wait_for` can
                await asyncio.sleep(0.05)

    fetches = [records(P0, 0, 1, 2, 3), records(P0, 0, 1, 2, 3, generation=2)]
    consumer = ScriptedConsumer(fetches, deliver)
    await drain(consumer)
    await asyncio.sleep(0.2)  # the first delivery task, past its swallowed cancellation
    assert delivered == [(1, 0), (1, 1), (2, 0), (2, 1), (2, 2), (2, 3)]
    assert consumer._read_offset[P0] == 3


@pytest.mark.parametrize(("commit_every", "commits"), [(None, 0), (2, 2)])
async def test_commits_every_n_acknowledged_records(commit_every: int | None, commits: int) -> None:
    consumer: ScriptedConsumer

    async def deliver_and_ack(message: SimpleNamespace) -> None:
        consumer._n_acked += 1

    consumer = ScriptedConsumer(
        [records(P0, 0, 1, 2, 3, 4)], deliver_and_ack, commit_every=commit_every
    )
    await drain(consumer)
    assert consumer.commits == commits


class ConsumerThread:
    """Stands in for Faust's consumer thread: reads the partition set only after the
    event loop has run on, as aiokafka does when records arrive."""

    def __init__(self) -> None:
        self.asked: list[set[TP] | None] = []

    async def getmany(self, active_partitions: set[TP] | None, timeout: float) -> Any:  # noqa: ASYNC109
        await asyncio.sleep(0)
        self.asked.append(None if active_partitions is None else set(active_partitions))
        return {}


class Fetching(DrainPerFetch):
    """Only `_getmany` is exercised: the rest of the consumer is not needed."""


Fetching.__abstractmethods__ = frozenset()


@pytest.mark.parametrize(
    ("active", "paused_meanwhile", "asked"),
    [
        ({P0, P1}, {P0, P1}, [{P0, P1}]),  # paused after the fetch began: still those two
        ({P0}, set(), [{P0}]),
        (set(), set(), []),  # nothing to fetch: aiokafka is not asked (empty means all)
        (None, set(), [None]),  # a client-only app fetches every assigned partition
    ],
)
async def test_a_fetch_asks_for_the_partitions_active_when_it_began(
    active: set[TP] | None, paused_meanwhile: set[TP], asked: list[set[TP] | None]
) -> None:
    consumer = Fetching.__new__(Fetching)
    consumer._thread = thread = ConsumerThread()
    fetch = asyncio.ensure_future(consumer._getmany(active, timeout=1.0))
    await asyncio.sleep(0)
    if active is not None:
        active -= paused_meanwhile  # Faust's pause_partitions mutates the same set
    assert await fetch == {}
    assert thread.asked == asked


class Seeking(DrainPerFetch):
    """`perform_seek` over Faust's own, with the thread's answer scripted."""

    async def seek_to_committed(self) -> dict[TP, int]:
        return {P0: 779, P1: 40}


Seeking.__abstractmethods__ = frozenset()


async def test_a_seek_is_read_from_its_offset() -> None:
    """Chaos seed 5: records 779..997 were drained while the seek ran (the thread had
    already seeked, so the broker position was past them), then Faust set the read
    offset back to 779; the next record, 998, "jumped", 780..997 became a gap and were
    committed unfolded. Counting no gap there (225f90b) kept them from being committed,
    but nobody folded them before the next rebalance. The first record after a seek
    past the seek's offset now seeks there once more, and the rest of that fetch of the
    partition is left for the fetch from there."""
    seeking = object.__new__(Seeking)
    seeking._read_offset = defaultdict(lambda: None)
    seeking._committed_offset = defaultdict(lambda: None)
    await seeking.perform_seek()
    assert seeking._read_offset[P0] == 779

    delivered = Delivered()
    fetches = [records(P0, 998, 999) + records(P1, 40), records(P0, 779, 780, 781, 785)]
    consumer = ScriptedConsumer(fetches, delivered)
    consumer._read_offset.update(seeking._read_offset)
    consumer._seeked, consumer._seeked_again = seeking._seeked, seeking._seeked_again
    await drain(consumer)
    assert consumer.seeks == [{P0: 779}]
    assert delivered == [40, 779, 780, 781, 785]
    assert consumer.gaps == [(P0, 782, 784)]  # only the jump after a delivered record


async def test_a_seek_answered_past_its_offset_twice_finds_a_gap_in_the_log() -> None:
    """Records the log no longer holds (retention, compaction) come past the offset
    again after the second seek: a gap from the seek's offset, committed as acked."""
    delivered = Delivered()
    consumer = ScriptedConsumer([records(P0, 998), records(P0, 998, 999)], delivered)
    consumer._read_offset[P0] = 779
    consumer._seeked, consumer._seeked_again = {P0}, set()
    await drain(consumer)
    assert consumer.seeks == [{P0: 779}]
    assert delivered == [998, 999]
    assert consumer.gaps == [(P0, 779, 997)]


class StreamBuffer:
    """What `_room_for` reads of a stream's queue: its size and Faust's pressure mark."""

    pressure_high_size = 4

    def __init__(self, size: int) -> None:
        self.size = size

    def qsize(self) -> int:
        return self.size


async def drain_into(
    buffer: StreamBuffer, fetches: Sequence[list[Record]], *, reader: Callable[[], Awaitable[Any]]
) -> tuple[ScriptedConsumer, list[tuple[int, int]]]:
    """Drain `fetches` into a stream whose buffer is `buffer`, while `reader` runs; each
    delivery is logged with the buffer's size at that moment."""
    delivered: list[tuple[int, int]] = []

    async def deliver(message: SimpleNamespace) -> None:
        delivered.append((message.offset, buffer.size))
        buffer.size += 1

    consumer = ScriptedConsumer(fetches, deliver)
    consumer.app.topics._tp_index[P0] = [SimpleNamespace(queue=buffer)]
    reading = asyncio.ensure_future(reader())
    try:
        await drain(consumer)
    finally:
        reading.cancel()
    return consumer, delivered


async def test_a_record_waits_for_room_below_the_pressure_mark_of_its_stream_buffer() -> None:
    """A whole fetch handed on at once overran Faust's stream buffer: past its pressure
    mark Faust takes the partition out of the next fetch, and aiokafka answered the
    others only at the fetch's timeout (backfill 0.5 of bare Faust). A record now waits
    until its stream has read below the mark."""
    buffer = StreamBuffer(size=6)

    async def stream_reads() -> None:
        while True:
            await asyncio.sleep(0.01)
            buffer.size = max(0, buffer.size - 1)

    _, delivered = await drain_into(buffer, [records(P0, 0, 1, 2, 3, 4, 5)], reader=stream_reads)
    assert [offset for offset, _ in delivered] == [0, 1, 2, 3, 4, 5]
    assert all(size < StreamBuffer.pressure_high_size for _, size in delivered)


async def test_a_stream_that_reads_nothing_gets_the_fetch_after_the_patience_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stream that stops reading (a sink holding its batch) holds the fetch once for
    the patience; the rest of the fetch goes on at once, Faust's way (the partition
    leaves the next fetch)."""
    monkeypatch.setattr("streams.transport.drain.ROOM_PATIENCE_S", 0.1)
    waits: list[bool] = []
    room_for = DrainPerFetch._room_for

    async def counted_room_for(self: ScriptedConsumer, tp: TP) -> bool:
        waits.append(await room_for(self, tp))  # type: ignore[arg-type]
        return waits[-1]

    monkeypatch.setattr(ScriptedConsumer, "_room_for", counted_room_for)
    buffer = StreamBuffer(size=10)
    loop = asyncio.get_running_loop()
    began = loop.time()
    _, delivered = await drain_into(
        buffer, [records(P0, 0, 1, 2, 3), records(P0, 4)], reader=asyncio.Event().wait
    )
    assert [offset for offset, _ in delivered] == [0, 1, 2, 3, 4]
    assert waits == [False, False]  # once a fetch
    assert loop.time() - began >= 0.2


async def test_a_rebalance_while_a_record_waits_for_room_abandons_the_fetch() -> None:
    buffer = StreamBuffer(size=10)
    consumer: ScriptedConsumer | None = None

    async def rebalance_begins() -> None:
        await asyncio.sleep(0.05)
        assert consumer is not None
        consumer.suspend_flow.set()

    delivered = Delivered()
    consumer = ScriptedConsumer([records(P0, 0, 1), records(P1, 7)], delivered)
    consumer.app.topics._tp_index[P0] = [SimpleNamespace(queue=buffer)]
    rebalancing = asyncio.ensure_future(rebalance_begins())
    await drain(consumer)
    await rebalancing
    assert delivered == [7]  # P0's records were never handed on; the next fetch was
    assert consumer._read_offset[P0] is None


class Gapping(DrainPerFetch):
    """`_add_gap` over Faust's state for one partition."""


Gapping.__abstractmethods__ = frozenset()


@pytest.mark.parametrize(
    ("committed", "first", "last", "gap"),
    [
        (779, 779, 997, [(779, 998)]),  # from the committed offset itself (Faust: 780)
        (800, 779, 997, [(800, 998)]),  # never below it
        (None, 5, 7, [(5, 8)]),
        (10, 3, 7, []),
    ],
)
async def test_a_gap_holds_the_offsets_given_from_the_committed_one_on(
    committed: int | None, first: int, last: int, gap: list[tuple[int, int]]
) -> None:
    consumer = object.__new__(Gapping)
    consumer._committed_offset = defaultdict(lambda: None, {P0: committed})
    consumer._gap = defaultdict(IntervalTree)
    await consumer._add_gap(P0, first, last)
    assert sorted((i.begin, i.end) for i in consumer._gap[P0]) == gap
