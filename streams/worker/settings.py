"""Configuration: environment variables prefixed `ACTIVITY_SYNC_`, or an env file (`.env`).

Everything an operator sets lives here; the Faust app, the agents and the CLI only
read a `Settings`. It is made of sections, one per concern, each a nested settings class
reached as an attribute and reading its own variables (its `env_prefix`), as the topic
names (`TopicNames`) and the Salesforce connection (streams/salesforce/settings.py) do:

    attribute            class                 field `x` is read from
    settings.app         AppSection            ACTIVITY_SYNC_APP_X,
                                               field_mapping: ACTIVITY_SYNC_FIELD_MAPPING
    settings.broker      BrokerSection         ACTIVITY_SYNC_X, url: ACTIVITY_SYNC_BROKER_URL,
                                               profile: ACTIVITY_SYNC_BROKER_PROFILE
    settings.startup     StartupSection        ACTIVITY_SYNC_STARTUP_X
    settings.fold        FoldSection           ACTIVITY_SYNC_FOLD_X
    settings.sink        SinkSection           ACTIVITY_SYNC_SINK_X
    settings.timers      TimersSection         ACTIVITY_SYNC_X
    settings.store       StoreSection          ACTIVITY_SYNC_X, url: ACTIVITY_SYNC_STORE
    settings.web         WebSection            ACTIVITY_SYNC_WEB_X,
                                               token also: ACTIVITY_SYNC_WEB_TOKEN_FILE
    settings.process     ProcessSection        ACTIVITY_SYNC_X
    settings.topics      TopicNames            ACTIVITY_SYNC_TOPIC_X
    settings.salesforce  SalesforceSettings    ACTIVITY_SYNC_SALESFORCE_X, secrets also X_FILE

A field whose variable does not start with its section's prefix names the variable as
its `validation_alias`, and is passed by its name (`AppSection(field_mapping=…)`);
`variables()` lists every variable with the attribute it sets. The variables are those of
the flat class the sections replaced (tests/unit/worker/test_settings.py keeps their
list), and the README's Configuration tables follow the sections, one table each.

`Settings(fold={"batch_size": 10})` sets some of a section's fields and leaves the others
to the environment; `Settings(_env_file=None)` reads no env file in any section.

Broker quirks are handled by the broker profile (`ACTIVITY_SYNC_BROKER_PROFILE`, one per
broker kind, in streams/transport/connection.py) that `broker.connection()` connects with,
so no workaround is spread through the code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import InitErrorDetails
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from streams.core.projection import PRESETS, FieldMapping
from streams.salesforce.settings import SalesforceSettings, SettingsWithSecretFiles
from streams.transport.connection import BrokerConnection, profile_named


def _known_profile(name: str) -> str:
    profile_named(name)  # ValueError for a profile streams.transport.connection lacks
    return name


# A name in streams.transport.connection.PROFILES (the profile registry).
ProfileName = Annotated[str, AfterValidator(_known_profile)]

ENV_PREFIX = "ACTIVITY_SYNC_"


class TopicNames(BaseSettings):
    """Topic names; change them only to run several deployments on one cluster."""

    model_config = SettingsConfigDict(
        env_prefix="ACTIVITY_SYNC_TOPIC_", env_file=".env", extra="ignore"
    )

    events: str = "booking-events"
    events_dlq: str = "booking-events.dlq"
    projections: str = "activity-projections"
    projections_dlq: str = "activity-projections.dlq"
    # The org registry (compacted; streams/salesforce/org_registry.py).
    orgs: str = "salesforce-orgs"


class _VariablesOnly(PydanticBaseSettingsSource):
    """What `source` (the environment or the env file) holds for a section, less what it
    found under `<env_prefix><field name>` for a field whose variable is its alias.

    `validate_by_name` (so code passes `url=`, not the variable) also makes
    pydantic-settings look a field up by its name: without this filter `ACTIVITY_SYNC_URL`
    would be a second, undocumented name of `ACTIVITY_SYNC_STORE`. A variable found under
    the alias is keyed by the alias, so it passes."""

    def __init__(self, settings_cls: type[BaseSettings], source: PydanticBaseSettingsSource):
        super().__init__(settings_cls)
        self.source = source
        self.aliased = {
            name for name, info in settings_cls.model_fields.items() if info.validation_alias
        }

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ reads through the wrapped source

    def __call__(self) -> dict[str, Any]:
        return {key: value for key, value in self.source().items() if key not in self.aliased}


class Section(SettingsWithSecretFiles):
    """A section of `Settings`: its fields read from `<env_prefix><FIELD>` or the variable
    a field names as its `validation_alias`, in the environment or the env file, and its
    `secret_fields` also from `<variable>_FILE` (SettingsWithSecretFiles)."""

    model_config = SettingsConfigDict(validate_by_name=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        init, env, dotenv, secret_files = super().settings_customise_sources(
            settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
        )
        return (
            init,
            _VariablesOnly(settings_cls, env),
            _VariablesOnly(settings_cls, dotenv),
            secret_files,
        )


class AppSection(Section):
    """Which deployment this is: the Faust app's identity and the Salesforce fields it
    writes."""

    model_config = SettingsConfigDict(env_prefix="ACTIVITY_SYNC_APP_")

    id: str = Field(
        default="booking-activity-sync",
        description="Faust app id: the consumer group and the prefix of the tables' topics",
    )
    # Bump to rebuild every table from the start of the topic (see README, backfill).
    version: int = Field(
        default=1, description="bump to rebuild every table from the start of the topic"
    )
    field_mapping: Literal["default", "oncehub"] = Field(
        default="default",
        validation_alias="ACTIVITY_SYNC_FIELD_MAPPING",
        description="the Salesforce fields a projection is written to: `default` or "
        "`oncehub` (the ScheduleOnce package's fields)",
    )

    def mapping(self) -> FieldMapping:
        """The Salesforce field mapping `field_mapping` names."""
        return PRESETS[self.field_mapping]


class BrokerSection(Section):
    """The Kafka cluster: where it is, how to talk to it, and the shape of the topics the
    app creates (partitions, replication)."""

    model_config = SettingsConfigDict(env_prefix="ACTIVITY_SYNC_")

    url: str = Field(
        default="kafka://127.0.0.1:9092",
        validation_alias="ACTIVITY_SYNC_BROKER_URL",
        description="Kafka bootstrap servers in Faust's form; several: "
        "`kafka://a:9092;kafka://b:9092`",
    )
    # Production's broker by default: a deployment that leaves the variable unset gets
    # Apache Kafka's profile, never a dev-kit broker's workarounds (its short session
    # timeout, its end-offset probe: streams/transport/connection.py). The dev kit and
    # the demo name their broker's profile themselves.
    profile: ProfileName = Field(
        default="kafka",
        validation_alias="ACTIVITY_SYNC_BROKER_PROFILE",
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
    # Kafka 4.0's producer default (KIP-1030). With 0 (Faust's), a backfill sent 1.2
    # records per batch: 5 ms doubled that and cut the worker's CPU per event by ~13 %
    # (docs/performance.md, "Producer linger"); live events wait at most 5 ms more a hop.
    producer_linger_ms: int = Field(
        default=5,
        ge=0,
        le=1000,
        description="milliseconds the app's producer waits to fill a batch (tables' "
        "changelogs, projections, dead letters)",
    )
    # aiokafka's (and Kafka's) 16 KiB held ~4 bookings' states per changelog batch in a
    # backfill; 256 KiB cut the worker's CPU per event by ~13 % (docs/performance.md,
    # "Larger producer batches"). A batch must stay under the broker's message.max.bytes
    # (1 MiB by default) and Faust's producer_max_request_size (1,000,000 bytes).
    producer_max_batch_bytes: int = Field(
        default=262_144,
        ge=1_024,
        le=1_000_000,
        description="largest record batch the app's producer builds per partition, in bytes",
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

    @field_validator("url")
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

    def connection(self) -> BrokerConnection:
        """The broker URL with its profile: Faust options, bootstrap servers, end offsets."""
        return BrokerConnection.named(self.url, self.profile)


class StartupSection(Section):
    """What a starting worker checks before it joins the group
    (streams/commands/preflight.py)."""

    model_config = SettingsConfigDict(env_prefix="ACTIVITY_SYNC_STARTUP_")

    timeout: float = Field(
        default=30.0,
        gt=0,
        description="seconds a starting worker waits for the broker and Salesforce before "
        "it gives up with a one-line error",
    )
    org_check: bool = Field(
        default=True,
        description="check the org (check-salesforce: fields, access, API calls left) and "
        "refuse to start when a check fails",
    )


class FoldSection(Section):
    """The fold agent's batches (booking-events → tables → activity-projections).

    The fold agent coalesces per booking within a batch: fewer table writes and sends.
    Live batches are small and quick; once one fills up (a backlog: a backfill, a
    restart) batches grow to the catch-up size and window until the backlog is gone."""

    model_config = SettingsConfigDict(env_prefix="ACTIVITY_SYNC_FOLD_")

    batch_size: int = Field(default=1000, ge=1, description="events the fold agent takes at once")
    batch_window: float = Field(
        default=0.05, gt=0, description="seconds to wait to fill a live fold batch"
    )
    catch_up_batch_size: int = Field(
        default=25_000, ge=1, description="fold batch size while a backlog waits"
    )
    catch_up_window: float = Field(
        default=3.0, gt=0, description="seconds to fill a fold batch while catching up"
    )


class SinkSection(Section):
    """The sink agent (activity-projections → Salesforce): its batches, how long one
    Salesforce attempt may take, and how it backs off from the API limit. The client's own
    retries and backoff are Salesforce settings (`ACTIVITY_SYNC_SALESFORCE_RETRY_*`)."""

    model_config = SettingsConfigDict(env_prefix="ACTIVITY_SYNC_SINK_")

    # Newest-per-booking of a take is written in sObject Collections calls of
    # `salesforce.batch_size` (200) records, so a large take fills every call during a
    # backfill; live traffic flushes every window.
    batch_size: int = Field(
        default=1000, ge=1, le=10_000, description="projections the sink takes at once"
    )
    batch_window: float = Field(
        default=0.5, gt=0, description="seconds to wait to fill a sink batch"
    )
    # The client retries inside one attempt; past the deadline the sink logs that it is
    # holding records and starts the attempt over.
    attempt_deadline: float = Field(
        default=10.0, gt=0, description="seconds one Salesforce attempt may take"
    )
    limit_pause: float = Field(
        default=60.0,
        gt=0,
        description="seconds the sink pauses after a REQUEST_LIMIT_EXCEEDED answer",
    )
    # Every org's calls share one pool (streams/salesforce/call_threads.py); with many
    # orgs writing at once, the default executor's few threads were the queue.
    max_calls: int = Field(
        default=32,
        ge=1,
        le=256,
        description="Salesforce calls in flight at once in a worker, all orgs together",
    )


class TimersSection(Section):
    """The timers every worker runs over the partitions it holds: completion, reconcile
    and retention (streams/worker/pipeline/)."""

    model_config = SettingsConfigDict(env_prefix="ACTIVITY_SYNC_")

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


class StoreSection(Section):
    """Where and how the tables (bookings, synced, due) keep their state, and the memory
    their RocksDB stores may take (docs/performance.md, "Memory").

    Each table keeps one RocksDB store per partition this worker holds, and each store has
    its own block cache and write buffers: Faust's defaults (2 GiB cache, 3 x 64 MiB
    buffers) grow a worker's RSS with the data it has read."""

    model_config = SettingsConfigDict(env_prefix="ACTIVITY_SYNC_")

    # rocksdb:// (state survives restarts without a full changelog replay) is what the
    # demo, the tests and the benches run; memory:// rebuilds every table from its
    # changelog at each start (one smoke test keeps it working).
    url: str = Field(
        default="rocksdb://",
        validation_alias="ACTIVITY_SYNC_STORE",
        description="the table store: rocksdb:// or memory://",
    )
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

    # Faust's default is 3 bits a key: a lookup of a booking the store does not hold (every
    # new booking) then reads a data block from about one SST file in five. 10 bits: ~1 %
    # of files, ~1.25 MB a million keys. (What made lookups slow at a million bookings was
    # no filter at all after a restart: rocksdb_store.StoreOptions, docs/performance.md.)
    rocksdb_bloom_bits: int = Field(
        default=10, ge=1, le=32, description="bloom filter bits per key of every table store"
    )
    # A store under ~256 MB has one level below level 0, so each compaction rewrites the
    # whole store, and with RocksDB's 4 files the compaction CPU of a write grows with the
    # bookings held. 16 files cut it by a third to a half in a replay of 250,000 bookings,
    # but held the live p99 of `make bench-orgs` over 1 s (121-135 of 198 orgs within it,
    # against 198 with 4): RocksDB's 4 is the default again (docs/performance.md, "Scale").
    rocksdb_level0_files: int = Field(
        default=4,
        ge=2,
        le=64,
        description="files a table store's level 0 gathers before they are compacted",
    )
    # Each table has a changelog topic, and a store's changelog offset is written into the
    # store itself: what a crash takes from the memtables (offset included) is replayed
    # from the changelog at the next start, as Kafka Streams does with its RocksDB. The log
    # cost ~4 us of the event loop's CPU a write (docs/performance.md, "Scale").
    rocksdb_wal: bool = Field(
        default=False,
        description="RocksDB's write-ahead log in every table store (off: the changelog "
        "restores what a crash loses)",
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
            "bloom_filter_size": self.rocksdb_bloom_bits,
            "level0_files": self.rocksdb_level0_files,
            "wal": int(self.rocksdb_wal),
            "memory_budget_mb": self.rocksdb_memory_mb,
        }


