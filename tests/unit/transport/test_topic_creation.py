"""Topic creation through the app's transport (streams/transport/consumer.py): Faust
sends its metadata and CreateTopics requests to one node of the cluster's metadata and
gives up at the first refusal; a node that is down but still listed (a broker restarting,
not yet fenced) stopped a worker at its start. Asked again, another node answers."""

from __future__ import annotations

from typing import Any

import faust
import pytest
from aiokafka.errors import KafkaConnectionError, NodeNotReadyError, UnknownError
from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.transport import consumer, tansu


class Cluster:
    def __init__(self, client: Client) -> None:
        self._client = client

    def topics(self) -> set[str]:
        return self._client.listed


class Client:
    """The producer's aiokafka client, as topic creation uses it: its metadata lists
    what was created once `listed_after` more metadata updates have come (a broker
    answers CreateTopics before its metadata lists the topic)."""

    def __init__(self, listed_after: int = 0) -> None:
        self.metadata_updates = 0
        self.listed_after = listed_after
        self.created: set[str] = set()
        self.listed: set[str] = set()
        self.cluster = Cluster(self)

    async def force_metadata_update(self) -> bool:
        self.metadata_updates += 1
        if self.listed_after > 0:
            self.listed_after -= 1
        if self.listed_after == 0:
            self.listed |= self.created
        return True


def creation(monkeypatch: pytest.MonkeyPatch, failures: list[Exception]) -> list[str]:
    """Faust's own creation step fails with `failures`, in order, then creates."""
    created: list[str] = []

    async def really_create(self: Any, owner: Any, client: Any, topic: str, *_: Any, **__: Any):
        if failures:
            raise failures.pop(0)
        created.append(topic)
        client.created.add(topic)
        if client.listed_after == 0:
            client.listed.add(topic)

    monkeypatch.setattr(faust_aiokafka.Transport, "_really_create_topic", really_create)
    monkeypatch.setattr(consumer, "CREATE_TOPIC_RETRY_S", 0.01, raising=False)
    monkeypatch.setattr(consumer, "LISTED_POLL_S", 0.01, raising=False)
    return created


@pytest.mark.parametrize("transport_class", [consumer.Transport, tansu.Transport])
async def test_a_node_down_is_asked_around(
    monkeypatch: pytest.MonkeyPatch, transport_class: type[faust_aiokafka.Transport]
) -> None:
    failures: list[Exception] = [
        NodeNotReadyError("Attempt to send a request to node which is not ready (node id 3)"),
        KafkaConnectionError("Connection at 127.0.0.1:9092 closed"),
    ]
    created = creation(monkeypatch, failures)
    transport = transport_class(["kafka://127.0.0.1:9092"], faust.App("topic-creation-test"))
    client = Client()
    await transport._create_topic(None, client, "app-bookings-changelog", 4, 3)
    assert created == ["app-bookings-changelog"]
    assert client.metadata_updates == 2  # a fresh node list before each new attempt


async def test_other_errors_are_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    created = creation(monkeypatch, [UnknownError("Cannot create topic")])
    transport = consumer.Transport(["kafka://127.0.0.1:9092"], faust.App("topic-creation-test"))
    with pytest.raises(UnknownError):
        await transport._create_topic(None, Client(), "app-bookings-changelog", 4, 3)
    assert created == []


async def test_a_created_topic_is_waited_for_until_the_metadata_lists_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created = creation(monkeypatch, [])
    transport = consumer.Transport(["kafka://127.0.0.1:9092"], faust.App("topic-creation-test"))
    client = Client(listed_after=3)
    await transport._create_topic(None, client, "app-due-changelog", 4, 3)
    assert created == ["app-due-changelog"]
    # Returned only once the metadata listed it: the consumer subscribes next.
    assert "app-due-changelog" in client.cluster.topics()
    assert client.metadata_updates == 3
