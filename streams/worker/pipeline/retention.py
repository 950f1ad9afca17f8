"""The retention timer: terminal bookings past end + `state_retention_days` that
Salesforce is up to date on shrink to a marker (streams/core/retention.py).

A sweep reads only the retention entries of the due index whose end lies more than the
retention period back; the marker is written under the booking's partition, so the
compacted `bookings` changelog drops the history it replaced. The entry goes with it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from streams.core.due_index import epoch_ms, standing_entries
from streams.core.fold import BookingState
from streams.core.projection import project
from streams.core.retention import is_marker, marker, may_expire
from streams.core.synced import handled_version
from streams.worker.app import app, bookings, due_table, settings, synced
from streams.worker.pipeline.projections import MAPPING
from streams.worker.pipeline.sweep import Sweep
from streams.worker.watch import metrics

log = logging.getLogger(__name__)


async def expire_old_bookings(now: datetime | None = None) -> int:
    """Replace the state of every expired local booking by its marker; return how many."""
    now = now or datetime.now(UTC)
    retention = timedelta(days=settings.timers.state_retention_days)
    sweep = Sweep()
    expired = 0
    async for due in due_table.due("retention", epoch_ms(now - retention), sweep):
        key = due.entry.booking
        rows = bookings.under(due.anchor)
        raw = rows.get(key)
        state = None if raw is None or is_marker(raw) else BookingState.from_bytes(raw)
        if state is None or due.key not in standing_entries(state):
            due_table.drop(due)  # stale: the booking moved on
            continue
        # Up to date: Salesforce handled its last version, or it has no Event at all.
        up_to_date = (
            handled_version(synced.under(due.anchor).get(key) or 0) >= state.version
            or project(state, MAPPING) is None
        )
        if not may_expire(state, now, retention, synced=up_to_date):
            continue  # not synced yet: looked at again next sweep
        rows.set(key, marker(state))
        due_table.drop(due)
        expired += 1
    metrics.record_sweep("retention", sweep.items, sweep.cpu_s, sweep.longest_slice_s)
    if expired:
        metrics.BOOKINGS_EXPIRED.inc(expired)
        log.info("retention: %d bookings past their retention shrank to a marker", expired)
    return expired


@app.timer(settings.timers.retention_check_interval, name="retention-timer")  # type: ignore[untyped-decorator]
async def retention_timer() -> None:
    await expire_old_bookings()
