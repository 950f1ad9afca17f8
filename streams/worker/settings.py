"""Configuration: environment variables prefixed `ACTIVITY_SYNC_`, or an env file.

Everything an operator sets lives here; the Faust app, the agents and the CLI only
read a `Settings`. The settings come in sections, one class per concern (`SECTIONS`:
the app, the broker, start-up, the fold, the sink, the timers, the table store, the web
server, the process), each saying what it is for and what each of its fields means; the
README's Configuration tables follow the same sections. `Settings` composes them by
inheritance, so a field keeps its flat name (`settings.sink_batch_size`) and its variable
(`ACTIVITY_SYNC_SINK_BATCH_SIZE`); topic names and Salesforce are nested settings of
their own (`settings.topics`, `settings.salesforce`, streams/salesforce/settings.py).

Broker quirks are handled by the broker profile (`ACTIVITY_SYNC_BROKER_PROFILE`, one per
broker kind, in streams/transport/connection.py) that `broker()` connects with, so no
workaround is spread through the code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
)
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


# The sections are plain models, not settings: each is only ever read through `Settings`,
# which brings the `ACTIVITY_SYNC_` prefix, the `.env` file and the `*_FILE` secrets. Their
# own `model_config` stays empty, so `Settings` keeps SettingsWithSecretFiles' config.


class AppSection(BaseModel):
    """Which deployment this is: the Faust app's identity and the Salesforce fields it
    writes."""

    app_id: str = Field(
        default="booking-activity-sync",
        description="Faust app id: the consumer group and the prefix of the tables' topics",
    )
    # Bump to rebuild every table from the start of the topic (see README, backfill).
    app_version: int = Field(
        default=1, description="bump to rebuild every table from the start of the topic"
    )
    field_mapping: Literal["default", "oncehub"] = Field(
        default="default",
        description="the Salesforce fields a projection is written to: `default` or "
        "`oncehub` (the ScheduleOnce package's fields)",
    )

    def mapping(self) -> FieldMapping:
        """The Salesforce field mapping `field_mapping` names."""
        return PRESETS[self.field_mapping]


class BrokerSection(BaseModel):
    """The Kafka cluster: where it is, how to talk to it, and the shape of the topics the
    app creates (partitions, replication)."""

    broker_url: str = Field(
        default="kafka://127.0.0.1:9092",
        description="Kafka bootstrap servers in Faust's form; several: "
        "`kafka://a:9092;kafka://b:9092`",
    )
    # Production's broker by default: a deployment that leaves the variable unset gets
    # Apache Kafka's profile, never a dev-kit broker's workarounds (its short session
    # timeout, its end-offset probe: streams/transport/connection.py). The dev kit and
    # the demo name their broker's profile themselves.
    broker_profile: ProfileName = Field(
        default="kafka",
        description="the broker kind (a name in streams.transport.connection.PROFILES)",
    )
    partitions: int = Field(
        default=4, ge=1, description="partitions of every topic and table; fixed once data exists"
    )
    replication_factor: int = Field(
        default=1, ge=1, description="replication of the topics the app creates"
    )
    # min.insync.replicas of every topic the app creates, its tables' changelogs included
    # (`topic_config()`): with the producers' acks=all, a write then needs this many
    # replicas (2 of 3 in production). None: the broker's default. Topics that already
    # exist keep their own.
    min_insync_replicas: int | None = Field(
        default=None,
        ge=1,
        description="min.insync.replicas of the topics the app creates (None: the broker's)",
    )

    # Declared after replication_factor, in the same section, so `info.data` holds it.
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

    def topic_config(self) -> dict[str, str]:
        """Broker-side config of the topics the app creates: its own topics (Faust's
        `config`) and its tables' changelogs (`extra_topic_configs`)."""
        if self.min_insync_replicas is None:
            return {}
        return {"min.insync.replicas": str(self.min_insync_replicas)}

    def broker(self) -> BrokerConnection:
        """The broker URL with its profile: Faust options, bootstrap servers, end offsets."""
        return BrokerConnection.named(self.broker_url, self.broker_profile)


