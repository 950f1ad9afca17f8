"""Apache Kafka on this machine: one combined KRaft node, or a three-node cluster.

The production broker for the tests, `make chaos`, the benches and a developer who
wants the real thing (`python -m devkit kafka`). The broker is the Maven artifact
`org.apache.kafka:kafka_2.13` with its dependencies (`devkit/kafka.pom.xml` pins the
version, the one docker-compose.yml runs), fetched once with Maven into a cache outside
the checkout and run with `java` straight from those jars: no download of a binary
distribution, no Docker.

Each node is combined (`process.roles=broker,controller`) and listens on loopback; a
cluster of three votes in one controller quorum and gives topics replication factor 3
with `min.insync.replicas` 2, so a node may die without refusing `acks=all` writes.

    cluster = KafkaCluster(Path("var/kafka"), brokers=3).start()
    cluster.url            # kafka://127.0.0.1:p1;kafka://127.0.0.1:p2;kafka://127.0.0.1:p3
    cluster.nodes[0].kill()   # SIGKILL one node; .start() brings it back on its own log
    cluster.stop()

A data dir that already holds formatted storage is reused as it is: a cluster stopped
and started again on the same dir keeps its topics and offsets.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import ctypes.util
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from aiokafka import AIOKafkaClient, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from devkit.broker import free_port, stop_process, wait_for_port
from streams.transport.connection import KAFKA_PROFILE, BrokerConnection

POM = Path(__file__).with_name("kafka.pom.xml")
SCALA = "2.13"
PR_SET_PDEATHSIG = 1  # linux/prctl.h
# One line naming what to install when a tool is missing.
JAVA_HINT = "install Java 17 (Debian: apt-get install openjdk-17-jre-headless)"
MAVEN_HINT = "install Maven (Debian: apt-get install maven)"
# Heap per node on a 2-core, 24 GiB machine: a single node gets Kafka's own default of
# 1 GiB; three nodes share the machine with workers, the emulator and the benches.
SINGLE_NODE_HEAP_MB = 1024
CLUSTER_NODE_HEAP_MB = 768
# kafka-run-class.sh's JVM options for the broker.
JVM_OPTIONS = (
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
)
LOG4J = """\
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
log4j.logger.org.apache.kafka.storage.internals.log=WARN
log4j.logger.kafka.log=WARN
log4j.logger.org.apache.kafka.clients=WARN
"""


class KafkaSetupError(RuntimeError):
    """Kafka could not be fetched or started; the message is one line saying why."""


def pinned_version(pom: Path = POM) -> str:
    """The Kafka version `devkit/kafka.pom.xml` pins (its `kafka.version` property)."""
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    found = ET.parse(pom).getroot().find("m:properties/m:kafka.version", namespace)
    if found is None or not found.text:
        raise KafkaSetupError(f"{pom} pins no kafka.version")
    return found.text.strip()


def cache_dir() -> Path:
    """Where fetched Kafka versions live: $DEVKIT_KAFKA_CACHE, else the user's
    cache ($XDG_CACHE_HOME or ~/.cache) under booking-activity-sync/. Outside the
    checkout, so a fresh clone on the same machine fetches nothing."""
    explicit = os.environ.get("DEVKIT_KAFKA_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "booking-activity-sync"


def require(tool: str, hint: str) -> str:
    """The tool's path, or a one-line KafkaSetupError saying what to install."""
    found = shutil.which(tool)
    if found is None:
        raise KafkaSetupError(f"`{tool}` not found on PATH: {hint}")
    return found


@dataclass(frozen=True)
class Distribution:
    """A fetched Kafka: its version and the directory of its jars."""

    version: str
    libs: Path
    # Seconds the Maven fetch took; None when the cache already had it.
    fetched_s: float | None

    @property
    def classpath(self) -> str:
        return str(self.libs / "*")


