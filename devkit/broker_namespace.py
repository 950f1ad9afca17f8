"""One user's share of a broker: its own app id and topic names.

The test suite starts one Apache Kafka for the whole run; each test gets a namespace on
it (a topic prefix such as `t0042-`), so no test sees another's topics, consumer groups
or tables, exactly as two deployments sharing one cluster are kept apart in production
(`ACTIVITY_SYNC_APP_ID` and `ACTIVITY_SYNC_TOPIC_*`). The Faust changelogs follow the
app id, so `topic("booking-activity-sync-due-changelog")` names a namespace's changelog
too. Without a prefix the namespace is the broker itself with the default names (the
demo, the benches, chaos, an embedded broker of a test's own).

    space = BrokerNamespace.of(cluster, prefix="t0001-")
    await space.create_topics()          # the app's topics, as deployment does
    space.env                            # ACTIVITY_SYNC_* for a worker or a command
    space.topic("booking-events")        # "t0001-booking-events"
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from devkit.broker import EmbeddedBroker
from devkit.kafka import KafkaCluster
from streams.transport.connection import BrokerConnection
from streams.worker.settings import AppSection, TopicNames

DEFAULT_APP_ID = str(AppSection.model_fields["id"].default)
# The app's own topics by their setting (ACTIVITY_SYNC_TOPIC_<FIELD>) and default name.
APP_TOPICS: dict[str, str] = {
    name: str(info.default) for name, info in TopicNames.model_fields.items()
}
# The org registry is a compacted topic, as `activity-sync orgs` creates it.
ORGS_TOPIC = APP_TOPICS["orgs"]
COMPACTED = {"cleanup.policy": "compact"}


@dataclass(frozen=True)
class BrokerNamespace:
    """A broker URL and profile, and the prefix of every name this user owns."""

    url: str
    bootstrap: str
    profile: str
    prefix: str = ""
    replication_factor: int = 1
    min_insync_replicas: int = 1
    partitions: int = 4

    @classmethod
    def of(
        cls, broker: BrokerNamespace | EmbeddedBroker | KafkaCluster, prefix: str = ""
    ) -> BrokerNamespace:
        if isinstance(broker, BrokerNamespace):
            return broker
        if isinstance(broker, EmbeddedBroker):
            return cls(broker.url, broker.bootstrap, "embedded", prefix)
        return cls(
            broker.url,
            broker.bootstrap,
            "kafka",
            prefix,
            replication_factor=broker.replication_factor,
            min_insync_replicas=broker.min_insync_replicas,
        )

    @property
    def connection(self) -> BrokerConnection:
        return BrokerConnection.named(self.url, self.profile)

    @property
    def app_id(self) -> str:
        return self.prefix + DEFAULT_APP_ID

    def topic(self, name: str) -> str:
        """A default topic name (or a changelog's, `booking-activity-sync-...`) as this
        namespace has it."""
        return self.prefix + name

    @property
    def env(self) -> dict[str, str]:
        """The ACTIVITY_SYNC_* settings that point a worker or a command at this
        namespace: the broker, its profile, the app id, the topics, the replication."""
        env = {
            "ACTIVITY_SYNC_BROKER_URL": self.url,
            "ACTIVITY_SYNC_BROKER_PROFILE": self.profile,
            "ACTIVITY_SYNC_REPLICATION_FACTOR": str(self.replication_factor),
        }
        if self.min_insync_replicas > 1:
            env["ACTIVITY_SYNC_MIN_INSYNC_REPLICAS"] = str(self.min_insync_replicas)
        if self.prefix:
            env["ACTIVITY_SYNC_APP_ID"] = self.app_id
            env.update(
                {
                    f"ACTIVITY_SYNC_TOPIC_{field.upper()}": self.topic(name)
                    for field, name in APP_TOPICS.items()
                }
            )
        return env

    async def create_topics(self, names: list[str] | None = None) -> None:
        """Create the app's topics (or `names`, default names) with the worker's partition
        count, before anything produces to them: the broker creates no topic by itself."""
        wanted = [self.topic(name) for name in (names or list(APP_TOPICS.values()))]
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            answer = await admin.create_topics(
                [
                    NewTopic(
                        name,
                        self.partitions,
                        self.replication_factor,
                        topic_configs=COMPACTED if name == self.topic(ORGS_TOPIC) else {},
                    )
                    for name in wanted
                ]
            )
        finally:
            await admin.close()
        for topic, code, *_ in answer.topic_errors:
            if code not in (0, TopicAlreadyExistsError.errno):
                raise RuntimeError(f"creating topic {topic} failed: {for_code(code).__name__}")

    async def delete_topics(self) -> None:
        """Delete every topic of this namespace (the Kafka suite's teardown: a broker
        shared by a whole run keeps only the topics of tests still running)."""
        if not self.prefix:
            raise ValueError("only a prefixed namespace deletes its topics")
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            ours = [name for name in await admin.list_topics() if name.startswith(self.prefix)]
            if ours:
                await admin.delete_topics(ours)
        finally:
            await admin.close()
