"""Faust's stream with batches whose size and window are asked before each batch.

Faust's `Stream.take_events(max_, within)` fixes both numbers for the life of the
loop. `AdaptiveStream.take_adaptive` is the same loop (buffer in a stream processor,
yield, then ack) built on Faust's stream internals (`faust.streams._tracks_buffer_agen`,
`Stream._enable_passive`, `Stream._processors`), with the size and window read from a
`BatchSizes` before each batch, which is told how many records wait behind the batch
(from the consumer's last fetch) as the batch is handed over and again once it is done.
Installed as the app's Stream class
(`faust.App(..., Stream="streams.runtime.batches:AdaptiveStream")`)::

    async for batch in cast(AdaptiveStream, stream).take_adaptive(policy):
        ...   # acked once the loop body is done with it
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from typing import Any, Protocol, cast

import faust
from faust.streams import _tracks_buffer_agen
from faust.types import TP, EventT
from mode.utils.aiter import aiter
from mode.utils.futures import notify
from mode.utils.locks import Event


class BatchSizes(Protocol):
    """How large the next batch may grow (events) and how long it may wait (seconds)."""

    @property
    def size(self) -> int: ...

    @property
    def window(self) -> float: ...

    def observe(self, backlog: int) -> None:
        """After a batch: how many events of its partitions are waiting behind it."""


class AdaptiveStream(faust.Stream[Any]):
    """Faust's Stream plus `take_adaptive`. Installed as the app's Stream class."""

    @_tracks_buffer_agen
    async def take_adaptive(self, policy: BatchSizes) -> AsyncGenerator[list[EventT[Any]], None]:
        """Batches of events sized by `policy`; each batch is acked after the caller is
        done with it (at-least-once, as `take_events`)."""
        events: list[EventT[Any]] = []
        # mode's Event: what Service.wait and wait_for_stopped are typed to take.
        buffer_full = Event()
        buffer_consumed = Event()
        # Set while the caller holds a batch, so nothing is added underneath it.
        buffer_consuming: asyncio.Future[None] | None = None
        channel_it = aiter(self.channel)

        async def add_to_buffer(value: Any) -> Any:
            nonlocal buffer_consuming
            try:
                if buffer_consuming is not None:
                    try:
                        await buffer_consuming
                    finally:
                        buffer_consuming = None
                event = self.current_event
                if event is None:
                    raise RuntimeError("take_adaptive found current_event is None")
                events.append(event)
                if len(events) >= policy.size:
                    buffer_full.set()
                    buffer_consumed.clear()
                    await self.wait(buffer_consumed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # as Faust's take_events: crash the stream, not hang
                self.log.exception("Error adding to take buffer: %r", exc)
                await self.crash(exc)
            return value

        # Acked by this generator once the caller has processed the batch, not on receipt.
        enable_acks = self.enable_acks
        self.enable_acks = False
        self.add_processor(add_to_buffer)
        self._enable_passive(cast(faust.ChannelT[Any], channel_it))
        try:
            while not self.should_stop:
                await self.wait_for_stopped(buffer_full, timeout=policy.window)
                if not events:
                    continue
                buffer_consuming = self.loop.create_future()
                # Told before the caller runs too: whoever asks the policy meanwhile (the
                # sink asks the fold's whether it is catching up) hears of a backlog the
                # batch's first projections already belong to.
                policy.observe(self.backlog_behind(events))
                try:
                    yield list(events)
                finally:
                    for event in events:
                        await self.ack(event)
                    policy.observe(self.backlog_behind(events))
                    events.clear()
                    notify(buffer_consuming)
                    buffer_full.clear()
                    buffer_consumed.set()
        finally:
            self.enable_acks = enable_acks
            self._processors.remove(add_to_buffer)

    def backlog_behind(self, events: Sequence[EventT[Any]]) -> int:
        """Records waiting after these events in their partitions: the high-water mark
        of the consumer's last fetch minus the next offset (no broker round trip)."""
        next_offsets: dict[TP, int] = {}
        for event in events:
            message = event.message
            next_offsets[message.tp] = message.offset + 1
        waiting = 0
        assigned = self.app.consumer.assignment()
        for tp, next_offset in next_offsets.items():
            if tp not in assigned:
                continue  # revoked by a rebalance meanwhile (aiokafka asserts on it)
            highwater = self.app.consumer.highwater(tp)
            if highwater is not None:
                waiting += max(0, highwater - next_offset)
        return waiting
