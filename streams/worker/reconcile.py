"""The reconcile timer: re-send projections that Salesforce stays behind (see
`streams.core.sync_gaps` for why and when). Runs on every worker over its local tables.

A sweep reads only each booking's version (no replay, no projection) and leaves alone
what this worker's sink has not read yet (`streams.core.sink_progress`), so it stays cheap
and quiet while the sink trails the fold in a backfill.
"""

from __future__ import annotations

import logging

from streams.core.fold import BookingState
from streams.core.projection import project
from streams.core.sync_gaps import SyncGaps
from streams.worker import metrics
from streams.worker.app import app, bookings, settings, sink_progress, synced
from streams.worker.ingest import MAPPING, send_projection
from streams.worker.table_scan import scan

log = logging.getLogger(__name__)

_gaps = SyncGaps()


async def resend_lagging_projections() -> int:
    rows = []
    async for key, raw in scan(bookings.items()):
        version = BookingState.version_of(raw)
        if not sink_progress.in_flight(key, version):
            rows.append((key, version, synced.get(key, under=None) or 0))
    sink_progress.forget_read()
    resent = 0
    for key in _gaps.sweep(rows):
        stored = bookings.get(key, under=None)
        # None: a booking without an Event (e.g. it never got a start time): nothing to send.
        projection = (
            project(BookingState.from_bytes(stored), MAPPING) if stored is not None else None
        )
        if projection is not None:
            await send_projection(key, projection)
            resent += 1
    if resent:
        metrics.PROJECTIONS_RESENT.inc(resent)
        log.warning("reconcile: re-sent %d projections Salesforce stayed behind", resent)
    return resent


@app.timer(settings.reconcile_interval, name="reconcile-timer")  # type: ignore[untyped-decorator]
async def reconcile_timer() -> None:
    await resend_lagging_projections()
