"""The consumer-lag gauge: records not yet processed on this worker's partitions.

A timer refreshes `activity_sync_consumer_lag{topic,partition}` from what the consumer
already knows (the high-water mark of its last fetch and the offset Faust will commit
next), so it costs no broker round trip. Partitions that moved to another worker are
removed from the gauge, so a scrape never shows a stale lag.
"""

from __future__ import annotations

import logging
from typing import Any

from streams.runtime.consumers import next_offset
from streams.worker.app import app, settings
from streams.worker.watch import metrics

log = logging.getLogger(__name__)

LAG_INTERVAL_S = 5.0
# Only the input topics: changelog partitions are Faust's own business.
WATCHED = {settings.topics.events, settings.topics.projections}

_shown: set[tuple[str, str]] = set()


def partition_lags(consumer: Any) -> dict[tuple[str, int], int]:
    """(topic, partition) -> lag for the watched topics assigned to this worker."""
    lags: dict[tuple[str, int], int] = {}
    for tp in consumer.assignment():
        if tp.topic not in WATCHED:
            continue
        highwater = consumer.highwater(tp)
        if highwater is None:
            continue  # nothing fetched yet
        committed = next_offset(consumer, tp)  # the next offset to process
        lags[(tp.topic, tp.partition)] = max(0, highwater - (committed or 0))
    return lags


def update_lag_gauge(lags: dict[tuple[str, int], int]) -> None:
    current = set()
    for (topic, partition), lag in lags.items():
        labels = (topic, str(partition))
        metrics.CONSUMER_LAG.labels(*labels).set(lag)
        current.add(labels)
    for labels in _shown - current:
        metrics.CONSUMER_LAG.remove(*labels)
    _shown.clear()
    _shown.update(current)


@app.timer(LAG_INTERVAL_S, name="consumer-lag")  # type: ignore[untyped-decorator]
async def refresh_consumer_lag() -> None:
    try:
        update_lag_gauge(partition_lags(app.consumer))
    except Exception:  # a metric must never take the worker down
        log.debug("consumer lag not available yet", exc_info=True)
