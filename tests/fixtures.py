"""Shared fixtures: Apache Kafka, the Salesforce emulator, worker processes, and the
command lines.

Each real part runs as its own process, as in production; fixtures start it on a free
port, wait until it answers and stop it afterwards.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time as _time
from collections.abc import Callable as _Callable
from collections.abc import Iterator as _Iterator
from collections.abc import Sequence as _Sequence
from contextlib import contextmanager as _contextmanager
from pathlib import Path as _Path
from typing import Any as _Any

import pytest
import requests as _requests

from devkit.broker import EmbeddedBroker
from devkit.broker_namespace import BrokerNamespace
from devkit.kafka import JAVA_HINT, KafkaCluster, KafkaSetupError, require
from devkit.salesforce_emulator.process import OrgAdmin, SalesforceEmulator

# Producing to and reading the broker's topics: shared with the benches.
from devkit.topics import Record as Record
from devkit.topics import event_records as event_records
from devkit.topics import produce as produce
from devkit.topics import read_topic as read_topic
from devkit.verification import compare_salesforce
from devkit.workers import WorkerProcess, worker_environment
from streams.salesforce.settings import SalesforceSettings

# ---------------------------------------------------------------------------------------
# Salesforce emulator
#
# One emulator process per test session (`salesforce_emulator_session`), reset before
# each test that asks for `salesforce_emulator`; `fresh_salesforce_emulator` gives a test
# its own process and data dir (for restarts and stops). Admin calls go to /__admin/ and
# are never counted as Salesforce API calls.
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def salesforce_emulator_session(
    tmp_path_factory: pytest.TempPathFactory,
) -> _Iterator[SalesforceEmulator]:
    emulator = SalesforceEmulator(tmp_path_factory.mktemp("salesforce-emulator"))
    yield emulator
    emulator.close()


@pytest.fixture
def salesforce_emulator(
    salesforce_emulator_session: SalesforceEmulator,
) -> SalesforceEmulator:
    """The shared emulator, emptied: no records, no counted calls, no faults."""
    if salesforce_emulator_session.process is None:
        salesforce_emulator_session.start()
    salesforce_emulator_session.reset()
    return salesforce_emulator_session


@pytest.fixture
def fresh_salesforce_emulator(tmp_path: _Path) -> _Iterator[SalesforceEmulator]:
    """An emulator process of the test's own, on its own data dir (restart/stop at will)."""
    emulator = SalesforceEmulator(tmp_path / "salesforce-emulator")
    yield emulator
    emulator.close()


@pytest.fixture
def salesforce_settings(salesforce_emulator: SalesforceEmulator) -> SalesforceSettings:
    return salesforce_emulator.settings()


# ---------------------------------------------------------------------------------------
# Pipeline: Apache Kafka, worker processes, producing and reading topics
#
# One Apache Kafka node serves the whole run (`kafka_cluster`, started on first use: the
# fetch from Maven Central happens once per machine). Each test gets its own namespace on
# it (`broker`: a topic prefix, an app id), so topics, consumer groups and tables never
# leak between tests; its topics are deleted afterwards. Where `java` or `mvn` is
# missing, outside CI, each test gets an embedded broker of its own instead (one warning
# line); under CI=true that is an error. Workers are real `activity-sync worker`
# processes configured through ACTIVITY_SYNC_* variables.
# ---------------------------------------------------------------------------------------

# What ran, for the summary line at the end of the run.
BROKER_RAN: list[str] = []


def _say(config: pytest.Config, line: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line)


def pytest_terminal_summary(terminalreporter: _Any) -> None:
    for line in BROKER_RAN:
        terminalreporter.write_line(line)


# `make test` runs the suite in two pytest-xdist processes, each with its own Kafka node
# (a session fixture lives in its process). A process hands its broker line to the one
# that prints the summary.
def pytest_sessionfinish(session: pytest.Session) -> None:
    handed = getattr(session.config, "workeroutput", None)
    if handed is not None:
        handed["broker_ran"] = list(BROKER_RAN)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: _Any, error: _Any) -> None:
    ran = getattr(node, "workeroutput", {}).get("broker_ran", [])
    BROKER_RAN.extend(f"[{node.gateway.id}] {line}" for line in ran)


@pytest.fixture(scope="session")
def kafka_cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> _Iterator[KafkaCluster | None]:
    """The run's Apache Kafka (one combined KRaft node), or None where it cannot run
    outside CI (the embedded broker stands in)."""
    try:
        require("java", JAVA_HINT)
    except KafkaSetupError as exc:
        if os.environ.get("CI") == "true":
            raise KafkaSetupError(f"{exc} (CI=true: no fallback to the embedded broker)") from None
        line = f"WARNING: {exc}; the integration tests run on the embedded broker instead"
        BROKER_RAN.append(line)
        _say(request.config, line)
        yield None
        return
    began = _time.monotonic()
    cluster = KafkaCluster(tmp_path_factory.mktemp("kafka"), brokers=1)
    cluster.start()
    fetched = cluster.distribution.fetched_s if cluster.distribution else None
    line = (
        f"broker: Apache Kafka {cluster.version} (KRaft, 1 node) at {cluster.bootstrap}, "
        + (f"fetched from Maven Central in {fetched:.1f}s, " if fetched else "from the cache, ")
        + f"up in {_time.monotonic() - began:.1f}s"
    )
    BROKER_RAN.append(line)
    _say(request.config, line)
    try:
        yield cluster
    finally:
        cluster.stop()


