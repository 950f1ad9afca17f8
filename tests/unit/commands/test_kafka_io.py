"""Broker URLs for the operator commands' Kafka clients (streams/commands/kafka_io.py)."""

from __future__ import annotations

import pytest

from streams.commands.base import UserError
from streams.commands.kafka_io import bootstrap_servers


def test_bootstrap_servers_from_faust_broker_urls() -> None:
    assert bootstrap_servers("kafka://a:9092") == ["a:9092"]
    assert bootstrap_servers("kafka://a:9092;kafka://b:9093") == ["a:9092", "b:9093"]
    assert bootstrap_servers("a:1,b:2") == ["a:1", "b:2"]
    with pytest.raises(UserError):
        bootstrap_servers(" ; ")
