"""The completion timer: a booking still Scheduled/Rescheduled `completion_grace` after
its end becomes Completed, by a `booking.completed` event sent into booking-events.

The event goes through the topic, not straight into the table, so it is part of the
log: a replay or a rebuild reaches the same state. Its content derives from the
state alone (`streams.core.fold.completion_event`), so a timer firing twice, or on two
workers, produces identical copies that the fold counts once.

A sweep reads only the completion entries of the due index whose end + grace has
passed (streams/worker/due_table.py), never the whole table; the fold removes an entry
when its booking completes, is canceled or moves to a later end.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from streams.core.due_index import epoch_ms, standing_entries
from streams.core.fold import BookingState, completion_event
from streams.core.retention import is_marker
from streams.worker.app import app, bookings, due_table, events_topic, settings
from streams.worker.pipeline.sweep import Sweep
from streams.worker.watch import metrics

log = logging.getLogger(__name__)

# Completion events sent and not yet folded back, so one sweep doesn't resend them.
_in_flight: set[str] = set()
IN_FLIGHT_MAX = 100_000


async def complete_ended_bookings(now: datetime | None = None) -> int:
    """Send `booking.completed` for every local booking past end + grace; return how many."""
    now = now or datetime.now(UTC)
    grace = timedelta(seconds=settings.timers.completion_grace)
    sweep = Sweep()
    sent = 0
    async for due in due_table.due("completion", epoch_ms(now - grace), sweep):
        raw = bookings.under(due.anchor).get(due.entry.booking)
        state = None if raw is None or is_marker(raw) else BookingState.from_bytes(raw)
        if state is None or due.key not in standing_entries(state):
            due_table.drop(due)  # stale: the booking moved on
            continue
        if not state.view.completion_due(now, grace):
            continue  # the end + grace of the index is ms-rounded: due next sweep
        event = completion_event(state, grace)
        if event.id in _in_flight:
            continue
        await events_topic.send(key=due.entry.booking, value=event.to_json())
        _in_flight.add(event.id)
        sent += 1
    if len(_in_flight) > IN_FLIGHT_MAX:  # folded long ago; forget rather than grow forever
        _in_flight.clear()
    metrics.record_sweep("completion", sweep.items, sweep.cpu_s, sweep.longest_slice_s)
    if sent:
        log.info("completion timer: %d bookings past their end time marked Completed", sent)
    return sent


@app.timer(settings.timers.completion_check_interval, name="completion-timer")  # type: ignore[untyped-decorator]
async def completion_timer() -> None:
    await complete_ended_bookings()