_NAMESPACES = iter(range(1, 1_000_000))


@_contextmanager
def broker_namespace(kafka: KafkaCluster | None, log_dir: _Path) -> _Iterator[BrokerNamespace]:
    """A namespace of its own on the run's Kafka, its app topics created and deleted
    afterwards (or, without Kafka, an embedded broker of its own logging to log_dir)."""
    if kafka is None:
        with EmbeddedBroker(log_path=log_dir / "broker.log") as embedded:
            yield BrokerNamespace.of(embedded)
        return
    space = BrokerNamespace.of(kafka, prefix=f"t{next(_NAMESPACES):04d}-")
    asyncio.run(space.create_topics())
    try:
        yield space
    finally:
        asyncio.run(space.delete_topics())


@pytest.fixture
def broker(kafka_cluster: KafkaCluster | None, tmp_path: _Path) -> _Iterator[BrokerNamespace]:
    """This test's own namespace on the run's Kafka (see `broker_namespace`)."""
    with broker_namespace(kafka_cluster, tmp_path) as space:
        yield space


class Workers:
    """Starts worker processes for one test and stops them all afterwards."""

    def __init__(self, broker: BrokerNamespace, emulator: SalesforceEmulator, root: _Path) -> None:
        self.broker = broker
        self.emulator = emulator
        self.root = root
        self.started: list[WorkerProcess] = []

    def start(self, name: str = "worker-1", *, wait: bool = True, **settings: str) -> WorkerProcess:
        env = worker_environment(self.broker, self.emulator, self.root / name, **settings)
        worker = WorkerProcess(env, self.root / f"{name}.log").start()
        self.started.append(worker)
        if wait:
            worker.wait_ready()
        return worker

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()


@pytest.fixture
def workers(
    broker: BrokerNamespace, salesforce_emulator: SalesforceEmulator, tmp_path: _Path
) -> _Iterator[Workers]:
    running = Workers(broker, salesforce_emulator, tmp_path)
    yield running
    running.stop_all()


def wait_until(check: _Callable[[], bool], timeout: float, what: str) -> None:
    deadline = _time.monotonic() + timeout
    while _time.monotonic() < deadline:
        if check():
            return
        _time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def salesforce_differences(
    emulator: SalesforceEmulator, expected: dict[str, dict[str, _Any]]
) -> list[str]:
    """Human-readable differences between Salesforce and the expected Events."""
    return compare_salesforce(emulator.records("Event"), expected).details


# What a worker says of itself when Salesforce does not match (`wait_for_salesforce`).
_TOLD = (
    "activity_sync_consumer_lag",
    "activity_sync_projections_emitted_total",
    "activity_sync_projections_resent_total",
    "activity_sync_projections_skipped_total",
    "activity_sync_salesforce_records_total",
)


def _worker_state(worker: WorkerProcess) -> str:
    """A worker's lag, projections and Salesforce outcomes, for a failure's message."""
    try:
        samples = worker.metrics()
    except (OSError, _requests.RequestException) as exc:
        return f"{worker.log_path.stem}: metrics not read ({exc})"
    told = [
        f"{s.name.removeprefix('activity_sync_')}{dict(s.labels) or ''}={s.value:g}"
        for s in samples
        if s.name in _TOLD and s.value
    ]
    return f"{worker.log_path.stem}: " + ", ".join(told)


def wait_for_salesforce(
    emulator: SalesforceEmulator,
    expected: dict[str, dict[str, _Any]],
    timeout: float = 60.0,
    workers: _Sequence[WorkerProcess] = (),
) -> None:
    """Wait until Salesforce holds `expected`; on timeout, say what differs and what
    each of `workers` says of its lag, projections and writes."""
    problems: list[str] = []

    def in_sync() -> bool:
        nonlocal problems
        problems = salesforce_differences(emulator, expected)
        return not problems

    try:
        wait_until(in_sync, timeout, "Salesforce to match the fold")
    except AssertionError as exc:
        states = "".join(f"\n  {_worker_state(worker)}" for worker in workers)
        raise AssertionError(
            f"{exc}: {len(problems)} differences, e.g. {problems[:5]}{states}"
        ) from None


# ---------------------------------------------------------------------------------------
# Command lines: `python -m streams` (activity-sync) and `python -m devkit` subprocesses
# ---------------------------------------------------------------------------------------

REPO = _Path(__file__).resolve().parents[1]


# Commands of the dev kit (`python -m devkit`); the rest are `activity-sync`'s own.
DEVKIT_COMMANDS = {"broker", "kafka", "salesforce-emulator", "demo"}


def command_line(*args: str) -> list[str]:
    return [sys.executable, "-m", "devkit" if args[0] in DEVKIT_COMMANDS else "streams", *args]


def run_cli(
    *args: str, env: dict[str, str], stdin: bytes | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command_line(*args),
        cwd=REPO,
        env={**os.environ, **env},
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("activity-sync "), lines[0]
    for word in words:
        assert word in lines[0], lines[0]


def start_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command_line(*args),
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop_cli(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=20)
    return process.returncode, stderr


def register_org(broker: BrokerNamespace, org: OrgAdmin, name: str, secret_var: str) -> None:
    """`activity-sync orgs add NAME` for an emulator org, its client secret by reference
    to `secret_var` (the workers that write to it need that variable)."""
    added = run_cli(
        "orgs", "add", name, "--login-url", org.url, "--client-id", org.client_id,
        "--client-secret", f"env:{secret_var}", "--ca-file", org.ca_file,
        env=broker.env,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
