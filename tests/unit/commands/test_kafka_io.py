"""Broker URLs for the operator commands' Kafka clients (streams/commands/kafka_io.py)."""

from __future__ import annotations

import pytest

from streams.commands.base import UserError
from streams.commands.kafka_io import bootstrap_servers
from streams.transport.connection import BrokerConnection


def test_bootstrap_servers_from_the_connection() -> None:
    assert bootstrap_servers(BrokerConnection.named("kafka://a:9092", "kafka")) == ["a:9092"]


def test_a_url_without_a_server_is_a_one_line_error() -> None:
    with pytest.raises(UserError, match=r"no Kafka broker in ' ; ' \(set ACTIVITY_SYNC_BROKER_URL"):
        bootstrap_servers(BrokerConnection.named(" ; ", "embedded"))
