"""The reconcile timer: re-send projections that Salesforce stays behind (see
`streams.sync_gaps` for why and when). Runs on every worker over its local tables."""

from __future__ import annotations

import logging

from streams import metrics
from streams.app import app, bookings, settings, synced
from streams.fold import BookingState
from streams.ingest import MAPPING, send_projection
from streams.projection import Projection, project
from streams.sync_gaps import SyncGaps

log = logging.getLogger(__name__)

_gaps = SyncGaps()


async def resend_lagging_projections() -> int:
    projections: dict[bytes, Projection] = {}
    rows = []
    for key, raw in list(bookings.items()):
        projection = project(BookingState.from_bytes(raw), MAPPING)
        if projection is not None:
            projections[key] = projection
            rows.append((key, projection.version, synced[key]))
    resend = _gaps.sweep(rows)
    for key in resend:
        await send_projection(key, projections[key])
    if resend:
        metrics.PROJECTIONS_RESENT.inc(len(resend))
        log.warning("reconcile: re-sent %d projections Salesforce stayed behind", len(resend))
    return len(resend)


@app.timer(settings.reconcile_interval, name="reconcile-timer")  # type: ignore[untyped-decorator]
async def reconcile_timer() -> None:
    await resend_lagging_projections()
