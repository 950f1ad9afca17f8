"""The Faust app: settings, topics and tables. Agents live in their own modules.

Importing this module builds the app from the environment (`ACTIVITY_SYNC_*`);
`streams.cli` imports the agents so `activity-sync worker` runs them all.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.types.tuples import FutureMessage

from streams.core.sink_progress import SinkProgress
from streams.worker import allocator, rocksdb_store
from streams.worker.due_table import DueIndex
from streams.worker.settings import Settings
from streams.worker.table_partition import PartitionedTable

settings = Settings()
# rocksdb:// opens stores with one memory budget for the worker (ACTIVITY_SYNC_ROCKSDB_MEMORY_MB).
rocksdb_store.install()
# Before RocksDB's and Faust's threads start: they share this many glibc arenas.
allocator.limit_arenas(settings.malloc_arena_max)


def create_app(conf: Settings) -> faust.App:
    options: dict[str, Any] = {
        "version": conf.app_version,
        "store": conf.store,
        "datadir": str(conf.data_dir),
        "topic_partitions": conf.partitions,
        "topic_replication_factor": conf.replication_factor,
        # Raw bytes everywhere: our own schemas decode, so bad input can be dead-lettered
        # with its original bytes instead of failing inside Faust's codec.
        "key_serializer": "raw",
        "value_serializer": "raw",
        "processing_guarantee": "at_least_once",
        "consumer_auto_offset_reset": "earliest",
        "web_enabled": conf.web_enabled,
        "web_host": conf.web_host,
        "web_port": conf.web_port,
        "web_bind": conf.web_bind,
        # Faust's Stream plus batches that widen during a backlog (streams/worker/batching.py).
        "Stream": "streams.worker.batching:AdaptiveStream",
        # The broker URL and its profile's options (streams/transport/connection.py).
        **conf.broker().faust_options(),
    }
    return faust.App(conf.app_id, **options)


app = create_app(settings)


def _topic(name: str) -> faust.TopicT:
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
        replicas=settings.replication_factor,
    )


events_topic = _topic(settings.topics.events)
events_dlq_topic = _topic(settings.topics.events_dlq)
# Same key (booking id) and partition count as booking-events: co-partitioned, so the
# sink's `synced` table lives with the fold's `bookings` table on one worker.
projections_topic = _topic(settings.topics.projections)
projections_dlq_topic = _topic(settings.topics.projections_dlq)

ALL_TOPICS = (events_topic, events_dlq_topic, projections_topic, projections_dlq_topic)

# Both tables are reached only through PartitionedTable, which reads and writes a row
# under its booking's own partition (streams/worker/table_partition.py: RocksDB needs it).
# booking id (bytes) -> BookingState.to_bytes(): every accepted event and the view.
bookings: PartitionedTable[bytes] = PartitionedTable(
    app.Table(
        "bookings",
        # key_type/value_type bytes make Faust use the raw codec for the changelog too.
        key_type=bytes,
        value_type=bytes,
        partitions=settings.partitions,
        options=settings.rocksdb_options(),
    )
)
# booking id (bytes) -> last projection version handled by the sink (JSON int; negative:
# rejected by Salesforce, see streams/core/sync_gaps.py).
synced: PartitionedTable[int] = PartitionedTable(
    app.Table(
        "synced",
        key_type=bytes,
        partitions=settings.partitions,
        options=settings.rocksdb_options(),
    )
)

# The due index (streams/core/due_index.py): `kind|time|booking id` -> partition, written
# under the booking's own event like `bookings`, so it lives in the booking's partition.
due_index = DueIndex(
    PartitionedTable(
        app.Table(
            "due",
            key_type=bytes,
            value_type=bytes,
            partitions=settings.partitions,
            options=settings.rocksdb_options(),
        )
    ),
    app,
    settings.topics.events,
)


# Where this worker's sink has read activity-projections, and the fold's newest
# projection per booking (for the reconcile timer; in memory, per process).
sink_progress = SinkProgress(settings.sink_progress_max_entries)


def projection_sent(key: bytes | None, version: int, sent: FutureMessage) -> None:
    """Send callback of every projection (from the fold, reconcile or a hand-back): it
    is in flight at that offset until the sink reads it."""
    metadata = sent.result()
    if key is not None:
        sink_progress.sent(key, version, metadata.partition, metadata.offset)


@app.task  # type: ignore[untyped-decorator]  # faust's decorator is untyped
async def declare_topics() -> None:
    """Create every topic with the configured partition count before traffic flows."""
    for topic in ALL_TOPICS:
        await topic.maybe_declare()


async def trim_allocator() -> None:
    """glibc's free pages back to the system (streams/worker/allocator.py)."""
    allocator.trim()


if settings.malloc_trim_interval > 0:
    app.timer(settings.malloc_trim_interval, name="malloc-trim")(trim_allocator)
