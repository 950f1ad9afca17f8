"""The app's Faust consumer, for both broker profiles: Faust's aiokafka consumer with
the ack guard (`streams.transport.acks`), one flow race per fetch (`streams.transport.drain`)
and a short fetch wait.

Faust 0.15.3 creates its aiokafka consumer with a hard-coded `fetch_max_wait_ms=1500`.
On Apache Kafka that held the live path: `make bench` at 500 ev/s measured a booking's
latency (event produced to Event in Salesforce, two consumer hops) at p50 2.65 s and
p99 3.84 s on a quiet machine; with the wait at 100 ms, p50 0.43 s and p99 0.80 s
(docs/performance.md, "Live p99 on Apache Kafka"). An idle consumer then asks the
broker ten times a second instead of once in 1.5 s, which neither side notices.

Faust picks a transport by the scheme of its `broker_consumer` URL; the `kafka`
profile names `kafka+sync://` (registered here), the `embedded` profile `tansu://`
(`streams.transport.tansu`, this consumer plus Tansu's corrections). The app's producer
comes from the same transport (`streams.transport.producer`: room for a batch's table
writes), and so does topic creation (the app's topics, the tables' changelogs, Faust's
leader topic): retried here while a node is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from aiokafka.errors import KafkaConnectionError, NodeNotReadyError
from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.transport import acks, producer
from streams.transport.drain import DrainPerFetch

SCHEME = "kafka+sync"
FETCH_MAX_WAIT_MS = 100
# Topic creation asked again after a node that is down refused it, for this long in all:
# Kafka fences a broker that stopped heartbeating after broker.session.timeout.ms (9 s).
CREATE_TOPIC_RETRY_S = 1.0
CREATE_TOPIC_PATIENCE_S = 60.0
# A created topic is waited for until the cluster's metadata lists it (`listed`).
LISTED_PATIENCE_S = 10.0
LISTED_POLL_S = 0.05

log = logging.getLogger(__name__)


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, creating its aiokafka consumer with a short fetch wait."""

    fetch_max_wait_ms = FETCH_MAX_WAIT_MS

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka keeps the value and hands it to its fetcher when the consumer starts.
        consumer._fetch_max_wait_ms = self.fetch_max_wait_ms
        return consumer


class Consumer(DrainPerFetch, acks.Consumer):
    """Faust's aiokafka consumer: acks as `acks.Consumer`, drain loop as `DrainPerFetch`,
    its thread `ConsumerThread`."""

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer
    Producer = producer.Producer

    async def _create_topic(
        self,
        owner: Any,
        client: Any,
        topic: str,
        partitions: int,
        replication: int,
        **kwargs: Any,
    ) -> None:
        """Faust's topic creation, asked again when the node it picked is down.

        Faust sends its metadata request to the first node of the cluster's metadata and
        CreateTopics to the controller that names, and gives up at the first refusal.
        A broker that died is listed until Kafka fences it (and one restarting, until it
        is back): a worker started meanwhile exited with NodeNotReadyError's traceback
        (chaos on three nodes: a worker restarted 8 s after the leader's SIGKILL). With
        fresh metadata, another node answers, or the same one once it is back."""
        deadline = time.monotonic() + CREATE_TOPIC_PATIENCE_S
        while True:
            try:
                await super()._create_topic(owner, client, topic, partitions, replication, **kwargs)
                await listed(client, topic)
                return
            except (NodeNotReadyError, KafkaConnectionError) as exc:
                if time.monotonic() + CREATE_TOPIC_RETRY_S >= deadline:
                    raise
                log.warning("creating topic %r: %s; asking again", topic, exc)
            await asyncio.sleep(CREATE_TOPIC_RETRY_S)
            with contextlib.suppress(Exception):  # the next attempt reports what is wrong
                await asyncio.wait_for(client.force_metadata_update(), 10.0)


async def listed(client: Any, topic: str, patience_s: float = LISTED_PATIENCE_S) -> None:
    """Wait until the cluster's metadata lists `topic` (at most `patience_s`, then go on).

    A broker answers CreateTopics before its metadata lists the topic. The consumer
    subscribes right after the tables' changelogs are created, and a group assignment
    made from metadata without one leaves that topic's partitions unassigned until the
    next rebalance: a worker that created its due table's changelog and joined 21 ms
    later held no due partition, so its timers ran on nothing for minutes
    (`test_the_due_index_follows_reschedules_and_completions` under load)."""
    deadline = time.monotonic() + patience_s
    while topic not in client.cluster.topics():
        if time.monotonic() >= deadline:
            log.warning("topic %r not yet listed in the cluster's metadata; going on", topic)
            return
        await asyncio.sleep(LISTED_POLL_S)
        with contextlib.suppress(Exception):  # a broker that does not answer: ask again
            await asyncio.wait_for(client.force_metadata_update(), 10.0)


TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"
