"""The dev kit's Apache Kafka (devkit/kafka.py) without starting a JVM: the pinned
version, the nodes' configuration, the cache, and the one-line errors."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest

from devkit import kafka
from devkit.kafka import KafkaCluster, KafkaSetupError


def properties(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key: value for key, value in pairs}


def configured(tmp_path: Path, brokers: int) -> list[dict[str, str]]:
    cluster = KafkaCluster(tmp_path, brokers=brokers)
    voters = ",".join(f"{n.node_id}@{n.host}:{n.controller_port}" for n in cluster.nodes)
    for node in cluster.nodes:
        node.write_config(voters, cluster.replication_factor, cluster.min_insync_replicas)
    return [properties(node.config_path) for node in cluster.nodes]


def test_the_pom_pins_one_kafka_version() -> None:
    version = kafka.pinned_version()
    assert version.count(".") == 2
    assert all(part.isdigit() for part in version.split("."))


@pytest.mark.parametrize(
    ("brokers", "replication", "min_insync"),
    [(1, "1", "1"), (3, "3", "2")],
)
def test_every_node_is_a_combined_kraft_node_of_one_quorum(
    tmp_path: Path, brokers: int, replication: str, min_insync: str
) -> None:
    configs = configured(tmp_path, brokers)
    assert [c["node.id"] for c in configs] == [str(n) for n in range(1, brokers + 1)]
    assert {c["process.roles"] for c in configs} == {"broker,controller"}
    assert len({c["controller.quorum.voters"] for c in configs}) == 1
    assert configs[0]["controller.quorum.voters"].count("@") == brokers
    for config in configs:
        assert config["default.replication.factor"] == replication
        assert config["offsets.topic.replication.factor"] == replication
        assert config["min.insync.replicas"] == min_insync
        assert config["auto.create.topics.enable"] == "false"
        assert config["unclean.leader.election.enable"] == "false"
    assert len({c["log.dirs"] for c in configs}) == brokers  # a log dir of its own each


def test_nodes_take_consecutive_ports_from_the_one_given(tmp_path: Path) -> None:
    cluster = KafkaCluster(tmp_path, brokers=3, port=19092)
    assert cluster.bootstrap == "127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094"
    assert cluster.url.split(";")[0] == "kafka://127.0.0.1:19092"


def test_a_cluster_is_one_node_or_three(tmp_path: Path) -> None:
    with pytest.raises(KafkaSetupError, match="1 or 3"):
        KafkaCluster(tmp_path, brokers=2)


def test_a_cluster_id_is_a_kafka_uuid() -> None:
    ids = {kafka.new_cluster_id() for _ in range(5)}
    assert len(ids) == 5
    for cluster_id in ids:
        assert len(cluster_id) == 22
        assert "=" not in cluster_id
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_a_fetched_version_is_not_fetched_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    libs = tmp_path / "kafka_2.13-9.9.9" / "libs"
    libs.mkdir(parents=True)
    (libs / "kafka_2.13-9.9.9.jar").touch()
    monkeypatch.setenv("PATH", "")  # no mvn: it must not be needed
    found = kafka.fetch("9.9.9", cache=tmp_path)
    assert (found.libs, found.fetched_s) == (libs, None)
    assert found.classpath == f"{libs}/*"


def test_the_cache_is_outside_the_checkout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DEVKIT_KAFKA_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert kafka.cache_dir() == tmp_path / "booking-activity-sync"
    monkeypatch.setenv("DEVKIT_KAFKA_CACHE", str(tmp_path / "mine"))
    assert kafka.cache_dir() == tmp_path / "mine"


@pytest.mark.parametrize(
    ("tool", "hint"),
    [("java", kafka.JAVA_HINT), ("mvn", kafka.MAVEN_HINT)],
)
def test_a_missing_tool_is_one_line_saying_what_to_install(
    tool: str, hint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(KafkaSetupError) as raised:
        kafka.require(tool, hint)
    message = str(raised.value)
    assert "\n" not in message
    assert f"`{tool}` not found" in message
    assert "install" in message


def test_a_fetch_without_maven_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(KafkaSetupError, match="`mvn` not found"):
        kafka.fetch("9.9.9", cache=tmp_path)


def test_a_cluster_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    # 0xF8 encodes to a leading '-': kafka-storage would read that id as an option.
    drawn = iter([uuid.UUID(bytes=b"\xf8" + b"\x00" * 15), uuid.UUID(bytes=b"\x01" * 16)])
    monkeypatch.setattr(kafka.uuid, "uuid4", lambda: next(drawn))
    assert base64.urlsafe_b64encode(b"\xf8" + b"\x00" * 15).startswith(b"-")
    assert kafka.new_cluster_id() == base64.urlsafe_b64encode(b"\x01" * 16).rstrip(b"=").decode()
