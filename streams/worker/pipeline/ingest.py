"""The ingest+fold agent: raw booking events -> table `bookings` -> activity-projections.

Thin by design: decoding and validation are `schemas.parse_event`, the rules are
`streams.core.fold` and `streams.core.projection`. This module only moves bytes, batches the
work per booking and sends what the core rejects to the dead-letter topic.

Batching: each `take_events` batch is grouped by booking, so a booking touched by
ten events in a batch costs one table write and one projection send, not ten.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, cast

import faust
from faust.types import EventT

from schemas import EventRejected, parse_event
from streams.core.due_index import entry_changes, reconcile_action
from streams.core.fold import BookingState, fold
from streams.core.projection import project
from streams.core.retention import EXPIRED_CODE, is_marker, read_marker
from streams.runtime.batches import AdaptiveStream
from streams.worker.app import (
    app,
    bookings,
    due_table,
    events_dlq_topic,
    events_topic,
    settings,
    sink_progress,
    synced,
)
from streams.worker.pipeline.batching import BatchPolicy
from streams.worker.pipeline.dead_letter import send_to_dead_letter
from streams.worker.pipeline.projections import MAPPING, send_projection
from streams.worker.watch import metrics

log = logging.getLogger(__name__)


async def dead_letter_event(
    event: EventT[bytes], code: str, message: str, value: bytes | None = None
) -> None:
    await send_to_dead_letter(events_dlq_topic, event, code, message, value)


async def fold_batch(batch: Sequence[EventT[bytes]]) -> None:
    metrics.EVENTS_INGESTED.inc(len(batch))
    metrics.FOLD_BATCH_EVENTS.observe(len(batch))
    by_booking: dict[bytes, list[tuple[EventT[bytes], Any]]] = {}
    for event in batch:
        key = event.message.key
        try:
            if key is None:
                raise EventRejected(
                    "key-mismatch", "key", "record has no key; it must be the subject"
                )
            parsed = parse_event(event.message.value or b"", key=key)
        except EventRejected as rejected:
            await dead_letter_event(event, rejected.code, rejected.message)
            continue
        by_booking.setdefault(key, []).append((event, parsed))

    # Counted per batch: a labelled counter costs a lookup and a lock per call.
    outcomes: Counter[str] = Counter()
    sent = SentProjections()
    for key, items in by_booking.items():
        try:
            await fold_booking(key, items, outcomes, sent)
        except Exception as exc:  # a bug in the core must not stop the stream or lose input
            log.exception("folding booking %r failed; dead-lettering its events", key)
            for event, _ in items:
                await dead_letter_event(event, "internal-error", f"{type(exc).__name__}: {exc}")
    # Before the batch's offsets can be committed (the commit waits for the changelog
    # writes): a worker that dies first leaves the events to be read again.
    sent.write(int(time.time() * 1000))
    for outcome, count in outcomes.items():
        metrics.EVENTS_FOLDED.labels(outcome).inc(count)


class SentProjections:
    """The projections a fold batch sent, by partition: for the reconcile timer, one
    sent entry per partition at the end of the batch (streams/core/due_index.py), where
    an entry per booking was a table write and a changelog record per projection (a
    sixth of the records a backfill produced)."""

    def __init__(self) -> None:
        # partition -> (its event with the highest offset, (booking, version) in order)
        self._by_partition: dict[int, tuple[EventT[bytes], list[tuple[bytes, int]]]] = {}

    def add(self, event: EventT[bytes], key: bytes, version: int) -> None:
        """`key`'s projection at `version` was sent; `event` is the booking's newest."""
        message = event.message
        held = self._by_partition.get(message.partition)
        if held is None:
            self._by_partition[message.partition] = (event, [(key, version)])
            return
        anchor, changed = held
        changed.append((key, version))
        if message.offset > anchor.message.offset:
            self._by_partition[message.partition] = (event, changed)

    def write(self, at_ms: int) -> None:
        for anchor, changed in self._by_partition.values():
            due_table.under(anchor).add_sent(at_ms, changed)


async def fold_booking(
    key: bytes,
    items: list[tuple[EventT[bytes], Any]],
    outcomes: Counter[str],
    sent: SentProjections,
) -> None:
    # The booking's rows live in its partition: read and written under its newest event.
    latest = items[-1][0]
    rows = bookings.under(latest)
    stored = rows.get(key)
    if stored is not None and is_marker(stored):
        await dead_letter_expired(items, stored)
        outcomes[EXPIRED_CODE] += len(items)
        return
    state: BookingState | None = BookingState.from_bytes(stored) if stored is not None else None
    before = state
    changed = False
    for event, parsed in items:
        result = fold(state, parsed)
        state = result.state
        changed = changed or result.changed
        outcomes[result.outcome] += 1
        if result.rejected_reassignment:  # rare: counted as it comes
            metrics.REASSIGNMENTS_REJECTED.inc()
        if result.dead_letter is not None:
            # The loser of a conflicting duplicate may be this record or the stored copy.
            loser = result.dead_letter
            value = None if loser == parsed else loser.to_json()
            await dead_letter_event(
                event,
                result.outcome,
                f"{result.outcome}: source={loser.source} id={loser.id}",
                value,
            )
    assert state is not None  # at least one event was folded
    if changed:
        rows.set(key, state.to_bytes())
        # The timers' entries (streams/core/due_index.py): a new end time moves the
        # completion entry, a terminal phase swaps it for a retention entry.
        due_table.under(latest).apply(entry_changes(before, state))
    # Unchanged (only copies of events folded already): nothing new to send, unless this
    # is a redelivery whose projection never left (resend_on_redelivery).
    send = changed or resend_on_redelivery(key, state, latest)
    projection = project(state, MAPPING) if send else None
    if projection is not None:
        newest = max(event.message.timestamp for event, _ in items)
        # Checked by the reconcile timer once it is due: is Salesforce still behind?
        sent.add(latest, key, projection.version)
        await send_projection(key, projection, event_timestamp=newest)


def resend_on_redelivery(key: bytes, state: BookingState, latest: EventT[bytes]) -> bool:
    """Whether a batch of only copies of folded events re-sends the booking's projection.

    A worker can die after its `bookings` changelog write reached the broker and before
    its projection did: on Kafka, a send to a partition whose leader died waits until
    another broker leads it (seconds). Faust flushes the producer before it commits, so
    those events are read again by the partition's next owner, which finds them folded
    already: without this, nothing would re-send the projection before the reconcile
    timer (two sweep intervals later). Re-sent when Salesforce has not handled that
    version (`synced`) and this worker's sink has not got it on its way, as the
    reconcile timer judges it; a duplicate while the first copy is in flight costs one
    more record, which the sink writes once."""
    version = state.version
    return (
        reconcile_action(
            version,
            synced.under(latest).get(key) or 0,
            in_flight=sink_progress.in_flight(key, version, latest.message.partition),
            resent=0,
        )
        == "resend"
    )


async def dead_letter_expired(items: list[tuple[EventT[bytes], Any]], stored: bytes) -> None:
    """Events for a booking whose state retention dropped: never folded onto an empty
    history (the Event in Salesforce is right and stays so)."""
    expired = read_marker(stored)
    message = (
        f"{EXPIRED_CODE}: the booking ended {expired.end.isoformat()} as {expired.phase} and "
        "its state has expired (ACTIVITY_SYNC_STATE_RETENTION_DAYS)"
    )
    for event, _ in items:
        await dead_letter_event(event, EXPIRED_CODE, message)


def batch_policy() -> BatchPolicy:
    return BatchPolicy(
        live_size=settings.fold.batch_size,
        live_window=settings.fold.batch_window,
        catch_up_size=settings.fold.catch_up_batch_size,
        catch_up_window=settings.fold.catch_up_window,
    )


# The fold's batch policy: whether it is catching up is also the sink's business (its
# org lanes fill their calls meanwhile, streams/worker/pipeline/org_sinks.py).
fold_policy = batch_policy()


@app.agent(events_topic, name="ingest")
async def ingest(stream: faust.StreamT[bytes]) -> None:
    # The app's Stream class (streams/worker/app.py); StreamT's stub does not know it.
    adaptive = cast(AdaptiveStream, stream)
    async for batch in adaptive.take_adaptive(fold_policy):
        await fold_batch(batch)
