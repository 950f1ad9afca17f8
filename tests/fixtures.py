"""Shared fixtures: the embedded broker, the Salesforce emulator and worker processes.

Each real part runs as its own process, as in production; fixtures start it on a free
port, wait until it answers and stop it afterwards.
"""

from __future__ import annotations

import asyncio as _asyncio
import time as _time
from collections.abc import Callable as _Callable
from collections.abc import Iterable as _Iterable
from collections.abc import Iterator as _Iterator
from datetime import datetime as _datetime
from pathlib import Path as _Path
from typing import Any as _Any

import orjson as _orjson
import pytest
from aiokafka import AIOKafkaConsumer as _Consumer
from aiokafka import AIOKafkaProducer as _Producer
from aiokafka import TopicPartition as _TopicPartition

from schemas import event_from_dict as _event_from_dict
from streams.broker import EmbeddedBroker
from streams.fold import fold_all as _fold_all
from streams.local_stack import WorkerProcess
from streams.projection import project as _project
from streams.salesforce.emulator_process import SalesforceEmulator
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
# Pipeline: the embedded broker, worker processes, producing and reading topics
#
# Every test gets its own broker (in memory, starts in well under a second), so topics,
# consumer groups and tables never leak between tests. Workers are real
# `activity-sync worker` processes configured through ACTIVITY_SYNC_* variables.
# ---------------------------------------------------------------------------------------


# Long enough that the completion timer never fires during a test unless asked to.
NO_COMPLETION_GRACE = str(20 * 365 * 86400)


@pytest.fixture
def broker(tmp_path: _Path) -> _Iterator[EmbeddedBroker]:
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as running:
        yield running


def worker_environment(
    broker: EmbeddedBroker, emulator: SalesforceEmulator, data_dir: _Path, **extra: str
) -> dict[str, str]:
    """ACTIVITY_SYNC_* settings of a worker on this broker and emulator."""
    env = {
        "ACTIVITY_SYNC_BROKER_URL": broker.url,
        "ACTIVITY_SYNC_STORE": "memory://",
        "ACTIVITY_SYNC_DATA_DIR": str(data_dir),
        "ACTIVITY_SYNC_COMPLETION_GRACE": NO_COMPLETION_GRACE,
        "ACTIVITY_SYNC_SINK_LIMIT_PAUSE": "1",
        "ACTIVITY_SYNC_SINK_ATTEMPT_DEADLINE": "3",
        "ACTIVITY_SYNC_RECONCILE_INTERVAL": "2",
        "ACTIVITY_SYNC_SALESFORCE_LOGIN_URL": emulator.url,
        "ACTIVITY_SYNC_SALESFORCE_CLIENT_ID": emulator.client_id,
        "ACTIVITY_SYNC_SALESFORCE_CLIENT_SECRET": emulator.client_secret,
        "ACTIVITY_SYNC_SALESFORCE_CA_FILE": emulator.ca_file,
        "ACTIVITY_SYNC_SALESFORCE_RETRY_CAP_S": "2",
    }
    env.update({f"ACTIVITY_SYNC_{name.upper()}": value for name, value in extra.items()})
    return env


class Workers:
    """Starts worker processes for one test and stops them all afterwards."""

    def __init__(self, broker: EmbeddedBroker, emulator: SalesforceEmulator, root: _Path) -> None:
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
    broker: EmbeddedBroker, salesforce_emulator: SalesforceEmulator, tmp_path: _Path
) -> _Iterator[Workers]:
    running = Workers(broker, salesforce_emulator, tmp_path)
    yield running
    running.stop_all()


Record = tuple[bytes | None, bytes]


async def produce(broker: EmbeddedBroker, topic: str, records: _Iterable[Record]) -> int:
    producer = _Producer(bootstrap_servers=broker.bootstrap, max_request_size=4 * 1024 * 1024)
    await producer.start()
    sent = 0
    try:
        for key, value in records:
            await producer.send(topic, key=key, value=value)
            sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def event_records(events: _Iterable[dict[str, _Any]]) -> list[Record]:
    """Kafka records for event dicts, keyed by subject as producers must."""
    return [(str(event["subject"]).encode(), _orjson.dumps(event)) for event in events]


async def read_topic(
    broker: EmbeddedBroker, topic: str, *, expect: int, wait_s: float = 30.0
) -> list[_Any]:
    """Every record of `topic` from the start, once at least `expect` are there."""
    consumer = _Consumer(
        bootstrap_servers=broker.bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    records: list[_Any] = []
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        deadline = _time.monotonic() + wait_s
        while not partitions and _time.monotonic() < deadline:
            await _asyncio.sleep(0.2)
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([_TopicPartition(topic, p) for p in partitions])
        while len(records) < expect and _time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for items in batch.values():
                records.extend(items)
    finally:
        await consumer.stop()
    return records


def wait_until(check: _Callable[[], bool], timeout: float, what: str) -> None:
    deadline = _time.monotonic() + timeout
    while _time.monotonic() < deadline:
        if check():
            return
        _time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# The fields whose equality with the pure fold proves a booking synced.
COMPARED_FIELDS = (
    "Event_Status__c",
    "Cancel_Reschedule_Reason__c",
    "OwnerId",
    "StartDateTime",
    "EndDateTime",
    "Subject",
)


def expected_events(events: _Iterable[dict[str, _Any]]) -> dict[str, dict[str, _Any]]:
    """What the pure fold says Salesforce should hold: booking id -> Event fields."""
    by_booking: dict[str, list[_Any]] = {}
    for event in events:
        by_booking.setdefault(str(event["subject"]), []).append(_event_from_dict(dict(event)))
    expected = {}
    for booking, folded in by_booking.items():
        projection = _project(_fold_all(folded))
        if projection is not None:
            expected[booking] = projection.fields
    return expected


def _normal(field: str, value: _Any) -> _Any:
    if value in (None, ""):
        return None
    if field.endswith("DateTime"):
        return _datetime.fromisoformat(str(value).replace("+0000", "+00:00"))
    return value


def salesforce_differences(
    emulator: SalesforceEmulator, expected: dict[str, dict[str, _Any]]
) -> list[str]:
    """Human-readable differences between Salesforce and the expected Events."""
    records = emulator.records("Event")
    by_booking: dict[str, list[dict[str, _Any]]] = {}
    for record in records:
        by_booking.setdefault(str(record.get("Booking_Id__c")), []).append(record)
    problems = []
    for booking, fields in expected.items():
        found = by_booking.get(booking, [])
        if len(found) != 1:
            problems.append(f"{booking}: {len(found)} Events")
            continue
        for name in COMPARED_FIELDS:
            want, got = _normal(name, fields.get(name)), _normal(name, found[0].get(name))
            if want != got:
                problems.append(f"{booking}.{name}: want {want!r}, got {got!r}")
    problems.extend(f"{b}: unexpected Event" for b in by_booking if b not in expected)
    return problems


def wait_for_salesforce(
    emulator: SalesforceEmulator, expected: dict[str, dict[str, _Any]], timeout: float = 60.0
) -> None:
    problems: list[str] = []

    def in_sync() -> bool:
        nonlocal problems
        problems = salesforce_differences(emulator, expected)
        return not problems

    try:
        wait_until(in_sync, timeout, "Salesforce to match the fold")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {len(problems)} differences, e.g. {problems[:5]}") from None
