"""Every worker's copy of the org registry (streams/salesforce/org_registry.py), kept
current from its compacted topic while the worker runs.

Guarantees:
- Each worker reads every partition of the registry topic from the beginning, outside
  any consumer group, and then follows it: an `orgs add`, a credential rotation or an
  `orgs remove` reaches every worker within about a second (`FOLLOW_WAIT_MS`), with no
  restart. `caught_up` is set once the records up to the end offsets seen at start are
  read.
- A record that is not a connection is logged, counted in `unreadable`, and skipped;
  the follower never stops on one. A broker outage only delays it (the client retries).
- The registry topic is created (compacted) at start when it does not exist yet.
- Each registered org is checked as `check-salesforce` checks the default org, when it
  appears or changes (streams/worker/org_checks.py); `/health/` shows the results and
  a failing org never fails the worker.

Why not a Faust GlobalTable: a global table written by another process (here the
`orgs` command) does not reach every worker reliably in Faust (faust-streaming issue
#283, open), and the registry must. Plain aiokafka, assigned every partition, is what a
global table does underneath, without the standby bookkeeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from mode import Service

from streams.runtime.consumers import refresh_metadata
from streams.salesforce.org_registry import OrgRegistry
from streams.transport.connection import BrokerConnection
from streams.worker.org_checks import OrgChecks
from streams.worker.settings import Settings

log = logging.getLogger(__name__)

FOLLOW_WAIT_MS = 500  # a fetch's wait for new records: how soon a change is seen
RETRY_S = 1.0
CHECK_INTERVAL_S = 60.0  # how often failing orgs are looked at again (when due)


def registry_topic(settings: Settings) -> NewTopic:
    """The registry topic as it is created: compacted, with the deployment's partitions,
    replication and min.insync.replicas (the `orgs` command and every worker)."""
    return NewTopic(
        settings.topics.orgs,
        num_partitions=settings.broker.partitions,
        replication_factor=settings.broker.replication_factor,
        topic_configs={"cleanup.policy": "compact", **settings.broker.topic_config()},
    )


async def create_registry_topic(client: AIOKafkaAdminClient, topic: NewTopic) -> None:
    """Create `topic` unless it exists, or another process creates it meanwhile."""
    if topic.name in await client.list_topics():
        return
    with contextlib.suppress(TopicAlreadyExistsError):
        await client.create_topics([topic])


class OrgDirectory:
    """The registry as this worker sees it: `registry.orgs` by name, swapped whole on
    each change (readers never see half of one); `caught_up` once read to its end."""

    def __init__(self, checks: OrgChecks) -> None:
        self.registry = OrgRegistry()
        self.caught_up = asyncio.Event()
        # Each registered org's check (streams/worker/org_checks.py), for /health/.
        self.checks = checks
        self.changed = asyncio.Event()
        # Bookings of this worker's partitions parked for their org at the last
        # reconcile sweep, by org (streams/worker/pipeline/reconcile.py).
        self.waiting: dict[str, int] = {}

    def publish(self, registry: OrgRegistry) -> None:
        self.registry = OrgRegistry(dict(registry.orgs), list(registry.unreadable))
        self.changed.set()


class RegistryFollower(Service):
    """Reads the registry topic into a directory while the worker runs."""

    def __init__(self, directory: OrgDirectory, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.directory = directory
        self.topic = settings.topics.orgs
        self.new_topic = registry_topic(settings)
        self.broker: BrokerConnection = settings.broker.connection()

    @classmethod
    def bound(cls, directory: OrgDirectory, settings: Settings) -> type[RegistryFollower]:
        """The follower as a class Faust can start (`app.service` instantiates it with
        only the loop and the beacon)."""

        class Bound(cls):  # type: ignore[valid-type,misc]
            def __init__(self, **kwargs: Any) -> None:
                super().__init__(directory, settings, **kwargs)

        return Bound

    async def ensure_topic(self) -> None:
        """Create the registry topic (compacted) unless it exists."""
        client = AIOKafkaAdminClient(bootstrap_servers=self.broker.bootstrap_servers)
        await client.start()
        try:
            await create_registry_topic(client, self.new_topic)
        finally:
            await client.close()

    @Service.task
    async def _follow(self) -> None:
        while not self.should_stop:
            try:
                await self.ensure_topic()
                await self._read()
            except (KafkaError, OSError) as exc:
                log.warning("org registry %s: %s; reading it again", self.topic, exc)
                await self.sleep(RETRY_S)

    async def _read(self) -> None:
        client = AIOKafkaConsumer(
            bootstrap_servers=self.broker.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await client.start()
        try:
            await refresh_metadata(client)
            found = client.partitions_for_topic(self.topic)
            while not found:
                await self.sleep(RETRY_S)
                if self.should_stop:
                    return
                await refresh_metadata(client)
                found = client.partitions_for_topic(self.topic)
            partitions = [TopicPartition(self.topic, p) for p in sorted(found or ())]
            client.assign(partitions)
            await client.seek_to_beginning(*partitions)
            ends = await self.broker.end_offsets(client, partitions)
            registry = OrgRegistry()
            while not self.should_stop:
                batch = await client.getmany(timeout_ms=FOLLOW_WAIT_MS)
                for records in batch.values():
                    for record in records:
                        position = f"{record.partition}:{record.offset}"
                        before = len(registry.unreadable)
                        registry.apply(record.key, record.value, position)
                        if len(registry.unreadable) > before:
                            log.error("org registry: skipped %s", registry.unreadable[-1])
                caught_up = self.directory.caught_up
                if not caught_up.is_set() and await self._at(client, ends):
                    self.directory.publish(registry)
                    caught_up.set()
                    log.info("org registry: %d orgs registered", len(registry.orgs))
                elif batch and caught_up.is_set():
                    self.directory.publish(registry)
        finally:
            await client.stop()

    @Service.task
    async def _check_orgs(self) -> None:
        """Check each org when it appears or changes, a failing one again now and then
        (streams/worker/org_checks.py); never in the way of following the registry."""
        await self.directory.caught_up.wait()
        while not self.should_stop:
            self.directory.changed.clear()
            await self.directory.checks.refresh(self.directory.registry.orgs)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.directory.changed.wait(), CHECK_INTERVAL_S)

    @staticmethod
    async def _at(client: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
        positions = [await client.position(tp) for tp in ends]
        return all(p >= end for p, end in zip(positions, ends.values(), strict=True))