class StartupSection(BaseModel):
    """What a starting worker checks before it joins the group
    (streams/commands/preflight.py)."""

    startup_timeout: float = Field(
        default=30.0,
        gt=0,
        description="seconds a starting worker waits for the broker and Salesforce before "
        "it gives up with a one-line error",
    )
    startup_org_check: bool = Field(
        default=True,
        description="check the org (check-salesforce: fields, access, API calls left) and "
        "refuse to start when a check fails",
    )


class FoldSection(BaseModel):
    """The fold agent's batches (booking-events → tables → activity-projections).

    The fold agent coalesces per booking within a batch: fewer table writes and sends.
    Live batches are small and quick; once one fills up (a backlog: a backfill, a
    restart) batches grow to the catch-up size and window until the backlog is gone."""

    fold_batch_size: int = Field(
        default=1000, ge=1, description="events the fold agent takes at once"
    )
    fold_batch_window: float = Field(
        default=0.05, gt=0, description="seconds to wait to fill a live fold batch"
    )
    fold_catch_up_batch_size: int = Field(
        default=25_000, ge=1, description="fold batch size while a backlog waits"
    )
    fold_catch_up_window: float = Field(
        default=3.0, gt=0, description="seconds to fill a fold batch while catching up"
    )


class SinkSection(BaseModel):
    """The sink agent (activity-projections → Salesforce): its batches, how long one
    Salesforce attempt may take, and how it backs off from the API limit. The client's own
    retries and backoff are Salesforce settings (`ACTIVITY_SYNC_SALESFORCE_RETRY_*`)."""

    # Newest-per-booking of a take is written in sObject Collections calls of
    # `salesforce.batch_size` (200) records, so a large take fills every call during a
    # backfill; live traffic flushes every window.
    sink_batch_size: int = Field(
        default=1000, ge=1, le=10_000, description="projections the sink takes at once"
    )
    sink_batch_window: float = Field(
        default=0.5, gt=0, description="seconds to wait to fill a sink batch"
    )
    # The client retries inside one attempt; past the deadline the sink logs that it is
    # holding records and starts the attempt over.
    sink_attempt_deadline: float = Field(
        default=10.0, gt=0, description="seconds one Salesforce attempt may take"
    )
    sink_limit_pause: float = Field(
        default=60.0,
        gt=0,
        description="seconds the sink pauses after a REQUEST_LIMIT_EXCEEDED answer",
    )


class TimersSection(BaseModel):
    """The timers every worker runs over the partitions it holds: completion, reconcile
    and retention (streams/worker/pipeline/)."""

    completion_grace: float = Field(
        default=3600.0,
        ge=0,
        description="seconds after its end a still Scheduled/Rescheduled booking becomes Completed",
    )
    completion_check_interval: float = Field(
        default=30.0, gt=0, description="seconds between completion checks"
    )
    # A projection lost to a crash is found by the sweep (streams/worker/pipeline/reconcile.py).
    reconcile_interval: float = Field(
        default=60.0,
        gt=0,
        description="seconds between sweeps that re-send projections Salesforce has "
        "stayed behind for two sweeps",
    )
    # A backfill can run far ahead of the sink; past the cap a partition's oldest count as
    # in flight en bloc.
    sink_progress_max_entries: int = Field(
        default=100_000,
        ge=1,
        description="projections the reconcile timer remembers as in flight to the sink",
    )
    # A later event for a booking past retention goes to booking-events.dlq as
    # `booking-expired` (streams/core/retention.py).
    state_retention_days: float = Field(
        default=400.0,
        gt=0,
        description="days after its end a terminal booking Salesforce is up to date on "
        "shrinks to a marker",
    )
    retention_check_interval: float = Field(
        default=3600.0, gt=0, description="seconds between retention sweeps"
    )


