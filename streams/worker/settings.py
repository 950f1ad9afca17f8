"""Configuration: environment variables prefixed `ACTIVITY_SYNC_`, or an env file.

Everything an operator sets lives here; the Faust app, the agents and the CLI only
read a `Settings`. Broker quirks are handled by the broker profile
(`ACTIVITY_SYNC_BROKER_PROFILE`, one per broker kind, in streams/transport/connection.py)
that `broker()` connects with, so no workaround is spread through the code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.core.projection import PRESETS, FieldMapping
from streams.salesforce.settings import SalesforceSettings, SettingsWithSecretFiles
from streams.transport.connection import BrokerConnection, profile_named


def _known_profile(name: str) -> str:
    profile_named(name)  # ValueError for a profile streams.transport.connection lacks
    return name


# A name in streams.transport.connection.PROFILES (the profile registry).
ProfileName = Annotated[str, AfterValidator(_known_profile)]

ENV_PREFIX = "ACTIVITY_SYNC_"
# Secrets that can also come from a file: ACTIVITY_SYNC_WEB_TOKEN_FILE.
SECRET_FIELDS = ("web_token",)


class TopicNames(BaseSettings):
    """Topic names; change them only to run several deployments on one cluster."""

    model_config = SettingsConfigDict(
        env_prefix="ACTIVITY_SYNC_TOPIC_", env_file=".env", extra="ignore"
    )

    events: str = "booking-events"
    events_dlq: str = "booking-events.dlq"
    projections: str = "activity-projections"
    projections_dlq: str = "activity-projections.dlq"


class Settings(SettingsWithSecretFiles):
    """The worker's settings. Field `foo` is read from `ACTIVITY_SYNC_FOO`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX)
    secret_fields = SECRET_FIELDS

    app_id: str = "booking-activity-sync"
    # Bump to rebuild every table from the start of the topic (see README, backfill).
    app_version: int = 1
    broker_url: str = "kafka://127.0.0.1:9092"
    # Production's broker by default: a deployment that leaves the variable unset gets
    # Apache Kafka's profile, never a dev-kit broker's workarounds (its short session
    # timeout, its end-offset probe: streams/transport/connection.py). The dev kit and
    # the demo name their broker's profile themselves.
    broker_profile: ProfileName = "kafka"
    partitions: int = Field(default=4, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    # min.insync.replicas of every topic the app creates, its tables' changelogs included
    # (`topic_config()`): with the producers' acks=all, a write then needs this many
    # replicas (2 of 3 in production). None: the broker's default. Topics that already
    # exist keep their own.
    min_insync_replicas: int | None = Field(default=None, ge=1)
    # rocksdb:// (state survives restarts without a full changelog replay) is what the
    # demo, the tests and the benches run; memory:// rebuilds every table from its
    # changelog at each start (one smoke test keeps it working).
    store: str = "rocksdb://"
    data_dir: Path = Path("var/worker")
    web_enabled: bool = True
    # The host other workers use to reach this one (Faust forwards /bookings/{id} there).
    web_host: str = "127.0.0.1"
    web_bind: str = "127.0.0.1"
    web_port: int = 6066
    # Bearer token every HTTP view but /health/ and /metrics/ requires (or
    # ACTIVITY_SYNC_WEB_TOKEN_FILE). Unset: those views answer loopback clients only, and
    # a worker bound to another interface refuses to start (streams/worker/watch/web.py).
    web_token: SecretStr = SecretStr("")
    # Seconds a starting worker waits for the broker and Salesforce before it gives up
    # with a one-line error (streams/commands/preflight.py).
    startup_timeout: float = Field(default=30.0, gt=0)
    # A starting worker also checks the org (check-salesforce: fields, access, API
    # calls left) and refuses to start when a check fails.
    startup_org_check: bool = True

    field_mapping: Literal["default", "oncehub"] = "default"
    # The fold agent coalesces per booking within a batch: fewer table writes and sends.
    # Live batches are small and quick; once one fills up (a backlog: a backfill, a
    # restart) batches grow to the catch-up size and window until the backlog is gone.
    fold_batch_size: int = Field(default=1000, ge=1)
    fold_batch_window: float = Field(default=0.05, gt=0)
    fold_catch_up_batch_size: int = Field(default=25_000, ge=1)
    fold_catch_up_window: float = Field(default=3.0, gt=0)
    # Projections the sink takes at once. Newest-per-booking of them is written in
    # sObject Collections calls of `salesforce.batch_size` (200) records, so a large
    # take fills every call during a backfill; live traffic flushes every window.
    sink_batch_size: int = Field(default=1000, ge=1, le=10_000)
    sink_batch_window: float = Field(default=0.5, gt=0)
    # One Salesforce attempt (the client retries inside it) may take this long; then the
    # sink logs that it is holding records and starts the attempt over.
    sink_attempt_deadline: float = Field(default=10.0, gt=0)
    # A REQUEST_LIMIT_EXCEEDED answer pauses the sink this long before trying again.
    sink_limit_pause: float = Field(default=60.0, gt=0)

    # A booking still Scheduled/Rescheduled this long after its end becomes Completed.
    completion_grace: float = Field(default=3600.0, ge=0)
    completion_check_interval: float = Field(default=30.0, gt=0)

    # Every this many seconds each worker re-sends projections that Salesforce has stayed
    # behind for two sweeps (a projection lost to a crash; see
    # streams/worker/pipeline/reconcile.py).
    reconcile_interval: float = Field(default=60.0, gt=0)

    # A terminal booking (Completed, Canceled, No-show) that Salesforce is up to date on
    # shrinks to a marker this many days after its end; a later event for it goes to
    # booking-events.dlq as `booking-expired` (streams/core/retention.py).
    state_retention_days: float = Field(default=400.0, gt=0)
    retention_check_interval: float = Field(default=3600.0, gt=0)

    # Memory bounds (docs/performance.md, "Memory"). Each table (bookings, synced, due)
    # keeps one RocksDB store per partition this worker holds, and each store has its own
    # block cache and write buffers: Faust's defaults (2 GiB cache, 3 x 64 MiB buffers)
    # grow a worker's RSS with the data it has read. Megabytes, per store.
    rocksdb_block_cache_mb: int = Field(default=8, ge=1)
    rocksdb_write_buffer_mb: int = Field(default=4, ge=1)
    rocksdb_max_write_buffers: int = Field(default=2, ge=1)
    # One budget for all of them (streams/worker/process/rocksdb_store.py): every store of the
    # worker shares one block cache of this size, memtables charged to it; the per-store
    # block cache above then goes unused. 0: a cache per store, as Faust does.
    rocksdb_memory_mb: int = Field(default=64, ge=0)
    # glibc keeps what a large fold batch freed (streams/worker/process/allocator.py): give its
    # free pages back every this many seconds (0: never), and let threads share this
    # many arenas (0: glibc's 8 per core).
    malloc_trim_interval: float = Field(default=30.0, ge=0)
    malloc_arena_max: int = Field(default=2, ge=0)
    # Projections the reconcile timer remembers as in flight to the sink (a backfill can
    # run far ahead of it); past the cap a partition's oldest count as in flight en bloc.
    sink_progress_max_entries: int = Field(default=100_000, ge=1)
    # Off (0) in production: N > 0 traces Python allocations with N frames each, and
    # GET /debug/memory/ (loopback only, streams/worker/watch/memory_profile.py) lists the top.
    memory_profile_frames: int = Field(default=0, ge=0, le=100)

    topics: TopicNames = Field(default_factory=TopicNames)
    salesforce: SalesforceSettings = Field(default_factory=SalesforceSettings)

    @field_validator("min_insync_replicas")
    @classmethod
    def _within_replication(cls, value: int | None, info: ValidationInfo) -> int | None:
        replicas = info.data.get("replication_factor")
        if value is not None and replicas is not None and value > replicas:
            raise ValueError(
                f"{value} exceeds the replication factor ({replicas}): "
                "the broker would refuse every acks=all write"
            )
        return value

    @field_validator("broker_url")
    @classmethod
    def _names_a_broker(cls, value: str) -> str:
        if not BrokerConnection(value, profile_named("kafka")).bootstrap_servers:
            raise ValueError("names no Kafka broker")  # (bootstrap_servers raises first)
        return value

    def rocksdb_options(self) -> dict[str, int]:
        """Faust's RocksDB options (`faust.stores.rocksdb.RocksDBOptions`) for a table, and
        the worker's budget (`memory_budget_mb`, read by
        streams/worker/process/rocksdb_store.py)."""
        mib = 1024 * 1024
        return {
            "block_cache_size": self.rocksdb_block_cache_mb * mib,
            "block_cache_compressed_size": self.rocksdb_block_cache_mb * mib,
            "write_buffer_size": self.rocksdb_write_buffer_mb * mib,
            "max_write_buffer_number": self.rocksdb_max_write_buffers,
            "memory_budget_mb": self.rocksdb_memory_mb,
        }

    def topic_config(self) -> dict[str, str]:
        """Broker-side config of the topics the app creates: its own topics (Faust's
        `config`) and its tables' changelogs (`extra_topic_configs`)."""
        if self.min_insync_replicas is None:
            return {}
        return {"min.insync.replicas": str(self.min_insync_replicas)}

    def broker(self) -> BrokerConnection:
        """The broker URL with its profile: Faust options, bootstrap servers, end offsets."""
        return BrokerConnection.named(self.broker_url, self.broker_profile)

    def mapping(self) -> FieldMapping:
        """The Salesforce field mapping `field_mapping` names."""
        return PRESETS[self.field_mapping]
