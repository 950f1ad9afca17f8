"""Configuration: environment variables prefixed `ACTIVITY_SYNC_`, or an env file.

Everything an operator sets lives here; the Faust app, the agents and the CLI only
read a `Settings`. Broker quirks are handled in `broker_profile_options()`, one
named profile per broker kind, so no workaround is spread through the code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.salesforce.settings import SalesforceSettings

BrokerProfile = Literal["embedded", "kafka"]


class TopicNames(BaseSettings):
    """Topic names; change them only to run several deployments on one cluster."""

    model_config = SettingsConfigDict(env_prefix="ACTIVITY_SYNC_TOPIC_", extra="ignore")

    events: str = "booking-events"
    events_dlq: str = "booking-events.dlq"
    projections: str = "activity-projections"
    projections_dlq: str = "activity-projections.dlq"


class Settings(BaseSettings):
    """The worker's settings. Field `foo` is read from `ACTIVITY_SYNC_FOO`."""

    model_config = SettingsConfigDict(
        env_prefix="ACTIVITY_SYNC_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    app_id: str = "booking-activity-sync"
    # Bump to rebuild every table from the start of the topic (see README, backfill).
    app_version: int = 1
    broker_url: str = "kafka://127.0.0.1:9092"
    broker_profile: BrokerProfile = "embedded"
    partitions: int = Field(default=4, ge=1)
    replication_factor: int = Field(default=1, ge=1)
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
    # behind for two sweeps (a projection lost to a crash; see streams/core/sync_gaps.py).
    reconcile_interval: float = Field(default=60.0, gt=0)

    topics: TopicNames = Field(default_factory=TopicNames)
    salesforce: SalesforceSettings = Field(default_factory=SalesforceSettings)

    def broker_profile_options(self) -> dict[str, Any]:
        """Faust options for the broker kind, each workaround explained once."""
        if self.broker_profile == "kafka":
            return {
                "broker_session_timeout": 30.0,
                "broker_heartbeat_interval": 3.0,
                # Faust's transport with the rebalance ack guard and a cheaper drain
                # loop (streams/transport/consumer.py).
                "broker_consumer": self.broker_url.replace("kafka://", "kafka+sync://"),
            }
        return {
            # Tansu makes a consumer-group join wait session_timeout/2: keep it short so
            # a worker starts (and a killed one is replaced) in seconds, not tens.
            "broker_session_timeout": 6.0,
            "broker_heartbeat_interval": 1.0,
            # Tansu holds a fetch for half of Faust's hard-coded 1.5 s wait, and answers
            # ListOffsets(latest) short of the newest batch's tail: consume through a
            # transport that corrects both (streams/transport/tansu.py).
            "broker_consumer": self.broker_url.replace("kafka://", "tansu://"),
        }