class StoreSection(BaseModel):
    """Where and how the tables (bookings, synced, due) keep their state, and the memory
    their RocksDB stores may take (docs/performance.md, "Memory").

    Each table keeps one RocksDB store per partition this worker holds, and each store has
    its own block cache and write buffers: Faust's defaults (2 GiB cache, 3 x 64 MiB
    buffers) grow a worker's RSS with the data it has read."""

    # rocksdb:// (state survives restarts without a full changelog replay) is what the
    # demo, the tests and the benches run; memory:// rebuilds every table from its
    # changelog at each start (one smoke test keeps it working).
    store: str = Field(default="rocksdb://", description="the table store: rocksdb:// or memory://")
    data_dir: Path = Field(default=Path("var/worker"), description="local table state")
    rocksdb_block_cache_mb: int = Field(
        default=8, ge=1, description="megabytes of block cache per store"
    )
    rocksdb_write_buffer_mb: int = Field(
        default=4, ge=1, description="megabytes per write buffer (memtable) of a store"
    )
    rocksdb_max_write_buffers: int = Field(
        default=2, ge=1, description="write buffers a store may hold"
    )
    # streams/worker/process/rocksdb_store.py: every store of the worker shares one block
    # cache of this size, memtables charged to it; the per-store block cache then goes
    # unused.
    rocksdb_memory_mb: int = Field(
        default=64,
        ge=0,
        description="megabytes for all the worker's stores together (0: a cache per store, "
        "as Faust does)",
    )

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


class WebSection(BaseModel):
    """The worker's HTTP server: booking views, health and metrics
    (streams/worker/watch/web.py)."""

    web_enabled: bool = Field(default=True, description="run the worker's HTTP server")
    # Faust forwards /bookings/{id} to the worker holding the booking, at this host.
    web_host: str = Field(
        default="127.0.0.1", description="the host other workers use to reach this one"
    )
    web_bind: str = Field(default="127.0.0.1", description="the interface to listen on")
    web_port: int = Field(default=6066, description="the HTTP port")
    # Unset: those views answer loopback clients only, and a worker bound to another
    # interface refuses to start (streams/worker/watch/web.py).
    web_token: SecretStr = Field(
        default=SecretStr(""),
        description="bearer token every HTTP view but /health/ and /metrics/ requires "
        "(or ACTIVITY_SYNC_WEB_TOKEN_FILE)",
    )


class ProcessSection(BaseModel):
    """Tuning of the worker process itself: glibc's heap and memory profiling."""

    # glibc keeps what a large fold batch freed (streams/worker/process/allocator.py).
    malloc_trim_interval: float = Field(
        default=30.0,
        ge=0,
        description="seconds between returns of glibc's free pages to the system (0: never)",
    )
    malloc_arena_max: int = Field(
        default=2, ge=0, description="glibc arenas the threads share (0: glibc's 8 per core)"
    )
    # Off (0) in production: tracing slows the worker about tenfold.
    memory_profile_frames: int = Field(
        default=0,
        ge=0,
        le=100,
        description="N > 0: trace Python allocations with N frames each and list the top "
        "in GET /debug/memory/ (loopback only, streams/worker/watch/memory_profile.py)",
    )


# In the order the README's Configuration tables show them.
SECTIONS: tuple[type[BaseModel], ...] = (
    AppSection,
    BrokerSection,
    StartupSection,
    FoldSection,
    SinkSection,
    TimersSection,
    StoreSection,
    WebSection,
    ProcessSection,
)


# Pydantic collects fields from the last base first: the sections are listed backwards so
# the fields (their repr, the first of several validation errors) come in SECTIONS order.
class Settings(
    SettingsWithSecretFiles,
    ProcessSection,
    WebSection,
    StoreSection,
    TimersSection,
    SinkSection,
    FoldSection,
    StartupSection,
    BrokerSection,
    AppSection,
):
    """The worker's settings: every section's fields (field `foo` is read from
    `ACTIVITY_SYNC_FOO`), and the topic names and Salesforce connection as nested settings
    with prefixes of their own."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX)
    secret_fields = SECRET_FIELDS

    topics: TopicNames = Field(
        default_factory=TopicNames, description="topic names (ACTIVITY_SYNC_TOPIC_*)"
    )
    salesforce: SalesforceSettings = Field(
        default_factory=SalesforceSettings,
        description="the Salesforce connection (ACTIVITY_SYNC_SALESFORCE_*)",
    )