def fetch(version: str | None = None, cache: Path | None = None) -> Distribution:
    """The pinned Kafka's jars, fetched with Maven into the cache the first time.

    The jars land in a scratch directory first and are moved into place whole, so an
    interrupted fetch (or two at once) never leaves a half-filled cache behind."""
    version = version or pinned_version()
    home = (cache or cache_dir()) / f"kafka_{SCALA}-{version}"
    libs = home / "libs"
    if (libs / f"kafka_{SCALA}-{version}.jar").exists():
        return Distribution(version, libs, None)
    mvn = require("mvn", MAVEN_HINT)
    home.mkdir(parents=True, exist_ok=True)
    scratch = home / f"libs.partial-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    began = time.monotonic()
    result = subprocess.run(
        [
            mvn,
            "-B",
            "-q",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-Dkafka.version={version}",
            f"-DoutputDirectory={scratch}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        shutil.rmtree(scratch, ignore_errors=True)
        lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
        last = lines[-1] if lines else f"exit {result.returncode}"
        raise KafkaSetupError(f"mvn could not fetch Apache Kafka {version}: {last}")
    try:
        scratch.rename(libs)
    except OSError:  # another fetch finished first: keep its copy
        shutil.rmtree(scratch, ignore_errors=True)
    return Distribution(version, libs, time.monotonic() - began)


def die_with_parent() -> None:
    """In a child before exec: SIGKILL it when the thread that started it ends (Linux)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def new_cluster_id() -> str:
    """A KRaft cluster id: a random UUID in Kafka's URL-safe base64 form, never starting
    with '-' (as Kafka's own `Uuid.randomUuid()`): kafka-storage would read such an id as
    an option ("argument --cluster-id/-t: expected one argument"), one start in 64."""
    while True:
        found = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not found.startswith("-"):
            return found


def read_meta(log_dir: Path) -> dict[str, str]:
    """A formatted log dir's meta.properties ({} when the dir is not formatted)."""
    meta = log_dir / "meta.properties"
    if not meta.exists():
        return {}
    pairs = (line.split("=", 1) for line in meta.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs if not key.startswith("#")}


@dataclass
class KafkaNode:
    """One combined KRaft node (broker and controller) of a cluster."""

    node_id: int
    host: str
    port: int
    controller_port: int
    root: Path
    heap_mb: int
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    java: str = field(default="java", init=False, repr=False)
    classpath: str = field(default="", init=False, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.root / "data"

    @property
    def config_path(self) -> Path:
        return self.root / "server.properties"

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def write_config(self, voters: str, replication: int, min_insync: int) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        settings = {
            "node.id": self.node_id,
            "process.roles": "broker,controller",
            "listeners": (
                f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "controller.quorum.voters": voters,
            "log.dirs": self.log_dir,
            # As in production (and docker-compose.yml): topics are created on purpose,
            # with their partition count, never by a stray produce or fetch.
            "auto.create.topics.enable": "false",
            "num.partitions": 1,
            "default.replication.factor": replication,
            "min.insync.replicas": min_insync,
            "offsets.topic.replication.factor": replication,
            "transaction.state.log.replication.factor": replication,
            "transaction.state.log.min.isr": min_insync,
            "unclean.leader.election.enable": "false",
            # A dev cluster: a first consumer-group join is not held 3 s for more members.
            "group.initial.rebalance.delay.ms": 0,
            # Fewer threads and a smaller cleaner buffer than a dedicated broker host: the
            # nodes share 2 cores with the workers; compaction of changelogs still runs.
            "num.network.threads": 2,
            "num.io.threads": 4,
            "background.threads": 4,
            "log.cleaner.dedupe.buffer.size": 32 * 1024 * 1024,
        }
        self.config_path.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
        (self.root / "log4j.properties").write_text(LOG4J)

    def _java(self, main: str, *args: str, heap_mb: int | None = None) -> list[str]:
        heap = [f"-Xms{min(256, heap_mb)}m", f"-Xmx{heap_mb}m"] if heap_mb else ["-Xmx256m"]
        return [
            self.java,
            *heap,
            *JVM_OPTIONS,
            f"-Dlog4j.configuration=file:{self.root / 'log4j.properties'}",
            "-cp",
            self.classpath,
            main,
            *args,
        ]

    def format(self, cluster_id: str) -> None:
        """Format the node's storage for `cluster_id`, unless it already is."""
        if read_meta(self.log_dir):
            return
        result = subprocess.run(
            self._java(
                "kafka.tools.StorageTool",
                "format",
                "--cluster-id",
                cluster_id,
                "--config",
                str(self.config_path),
                "--ignore-formatted",
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            lines = (result.stderr or result.stdout).strip().splitlines()
            raise KafkaSetupError(
                f"formatting node {self.node_id}'s storage failed: "
                f"{lines[-1] if lines else result.returncode}"
            )

    def start(self) -> KafkaNode:
        """Launch the node's JVM (its log in `log_path`); returns at once."""
        if self.running:
            return self
        # Started from the main thread (a test run, a bench), the JVM dies with the
        # process that started it even when that one is killed and never stops it: a
        # JVM left behind would eat the CPU of every later run. (The kernel ties it to
        # the starting *thread*, so a node started from another thread is not tied.)
        tied = threading.current_thread() is threading.main_thread()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self._java("kafka.Kafka", str(self.config_path), heap_mb=self.heap_mb),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own session: a Ctrl-C at the terminal reaches the dev kit, which
                # stops the nodes in order, not every JVM at once.
                start_new_session=True,
                preexec_fn=die_with_parent if tied else None,
            )
        return self

    def wait_listening(self, timeout: float) -> None:
        if not wait_for_port(self.host, self.port, timeout):
            self.stop(5.0)
            raise KafkaSetupError(
                f"Kafka node {self.node_id} did not listen on {self.bootstrap} in "
                f"{timeout:.0f}s; see {self.log_path}"
            )

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM (a controlled shutdown: leadership moves first), SIGKILL after timeout."""
        proc, self.process = self.process, None
        stop_process(proc, timeout)

    def kill(self) -> None:
        """SIGKILL: no controlled shutdown, as in a crash or a power cut."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()


class KafkaCluster:
    """`brokers` combined KRaft nodes on `host`, their storage under `data_dir`.

    `port` is the first node's client port (the others take the next ones); 0 picks
    free ports. Start, use `url` / `bootstrap` / `connection`, stop (or use `with`)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        brokers: int = 1,
        port: int = 0,
        host: str = "127.0.0.1",
        heap_mb: int | None = None,
    ) -> None:
        if brokers not in (1, 3):
            raise KafkaSetupError(f"--brokers must be 1 or 3, not {brokers}")
        self.data_dir = data_dir
        self.host = host
        self.version = pinned_version()
        self.distribution: Distribution | None = None
        heap = heap_mb or (SINGLE_NODE_HEAP_MB if brokers == 1 else CLUSTER_NODE_HEAP_MB)
        ports = [port + n if port else free_port(host) for n in range(brokers)]
        self.nodes = [
            KafkaNode(
                node_id=n + 1,
                host=host,
                port=ports[n],
                controller_port=free_port(host),
                root=data_dir / f"node-{n + 1}",
                heap_mb=heap,
            )
            for n in range(brokers)
        ]

    @property
    def replication_factor(self) -> int:
        return len(self.nodes)

    @property
    def min_insync_replicas(self) -> int:
        """2 of 3 on a cluster (one node may be down), 1 on a single node."""
        return 2 if len(self.nodes) >= 3 else 1

    @property
    def bootstrap(self) -> str:
        """`host:port,host:port,...` for plain Kafka clients."""
        return ",".join(node.bootstrap for node in self.nodes)

    @property
    def url(self) -> str:
        """The broker URL in Faust's form (`kafka://h:p;kafka://h:p`)."""
        return ";".join(f"kafka://{node.bootstrap}" for node in self.nodes)

    @property
    def connection(self) -> BrokerConnection:
        return BrokerConnection(self.url, KAFKA_PROFILE)

    def node(self, node_id: int) -> KafkaNode:
        return next(node for node in self.nodes if node.node_id == node_id)

    def start(self, timeout: float = 120.0) -> KafkaCluster:
        """Fetch Kafka if needed, format new storage, start every node and wait until
        all of them are in the cluster's metadata."""
        java = require("java", JAVA_HINT)
        self.distribution = fetch(self.version)
        voters = ",".join(
            f"{node.node_id}@{node.host}:{node.controller_port}" for node in self.nodes
        )
        cluster_id = read_meta(self.nodes[0].log_dir).get("cluster.id") or new_cluster_id()
        for node in self.nodes:
            node.java = java
            node.classpath = self.distribution.classpath
            node.write_config(voters, self.replication_factor, self.min_insync_replicas)
        with ThreadPoolExecutor(len(self.nodes)) as pool:  # each format is a JVM start
            list(pool.map(lambda node: node.format(cluster_id), self.nodes))
        for node in self.nodes:
            node.start()
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop(10.0)
            raise
        return self

    def wait_ready(self, timeout: float, expect: Sequence[KafkaNode] | None = None) -> None:
        """Until every node in `expect` (all) listens and is a live broker of the
        cluster's metadata."""
        nodes = list(expect if expect is not None else self.nodes)
        deadline = time.monotonic() + timeout
        for node in nodes:
            node.wait_listening(max(1.0, deadline - time.monotonic()))
        want = {node.node_id for node in nodes}
        seen: set[int] = set()
        while time.monotonic() < deadline:
            for node in nodes:
                if not node.running:
                    raise KafkaSetupError(f"Kafka node {node.node_id} exited; see {node.log_path}")
            with contextlib.suppress(Exception):
                seen = asyncio.run(live_brokers(self.bootstrap))
                if want <= seen:
                    return
            time.sleep(0.5)
        raise KafkaSetupError(
            f"Kafka nodes {sorted(want - seen)} not in the cluster after {timeout:.0f}s; "
            f"see {self.data_dir}/node-*/server.log"
        )

    def start_node(self, node_id: int, timeout: float = 60.0) -> None:
        """Bring a stopped or killed node back on its own storage."""
        node = self.node(node_id)
        node.start()
        self.wait_ready(timeout, expect=[node])

    def stop(self, timeout: float = 60.0) -> None:
        """Stop every node at once (each a controlled shutdown)."""
        running = [node for node in self.nodes if node.process is not None]
        if running:
            with ThreadPoolExecutor(len(running)) as pool:
                list(pool.map(lambda node: node.stop(timeout), running))

    def __enter__(self) -> KafkaCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


async def live_brokers(bootstrap: str, timeout_s: float = 5.0) -> set[int]:
    """The node ids the cluster's metadata lists as live brokers."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000)
    )
    await asyncio.wait_for(admin.start(), timeout_s)
    try:
        described = await admin.describe_cluster()
        return {int(broker["node_id"]) for broker in described["brokers"]}
    finally:
        await admin.close()


async def partition_leader(bootstrap: str, topic: str, partition: int) -> int | None:
    """The node id leading `topic`'s `partition` now (None: no leader, or no topic)."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        await client.force_metadata_update()
        leader = client.cluster.leader_for_partition(TopicPartition(topic, partition))
        return None if leader is None or leader < 0 else int(leader)
    finally:
        await client.close()