class WebSection(Section):
    """The worker's HTTP server: booking views, health and metrics
    (streams/worker/watch/web.py)."""

    model_config = SettingsConfigDict(env_prefix="ACTIVITY_SYNC_WEB_")
    # ACTIVITY_SYNC_WEB_TOKEN_FILE: the token from a file (a Docker or Kubernetes secret).
    secret_fields = ("token",)

    enabled: bool = Field(default=True, description="run the worker's HTTP server")
    # Faust forwards /bookings/{id} to the worker holding the booking, at this host.
    host: str = Field(
        default="127.0.0.1", description="the host other workers use to reach this one"
    )
    bind: str = Field(default="127.0.0.1", description="the interface to listen on")
    port: int = Field(default=6066, description="the HTTP port")
    # Unset: those views answer loopback clients only, and a worker bound to another
    # interface refuses to start (streams/worker/watch/web.py).
    token: SecretStr = Field(
        default=SecretStr(""),
        description="bearer token every HTTP view but /health/ and /metrics/ requires "
        "(or ACTIVITY_SYNC_WEB_TOKEN_FILE)",
    )


class ProcessSection(Section):
    """Tuning of the worker process itself: glibc's heap and memory profiling."""

    model_config = SettingsConfigDict(env_prefix="ACTIVITY_SYNC_")

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
SECTIONS: tuple[type[Section], ...] = (
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


def nested_settings(settings_cls: type[BaseSettings]) -> dict[str, type[BaseSettings]]:
    """The fields of `settings_cls` that are settings of their own, with their classes."""
    found: dict[str, type[BaseSettings]] = {}
    for name, info in settings_cls.model_fields.items():
        model = info.annotation
        if isinstance(model, type) and issubclass(model, BaseSettings):
            found[name] = model
    return found


def _refuse_unknown(model: type[BaseSettings], arguments: Mapping[str, Any]) -> None:
    """A nested settings ignores what it does not know (`extra="ignore"`: the env file
    holds every section's variables); an argument it does not know is a mistake, such as a
    flat name of before the sections."""
    known = set(model.model_fields)
    known |= {str(info.validation_alias) for info in model.model_fields.values()}
    errors: list[InitErrorDetails] = [
        {"type": "extra_forbidden", "loc": (key,), "input": value}
        for key, value in arguments.items()
        if key not in known
    ]
    if errors:
        raise ValidationError.from_exception_data(model.__name__, errors, hide_input=True)


class _NestedSettingsSource(PydanticBaseSettingsSource):
    """Each nested settings field built by its own class (its prefix, its `*_FILE`
    secrets) from the arguments given for it and the environment and env file `Settings`
    was given.

    An argument naming some of a section's fields (`fold={"batch_size": 10}`) leaves the
    others to the environment, as a flat argument did before the sections; a section given
    whole (an instance) is kept as it is."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        init: PydanticBaseSettingsSource,
        dotenv: PydanticBaseSettingsSource,
    ):
        super().__init__(settings_cls)
        self.given: dict[str, Any] = (
            init.init_kwargs if isinstance(init, InitSettingsSource) else {}
        )
        self.env_file = dotenv.env_file if isinstance(dotenv, DotEnvSettingsSource) else None
        self.encoding = (
            dotenv.env_file_encoding if isinstance(dotenv, DotEnvSettingsSource) else None
        )

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ builds each nested settings whole

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, model in nested_settings(self.settings_cls).items():
            given = self.given.get(name)
            if isinstance(given, model):
                values[name] = given
            elif given is None or isinstance(given, Mapping):
                # pydantic would build a nested settings from a mapping too, but with the
                # default env file rather than this one.
                arguments = dict(given or {})
                _refuse_unknown(model, arguments)
                values[name] = model(
                    _env_file=self.env_file, _env_file_encoding=self.encoding, **arguments
                )
            # Anything else: the arguments' source hands it on, and pydantic says why not.
        return values


class Settings(BaseSettings):
    """The worker's settings: a section per concern, and the topic names and Salesforce
    connection, each nested settings with variables of its own (this module's docstring
    lists them). `Settings` itself reads no variable."""

    # A misspelt argument (a flat name of before the sections) fails instead of being
    # ignored; a validation error never echoes its input (it may be a secret).
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="forbid", hide_input_in_errors=True
    )

    app: AppSection = Field(default_factory=AppSection, description="the deployment")
    broker: BrokerSection = Field(default_factory=BrokerSection, description="the Kafka cluster")
    startup: StartupSection = Field(
        default_factory=StartupSection, description="a starting worker's checks"
    )
    fold: FoldSection = Field(default_factory=FoldSection, description="the fold agent")
    sink: SinkSection = Field(default_factory=SinkSection, description="the sink agent")
    timers: TimersSection = Field(default_factory=TimersSection, description="the timers")
    store: StoreSection = Field(default_factory=StoreSection, description="the table store")
    web: WebSection = Field(default_factory=WebSection, description="the HTTP server")
    process: ProcessSection = Field(
        default_factory=ProcessSection, description="the worker process's tuning"
    )
    topics: TopicNames = Field(
        default_factory=TopicNames, description="topic names (ACTIVITY_SYNC_TOPIC_*)"
    )
    salesforce: SalesforceSettings = Field(
        default_factory=SalesforceSettings,
        description="the Salesforce connection (ACTIVITY_SYNC_SALESFORCE_*)",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Each nested settings from its arguments and its own variables first (a built
        # section wins over the mapping it was built from), then the other arguments,
        # refused (extra="forbid"). Not the environment: it would take ACTIVITY_SYNC_STORE
        # (the store's URL) for the whole `store` section.
        nested = _NestedSettingsSource(settings_cls, init_settings, dotenv_settings)
        return nested, init_settings

    def without_web(self) -> Settings:
        """These settings with the web server off (`activity-sync worker --without-web`)."""
        return self.model_copy(update={"web": self.web.model_copy(update={"enabled": False})})


def variable(model: type[BaseSettings], field: str) -> str:
    """The environment variable `field` of a nested settings class is read from."""
    alias = model.model_fields[field].validation_alias
    if isinstance(alias, str):
        return alias
    return f"{model.model_config.get('env_prefix', '')}{field}".upper()


def variables() -> dict[str, str]:
    """Every variable the worker reads, with the attribute it sets
    (`ACTIVITY_SYNC_FOLD_BATCH_SIZE`: `fold.batch_size`); a secret's `<variable>_FILE`
    sets the secret."""
    found: dict[str, str] = {}
    for section, model in nested_settings(Settings).items():
        for name in model.model_fields:
            found[variable(model, name)] = f"{section}.{name}"
        for name in getattr(model, "secret_fields", ()):
            found[f"{variable(model, name)}_FILE"] = f"{section}.{name}"
    return found


def error_variable(title: str, loc: Sequence[str | int]) -> str:
    """The variable a validation error is about, from the model pydantic names it by
    (`title`: `Settings` or a nested settings class) and its location; empty for an error
    of a whole model."""
    nested = nested_settings(Settings)
    by_title: dict[str, type[BaseSettings]] = {m.__name__: m for m in nested.values()}
    parts = [str(part) for part in loc]
    model = by_title.get(title)
    if title == Settings.__name__ and parts and parts[0] in nested:  # an argument
        model, parts = nested[parts[0]], parts[1:]
    if not parts:
        return ""
    if model is None:
        return f"{ENV_PREFIX}{'_'.join(parts)}".upper()
    first, rest = parts[0], parts[1:]
    if first in model.model_fields:
        return "_".join([variable(model, first), *rest]).upper()
    if first.upper().startswith(ENV_PREFIX):  # read from the environment: by its alias
        return "_".join([first, *rest]).upper()
    return ".".join([model.__name__, *parts])  # an argument the model does not know
