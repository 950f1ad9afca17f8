"""The app's producer and the topics it creates (streams/worker/app.py): acks=all, and the
replication and min.insync.replicas of its topics and its tables' changelogs."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import faust
import pytest

from streams.worker import app as worker_app
from streams.worker.app import create_app, new_table, new_topic
from streams.worker.settings import Settings

DURABLE = {"min.insync.replicas": "2"}


def settings(**broker: Any) -> Settings:
    return Settings(_env_file=None, app={"id": "app-test"}, broker=broker)  # type: ignore[call-arg]


async def declared(topic: faust.TopicT) -> dict[str, Any]:
    """What Faust asks the broker for when it creates `topic` (CreateTopics)."""
    created: list[dict[str, Any]] = []

    class Producer:
        async def create_topic(self, **request: Any) -> None:
            created.append(request)

    async def producer() -> Producer:
        return Producer()

    topic._get_producer = producer  # type: ignore[attr-defined]
    await topic.declare()
    (request,) = created
    return request


@pytest.mark.parametrize("profile", ["kafka", "embedded"])
def test_the_producer_waits_for_every_in_sync_replica(profile: str) -> None:
    assert create_app(settings(profile=profile)).conf.producer_acks == -1  # acks=all


def test_the_producer_lingers_5_ms_unless_told_otherwise() -> None:
    # Faust's default is 0: a backfill's changelog writes then left ~1 record per batch.
    assert create_app(settings()).conf.producer_linger == 0.005
    assert create_app(settings(producer_linger_ms=0)).conf.producer_linger == 0


def test_the_producer_builds_256_kib_batches_unless_told_otherwise() -> None:
    # aiokafka's 16 KiB held ~4 bookings' states per changelog batch.
    assert create_app(settings()).conf.producer_max_batch_size == 262_144
    told = settings(producer_max_batch_bytes=16_384)
    assert create_app(told).conf.producer_max_batch_size == 16_384


async def test_the_app_s_topics_get_replication_and_min_insync_replicas() -> None:
    conf = settings(replication_factor=3, min_insync_replicas=2)
    request = await declared(new_topic(create_app(conf), conf, "booking-events"))
    assert (request["topic"], request["replication"]) == ("booking-events", 3)
    assert request["partitions"] == conf.broker.partitions
    assert request["config"] == DURABLE


@pytest.mark.parametrize("value_type", [bytes, None])
async def test_a_table_s_changelog_gets_them_too(value_type: type | None) -> None:
    conf = settings(replication_factor=3, min_insync_replicas=2)
    table = new_table(create_app(conf), conf, "bookings", value_type=value_type)
    request = await declared(table.changelog_topic)
    assert request["topic"] == "app-test-bookings-changelog"
    assert request["replication"] == 3  # Faust's topic_replication_factor
    assert request["config"] == DURABLE
    assert request["compacting"] is True


async def test_unset_min_insync_replicas_leaves_the_broker_s_default() -> None:
    conf = settings(replication_factor=3)
    faust_app = create_app(conf)
    assert (await declared(new_topic(faust_app, conf, "t")))["config"] == {}
    assert (await declared(new_table(faust_app, conf, "x").changelog_topic))["config"] == {}


def test_the_worker_s_topics_and_tables_are_made_by_them() -> None:
    config = worker_app.settings.broker.topic_config()
    assert (
        worker_app.app.conf.topic_replication_factor
        == worker_app.settings.broker.replication_factor
    )
    for topic in worker_app.ALL_TOPICS:
        assert topic.config == config
        assert topic.replicas == worker_app.settings.broker.replication_factor
    tables = (worker_app.bookings, worker_app.synced, worker_app.due_table.table)
    for table in tables:
        assert table.faust_table.extra_topic_configs == config
        assert table.faust_table.changelog_topic.config == config


@pytest.mark.parametrize(
    ("faust_settings", "fed"),
    [
        ({}, False),  # Faust's pages that show it are off: no per-event counting
        ({"web_stats_enabled": True}, True),
        ({"web_metrics_enabled": True}, True),
        ({"debug": True}, True),  # turns the stats pages on
    ],
)
async def test_faust_s_monitor_is_fed_only_while_a_faust_page_shows_it(
    faust_settings: dict[str, bool], fed: bool
) -> None:
    faust_app = create_app(settings())
    for name, value in faust_settings.items():
        setattr(faust_app.conf, name, value)
    # The services themselves are not built: some open event loops of their own.
    faust_app.boot_strategy = SimpleNamespace(server=list)  # type: ignore[assignment]
    faust_app.on_init_dependencies()
    assert (faust_app.monitor in set(faust_app.sensors)) is fed
