"""Sending a projection to activity-projections: what the ingest agent and the
reconcile timer share, so a timer never imports an agent's module.

`MAPPING` is the field mapping of the running settings (`ACTIVITY_SYNC_FIELD_MAPPING`),
the one every projection of this worker is made with. `send_projection` tags each record
with this app version (streams/core/projection_record.py) and counts it; its send
callback (`projection_sent`) marks it in flight until this worker's sink reads it.
"""

from __future__ import annotations

from functools import partial

from streams.core import projection_record
from streams.core.projection import Projection
from streams.worker.app import projection_sent, projections_topic, send_record, settings
from streams.worker.watch import metrics

MAPPING = settings.app.mapping()


async def send_projection(
    key: bytes, projection: Projection, *, event_timestamp: float | None = None
) -> None:
    """To activity-projections, tagged with this app version (and the newest event's
    Kafka timestamp in seconds, when known, for the end-to-end latency metric)."""
    metrics.PROJECTIONS_EMITTED.inc()
    value, headers = projection_record.encode(
        projection, app_version=settings.app.version, event_timestamp=event_timestamp
    )
    await send_record(
        projections_topic, key, value, headers, partial(projection_sent, key, projection.version)
    )
