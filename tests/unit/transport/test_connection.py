"""The broker seam: a URL and its profile (streams/transport/connection.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import pytest
from aiokafka import TopicPartition
from pydantic import ValidationError

from devkit.broker import free_port
from streams.transport import consumer, tansu
from streams.transport.connection import (
    EMBEDDED_PROFILE,
    KAFKA_PROFILE,
    PROFILES,
    BrokerConnection,
    profile_named,
)
from streams.worker.settings import Settings

TP0, TP1 = TopicPartition("t", 0), TopicPartition("t", 1)


class FakeClient:
    """Answers ListOffsets(latest) as it was told to."""

    def __init__(self, ends: dict[TopicPartition, int]) -> None:
        self.ends = ends

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.ends[tp] for tp in partitions}


@pytest.mark.parametrize(
    ("profile", "url", "session_timeout", "heartbeat", "consumer_url"),
    [
        (
            "kafka",
            "kafka://a:9092;kafka://b:9093",
            30.0,
            3.0,
            "kafka+sync://a:9092;kafka+sync://b:9093",
        ),
        ("embedded", "kafka://127.0.0.1:9092", 6.0, 1.0, "tansu://127.0.0.1:9092"),
    ],
)
def test_faust_options_per_profile(
    profile: str, url: str, session_timeout: float, heartbeat: float, consumer_url: str
) -> None:
    assert BrokerConnection.named(url, profile).faust_options() == {
        "broker": url,
        "broker_session_timeout": session_timeout,
        "broker_heartbeat_interval": heartbeat,
        "broker_consumer": consumer_url,
    }


def test_consumer_url_names_each_server_with_the_transport_scheme() -> None:
    broker = BrokerConnection.named("kafka://a:1;b:2", "embedded")
    assert broker.consumer_url() == "tansu://a:1;tansu://b:2"
    assert broker.faust_options(consumer_scheme="other")["broker_consumer"] == (
        "other://a:1;other://b:2"
    )
    # The schemes are the ones the transport modules register with Faust.
    assert KAFKA_PROFILE.consumer_scheme == consumer.SCHEME
    assert EMBEDDED_PROFILE.consumer_scheme == tansu.SCHEME


def test_bootstrap_servers_from_faust_broker_urls() -> None:
    def servers(url: str) -> list[str]:
        return BrokerConnection.named(url, "kafka").bootstrap_servers

    assert servers("kafka://a:9092") == ["a:9092"]
    assert servers("kafka://a:9092;kafka://b:9093") == ["a:9092", "b:9093"]
    assert servers("kafka://a:9092/;b:9093") == ["a:9092", "b:9093"]
    assert servers("a:1,b:2") == ["a:1", "b:2"]
    with pytest.raises(ValueError, match="no Kafka broker in ' ; '"):
        servers(" ; ")


async def test_kafka_profile_keeps_listoffsets_as_the_broker_answered() -> None:
    assert KAFKA_PROFILE.end_offset_correction is None
    # Nothing listens there: a correction would have to read the partitions, and fail.
    broker = BrokerConnection(f"kafka://127.0.0.1:{free_port()}", KAFKA_PROFILE)
    client = FakeClient({TP0: 1, TP1: 0})
    assert await broker.end_offsets(client, [TP0, TP1]) == {TP0: 1, TP1: 0}  # type: ignore[arg-type]


async def test_embedded_profile_corrects_listoffsets() -> None:
    assert EMBEDDED_PROFILE.end_offset_correction is tansu.exact_end_offsets
    calls: list[tuple[list[str], dict[TopicPartition, int]]] = []

    async def correct(
        servers: list[str], reported: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, int]:
        calls.append((servers, dict(reported)))
        return {tp: end + 9 if end else end for tp, end in reported.items()}

    profile = dataclasses.replace(EMBEDDED_PROFILE, end_offset_correction=correct)
    broker = BrokerConnection("kafka://h:1;kafka://h:2", profile)
    client = FakeClient({TP0: 1, TP1: 0})
    assert await broker.end_offsets(client, [TP0, TP1]) == {TP0: 10, TP1: 0}  # type: ignore[arg-type]
    assert calls == [(["h:1", "h:2"], {TP0: 1, TP1: 0})]


def test_profiles_by_name() -> None:
    assert sorted(PROFILES) == ["embedded", "kafka"]
    assert profile_named("kafka") is KAFKA_PROFILE
    with pytest.raises(ValueError, match="unknown broker profile 'pulsar'; known: embedded, kafka"):
        profile_named("pulsar")


def test_settings_connect_with_their_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACTIVITY_SYNC_BROKER_PROFILE", raising=False)
    kafka = Settings(broker={"url": "kafka://k:9092", "profile": "kafka"})
    assert kafka.broker.connection() == BrokerConnection("kafka://k:9092", KAFKA_PROFILE)
    # The default is production's broker; the dev kit names the embedded one itself.
    assert Settings(_env_file=None).broker.connection().profile is KAFKA_PROFILE  # type: ignore[call-arg]
    embedded = Settings(broker={"url": "kafka://k:9092", "profile": "embedded"})
    assert embedded.broker.connection().profile is EMBEDDED_PROFILE
    with pytest.raises(ValidationError, match="unknown broker profile"):
        Settings(broker={"profile": "pulsar"})
