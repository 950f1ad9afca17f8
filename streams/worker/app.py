"""The Faust app: settings, topics and tables. Agents live in their own modules.

Importing this module builds the app from the environment (`ACTIVITY_SYNC_*`) and
nothing more: it sets up no process state (the RocksDB store, glibc's arenas, the
collector, the log filters are `boot()`'s, streams/worker/process/boot.py, which
`streams.cli.main` calls). `streams.cli` imports the agents so `activity-sync worker`
runs them all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

import faust
from mode import ServiceT

from streams.core.sink_progress import SinkProgress
from streams.runtime.ownership import Ownership
from streams.runtime.tables import PartitionedTable
from streams.transport import producer, tables
from streams.worker.due_table import DueTable
from streams.worker.org_checks import OrgChecks
from streams.worker.org_directory import OrgDirectory, RegistryFollower
from streams.worker.process import allocator
from streams.worker.settings import Settings

settings = Settings()


class App(faust.App):
    """Faust's App, whose Monitor sensor is fed only while a Faust page shows it.

    Faust's Monitor counts every message and stream event (4 % of a worker's CPU in
    `make bench`'s py-spy profiles) for its `/stats/` and `/performance/` pages, which
    are off unless Faust's `debug` or `web_metrics_enabled` turns them on; this app's
    own metrics are at `/metrics/` (streams/worker/watch/metrics.py)."""

    def on_init_dependencies(self) -> Iterable[ServiceT]:
        services = super().on_init_dependencies()  # adds the Monitor to the sensors
        if not (self.conf.web_stats_enabled or self.conf.web_metrics_enabled):
            self.sensors.remove(self.monitor)
        return services


def create_app(conf: Settings) -> faust.App:
    options: dict[str, Any] = {
        "version": conf.app.version,
        "store": conf.store.url,
        "datadir": str(conf.store.data_dir),
        "topic_partitions": conf.broker.partitions,
        "topic_replication_factor": conf.broker.replication_factor,
        # Raw bytes everywhere: our own schemas decode, so bad input can be dead-lettered
        # with its original bytes instead of failing inside Faust's codec.
        "key_serializer": "raw",
        "value_serializer": "raw",
        "processing_guarantee": "at_least_once",
        # Every send (projections, dead letters, table changelogs) waits for all in-sync
        # replicas: -1 is acks=all. Faust's default too, named here because nothing is
        # lost only if it holds (with ACTIVITY_SYNC_MIN_INSYNC_REPLICAS on the topics).
        # Faust lets an environment variable PRODUCER_ACKS override it: leave that unset.
        "producer_acks": -1,
        # Seconds: changelog writes and projections leave in fuller batches.
        "producer_linger": conf.broker.producer_linger_ms / 1000,
        "producer_max_batch_size": conf.broker.producer_max_batch_bytes,
        "consumer_auto_offset_reset": "earliest",
        "web_enabled": conf.web.enabled,
        "web_host": conf.web.host,
        "web_port": conf.web.port,
        "web_bind": conf.web.bind,
        # Faust's Stream plus batches that widen during a backlog (streams/runtime/batches.py).
        "Stream": "streams.runtime.batches:AdaptiveStream",
        # Faust's Table, its changelog check waiting for the consumer's metadata
        # (streams/transport/tables.py: a fresh deployment's first rebalance on Kafka).
        "Table": tables.TABLE_CLASS,
        # The broker URL and its profile's options (streams/transport/connection.py).
        **conf.broker.connection().faust_options(),
    }
    return App(conf.app.id, **options)


app = create_app(settings)


def new_topic(faust_app: faust.App, conf: Settings, name: str) -> faust.TopicT:
    """One of the app's topics: raw bytes, and created (if it does not exist) with the
    configured partitions, replication and topic config."""
    return faust_app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=conf.broker.partitions,
        replicas=conf.broker.replication_factor,
        config=conf.broker.topic_config(),
    )


def new_table(
    faust_app: faust.App, conf: Settings, name: str, *, value_type: type | None = None
) -> Any:
    """One of the app's tables, keyed by booking id (bytes: the raw codec), with the
    RocksDB options; its changelog topic is created with the same replication
    (`topic_replication_factor`) and topic config as the app's topics."""
    return faust_app.Table(
        name,
        key_type=bytes,
        value_type=value_type,
        partitions=conf.broker.partitions,
        options=conf.store.rocksdb_options(),
        extra_topic_configs=conf.broker.topic_config(),
    )


