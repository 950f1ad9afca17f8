"""Records to a topic, sent as one record batch per partition and loop turn.

The app's own records (the fold's projections, the sink's hand-backs) went out through
Faust's `Topic.send`, one at a time: a `FutureMessage`, a publish coroutine, aiokafka's
`send` with a future per record, and callbacks on the ack. Here a record joins its
partition's open batch (`RecordBatches.send`); the producer's sender task
(streams/transport/producer.py) hands every open batch to aiokafka whole
(`send_as_batches`, shared with the table changelogs in streams/transport/changelog.py),
and once the broker acknowledges it, each record's `on_sent(partition, offset)` runs.

A batch the broker or the producer fails (a `KafkaError`) is logged and counted
(`failed`); its records' `on_sent` does not run, as Faust ran no callback of a failed
send. Any other error is a bug: it is raised in the sender task, which stops the worker
(nothing is committed past the batch). Nothing is committed past them unsent:
Faust flushes the producer before each commit, and the producer's flush sends the open
batches first and waits for the broker (streams/transport/producer.py).

`Backlog` counts the records of both kinds not yet acknowledged: the stream waits
while there are more than its bound (Faust's conductor, before each record).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from aiokafka.errors import KafkaError, ProducerClosed
from faust.types import TP

log = logging.getLogger(__name__)

Headers = Sequence[tuple[str, bytes]]
SentCallback = Callable[[int, int], None]


class Backlog:
    """Records handed to the producer and not yet acknowledged (or failed), and a bound
    the stream waits on."""

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self.records = 0
        self._ebbed = asyncio.Event()

    def add(self, n: int = 1) -> None:
        self.records += n

    def settle(self, n: int) -> None:
        self.records -= n
        if self.records <= self.bound:
            self._ebbed.set()

    async def wait_until_ebb(self) -> None:
        """Until at most `bound` records are unacknowledged."""
        while self.records > self.bound:
            self._ebbed.clear()
            await self._ebbed.wait()


async def send_as_batches(
    producer: Any, tp: TP, records: Iterable[tuple[bytes | None, bytes | None, Headers]]
) -> tuple[list[asyncio.Future[Any]], list[int]]:
    """Hand `records` to aiokafka's `producer` as record batches of `tp`, in order, as
    many as aiokafka's batch size needs; the batches' acks and their record counts."""
    acks: list[asyncio.Future[Any]] = []
    counts: list[int] = []
    builder = producer.create_batch()
    for key, value, headers in records:
        # aiokafka's compiled builder takes headers as a list only.
        listed = headers if isinstance(headers, list) else list(headers)
        if builder.append(timestamp=None, key=key, value=value, headers=listed) is None:
            counts.append(builder.record_count())
            acks.append(await producer.send_batch(builder, tp.topic, partition=tp.partition))
            builder = producer.create_batch()
            # The first record of a batch always fits (aiokafka sizes the batch to it).
            builder.append(timestamp=None, key=key, value=value, headers=listed)
    counts.append(builder.record_count())
    acks.append(await producer.send_batch(builder, tp.topic, partition=tp.partition))
    return acks, counts


def record_offsets(metadata: list[Any], counts: list[int]) -> list[int]:
    """Each record's offset, from the acknowledged batches' base offsets and counts.

    >>> class Ack:
    ...     def __init__(self, offset): self.offset = offset
    >>> record_offsets([Ack(40), Ack(70)], [2, 1])
    [40, 41, 70]
    """
    return [
        ack.offset + n for ack, count in zip(metadata, counts, strict=True) for n in range(count)
    ]


class RecordBatches:
    """Records waiting to leave, by partition, each with its `on_sent` callback."""

    def __init__(self, backlog: Backlog, opened: Callable[[], None]) -> None:
        self._backlog = backlog
        self._opened = opened
        self._open: dict[
            TP, list[tuple[bytes | None, bytes | None, Headers, SentCallback | None]]
        ] = {}
        self.failed = 0

    @property
    def has_open(self) -> bool:
        return bool(self._open)

    def send(
        self,
        tp: TP,
        key: bytes | None,
        value: bytes | None,
        headers: Headers = (),
        on_sent: SentCallback | None = None,
    ) -> None:
        """Send a record to `tp` with its partition's next batch; `on_sent(partition,
        offset)` once the broker has it."""
        batch = self._open.get(tp)
        if batch is None:
            batch = self._open[tp] = []
            self._opened()
        batch.append((key, value, headers, on_sent))
        self._backlog.add()

    async def send_open(self, producer: Any) -> None:
        """Hand every open batch to `producer` (aiokafka's; None: stopped), in order."""
        batches, self._open = self._open, {}
        for tp, records in batches.items():
            try:
                if producer is None:
                    raise ProducerClosed()
                acks, counts = await send_as_batches(
                    producer, tp, ((key, value, headers) for key, value, headers, _ in records)
                )
            except KafkaError as exc:  # logged and counted, as Faust does a failed send
                self._failed(tp, records, exc)
                continue
            done = asyncio.gather(*acks)
            done.add_done_callback(functools.partial(self._acknowledged, tp, records, counts))

    def _acknowledged(
        self,
        tp: TP,
        records: list[tuple[bytes | None, bytes | None, Headers, SentCallback | None]],
        counts: list[int],
        done: asyncio.Future[list[Any]],
    ) -> None:
        if done.cancelled() or done.exception() is not None:
            self._failed(tp, records, done.exception() if not done.cancelled() else None)
            return
        self._backlog.settle(len(records))
        for (_, _, _, on_sent), offset in zip(
            records, record_offsets(done.result(), counts), strict=True
        ):
            if on_sent is not None:
                on_sent(tp.partition, offset)

    def _failed(self, tp: TP, records: Sequence[object], error: BaseException | None) -> None:
        self._backlog.settle(len(records))
        self.failed += len(records)
        log.warning("a batch of %d records to %s was not sent: %r", len(records), tp, error)
