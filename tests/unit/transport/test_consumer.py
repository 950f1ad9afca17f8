"""The app's consumer asks the broker with a short fetch wait, on both profiles: Faust's
hard-coded 1500 ms held the live path (streams/transport/consumer.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.transport import consumer, tansu


@pytest.mark.parametrize(
    ("thread_class", "wait_ms"),
    [
        (consumer.ConsumerThread, consumer.FETCH_MAX_WAIT_MS),
        (tansu.ConsumerThread, tansu.FETCH_MAX_WAIT_MS),
    ],
)
def test_the_aiokafka_consumer_waits_briefly_for_a_fetch(
    monkeypatch: pytest.MonkeyPatch, thread_class: type[Any], wait_ms: int
) -> None:
    # Faust's own thread creates the aiokafka consumer with its hard-coded 1500 ms.
    monkeypatch.setattr(
        faust_aiokafka.AIOKafkaConsumerThread,
        "_create_worker_consumer",
        lambda self, transport: SimpleNamespace(_fetch_max_wait_ms=1500),
    )
    thread = object.__new__(thread_class)  # no loop, no connection: just the method
    created = thread._create_worker_consumer(transport=None)
    assert created._fetch_max_wait_ms == wait_ms <= 100


@pytest.mark.parametrize(
    ("consumer_class", "thread_class"),
    [(consumer.Consumer, consumer.ConsumerThread), (tansu.Consumer, tansu.ConsumerThread)],
)
def test_each_profile_s_consumer_uses_its_thread(
    consumer_class: type[Any], thread_class: type[Any]
) -> None:
    made: list[type[Any]] = []

    def record(self: Any, owner: Any, **kwargs: Any) -> None:
        made.append(type(self))

    fake = SimpleNamespace(loop=None, beacon=None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(thread_class, "__init__", record)
        consumer_class._new_consumer_thread(fake)
    assert made == [thread_class]