events_topic = new_topic(app, settings, settings.topics.events)
events_dlq_topic = new_topic(app, settings, settings.topics.events_dlq)
# Same key (booking id) and partition count as booking-events: co-partitioned, so the
# sink's `synced` table lives with the fold's `bookings` table on one worker.
projections_topic = new_topic(app, settings, settings.topics.projections)
projections_dlq_topic = new_topic(app, settings, settings.topics.projections_dlq)

ALL_TOPICS = (events_topic, events_dlq_topic, projections_topic, projections_dlq_topic)

# Which partitions this worker owns (streams/runtime/ownership.py): the sink's batches
# and the timers' sweeps ask it; it follows the rebalances from here on.
ownership = Ownership(app)
ownership.follow_rebalances()

# The tables are reached only through PartitionedTable, which reads and writes a row
# under its booking's own partition (streams/runtime/tables.py: RocksDB needs it).
# booking id (bytes) -> BookingState.to_bytes(): every accepted event and the view.
# value_type bytes makes Faust use the raw codec for the changelog values too.
bookings: PartitionedTable[bytes] = PartitionedTable(
    new_table(app, settings, "bookings", value_type=bytes)
)
# booking id (bytes) -> last projection version handled by the sink (JSON int; negative:
# rejected by Salesforce, see streams/core/synced.py).
synced: PartitionedTable[int] = PartitionedTable(new_table(app, settings, "synced"))

# The due index (streams/core/due_index.py): `kind|time|booking id` -> partition, written
# under the booking's own event like `bookings`, so it lives in the booking's partition.
due_table = DueTable(
    PartitionedTable(new_table(app, settings, "due", value_type=bytes)),
    ownership,
    settings.topics.events,
)


# Where this worker's sink has read activity-projections, and the fold's newest
# projection per booking (for the reconcile timer; in memory, per process).
sink_progress = SinkProgress(settings.timers.sink_progress_max_entries)


def projection_sent(key: bytes | None, version: int, partition: int, offset: int) -> None:
    """Send callback of every projection (from the fold, reconcile or a hand-back): it
    is in flight at that offset until the sink reads it."""
    if key is not None:
        sink_progress.sent(key, version, partition, offset)


async def send_record(
    topic: faust.TopicT,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]],
    on_sent: Callable[[int, int], None],
) -> None:
    """One of the app's own records, sent with its partition's next batch
    (streams/transport/producer.py); `on_sent(partition, offset)` once the broker has it."""
    await cast(producer.Producer, app.producer).send_record(
        topic.get_topic_name(), key, value, headers, on_sent
    )


# The org registry as this worker sees it (streams/worker/org_directory.py), followed from
# its topic once the tables are recovered.
org_directory = OrgDirectory(OrgChecks(settings.salesforce))
app.service(RegistryFollower.bound(org_directory, settings))


@app.task  # type: ignore[untyped-decorator]  # faust's decorator is untyped
async def declare_topics() -> None:
    """Create every topic (partitions, replication, topic config) before traffic flows;
    one that exists is left as it is."""
    for topic in ALL_TOPICS:
        await topic.maybe_declare()


async def trim_allocator() -> None:
    """glibc's free pages back to the system (streams/worker/process/allocator.py)."""
    allocator.trim()


if settings.process.malloc_trim_interval > 0:
    app.timer(settings.process.malloc_trim_interval, name="malloc-trim")(trim_allocator)
