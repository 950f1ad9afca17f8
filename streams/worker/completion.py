"""The completion timer: a booking still Scheduled/Rescheduled `completion_grace` after
its end becomes Completed, by a `booking.completed` event sent into booking-events.

The event goes through the topic, not straight into the table, so it is part of the
log: a replay or a rebuild reaches the same state. Its content derives from the
state alone (`streams.core.fold.completion_event`), so a timer firing twice, or on two
workers, produces identical copies that the fold counts once.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from streams.core.fold import BookingState, completion_event
from streams.worker.app import app, bookings, events_topic, settings
from streams.worker.table_scan import scan

log = logging.getLogger(__name__)

# Completion events sent and not yet folded back, so one scan doesn't resend them.
_in_flight: set[str] = set()


async def complete_ended_bookings(now: datetime | None = None) -> int:
    """Send `booking.completed` for every local booking past end + grace; return how many."""
    now = now or datetime.now(UTC)
    grace = timedelta(seconds=settings.completion_grace)
    sent = 0
    async for key, raw in scan(bookings.items()):
        state = BookingState.from_bytes(raw)
        # A full history cannot take the event (it would be dead-lettered every scan).
        if state.full or not state.view.completion_due(now, grace):
            continue
        event = completion_event(state, grace)
        if event.id in _in_flight:
            continue
        await events_topic.send(key=key, value=event.to_json())
        _in_flight.add(event.id)
        sent += 1
    if len(_in_flight) > 100_000:  # folded long ago; forget rather than grow forever
        _in_flight.clear()
    if sent:
        log.info("completion timer: %d bookings past their end time marked Completed", sent)
    return sent


@app.timer(settings.completion_check_interval, name="completion-timer")  # type: ignore[untyped-decorator]
async def completion_timer() -> None:
    await complete_ended_bookings()
