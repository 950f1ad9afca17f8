"""A worker restarted with its tables' state against a broker that lost the log they
were built from (issue 21, item 1; streams/commands/table_state_check.py).

Before the check, the worker died in Faust's recovery with a ConsistencyError traceback
("persisted offset 62 > -1"). Now, on a broker that keeps its log (Apache Kafka, the
production profile), the worker refuses in one line, exit 2, with the fix
(`activity-sync reset-state`), and once that ran it starts; on the dev kit's embedded
broker, which forgets its log when it stops, the worker drops the stale state itself,
in one line, and folds on. A restart on a broker that kept its log keeps the state.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from devkit.broker import EmbeddedBroker, free_port
from devkit.broker_namespace import BrokerNamespace
from devkit.kafka import KafkaCluster
from devkit.salesforce_emulator.process import SalesforceEmulator
from devkit.verification import expected_events
from devkit.workers import WorkerProcess, worker_environment
from streams.commands.generate import generate_events
from streams.worker.process import table_state
from tests.fixtures import (
    Workers,
    assert_one_line_error,
    broker_namespace,
    event_records,
    produce,
    run_cli,
    wait_for_salesforce,
)

pytestmark = pytest.mark.integration

EVENTS = "booking-events"
DROPPED = "starts with empty tables"
TABLES = {"bookings": "", "synced": "", "due": ""}


def halves(n_bookings: int, seed: int) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    events = [dict(e) for e in generate_events(n_bookings, seed=seed, duplicate_rate=0.0)]
    return events[: len(events) // 2], events[len(events) // 2 :]


def stored_partitions(data_dir: Path) -> list[tuple[str, int]]:
    """(table, partition) of every store in the worker's data dir with an offset."""
    directory = table_state.tables_dir(data_dir, 1)
    return [(s.table, s.partition) for s in table_state.stored_offsets(directory, TABLES)]


async def test_a_worker_restarted_on_a_broker_that_kept_its_log_folds_on(
    broker: BrokerNamespace, workers: Workers, salesforce_emulator: SalesforceEmulator
) -> None:
    first, second = halves(120, seed=41)
    worker = workers.start()
    await produce(broker, EVENTS, event_records(first))
    wait_for_salesforce(salesforce_emulator, expected_events(first))
    worker.stop()
    kept = stored_partitions(workers.root / "worker-1")
    assert kept, "the worker stored no table state"

    # The same data dir: most of `second` continues bookings begun in `first`.
    restarted = workers.start()
    await produce(broker, EVENTS, event_records(second))
    wait_for_salesforce(salesforce_emulator, expected_events(first + second))
    assert DROPPED not in restarted.log_text()
    assert set(kept) <= set(stored_partitions(workers.root / "worker-1"))


def test_a_worker_pointed_at_a_new_cluster_refuses_its_state_in_one_line(
    broker: BrokerNamespace,
    kafka_cluster: KafkaCluster | None,
    workers: Workers,
    salesforce_emulator: SalesforceEmulator,
    tmp_path: Path,
) -> None:
    first, _ = halves(60, seed=42)
    workers.start()
    asyncio.run(produce(broker, EVENTS, event_records(first)))
    wait_for_salesforce(salesforce_emulator, expected_events(first))
    workers.stop_all()
    data_dir = workers.root / "worker-1"
    before = stored_partitions(data_dir)

    # A namespace of its own on the run's Kafka stands in for a new cluster: none of
    # the changelogs this state was built from are there. (A plain test: the namespace
    # creates its topics with asyncio.run.)
    with broker_namespace(kafka_cluster, tmp_path / "new-cluster") as fresh:
        env = worker_environment(fresh, salesforce_emulator, data_dir)
        if not fresh.connection.profile.keeps_log:
            # Without Java the suite runs on the embedded broker: it drops the state.
            worker = WorkerProcess(env, tmp_path / "fresh-worker.log").start().wait_ready()
            worker.stop()
            assert worker.log_text().count(DROPPED) == 1
            return
        refused = run_cli("worker", "-l", "info", env=env, timeout=600)
        assert refused.returncode == 2, refused.stderr
        assert_one_line_error(
            refused,
            f"ACTIVITY_SYNC_DATA_DIR={data_dir}",
            "stored offset",
            "broker's end offset 0",
            fresh.topic("booking-activity-sync-"),
            "activity-sync reset-state",
        )
        assert "ConsistencyError" not in refused.stderr + refused.stdout
        assert stored_partitions(data_dir) == before, "the refused state was touched"

        reset = run_cli("reset-state", env=env)
        assert reset.returncode == 0, reset.stderr
        assert "tables.reset-" in reset.stdout
        assert stored_partitions(data_dir) == []

        started = WorkerProcess(env, tmp_path / "fresh-worker.log").start().wait_ready()
        try:
            fresh_events, _ = halves(20, seed=43)
            asyncio.run(produce(fresh, EVENTS, event_records(fresh_events)))
            wait_for_salesforce(
                salesforce_emulator, {**expected_events(first), **expected_events(fresh_events)}
            )
        finally:
            started.stop()


async def test_a_restarted_embedded_broker_makes_the_worker_start_clean(
    salesforce_emulator: SalesforceEmulator, tmp_path: Path
) -> None:
    port = free_port()
    data_dir = tmp_path / "worker"
    before_restart, continued = halves(80, seed=44)
    after_restart, _ = halves(40, seed=45)
    broker = EmbeddedBroker(port=port, log_path=tmp_path / "broker.log").start()
    env = worker_environment(broker, salesforce_emulator, data_dir)
    worker = WorkerProcess(env, tmp_path / "worker.log")
    try:
        worker.start().wait_ready()
        await produce(broker, EVENTS, event_records(before_restart))
        wait_for_salesforce(salesforce_emulator, expected_events(before_restart))

        # The worker alone restarts: the broker kept its log, the state is kept.
        worker.stop()
        worker.start().wait_ready()
        await produce(broker, EVENTS, event_records(continued))
        everything = before_restart + continued
        wait_for_salesforce(salesforce_emulator, expected_events(everything))
        assert DROPPED not in worker.log_text()

        # Both stop; the broker comes back on its port without its log.
        worker.stop()
        broker.stop()
        broker = EmbeddedBroker(port=port, log_path=tmp_path / "broker.log").start()
        worker.start().wait_ready()
        log = worker.log_text()
        dropped = [line for line in log.splitlines() if DROPPED in line]
        assert len(dropped) == 1, log
        assert "stored offset" in dropped[0] or "cluster" in dropped[0], dropped[0]
        assert "ConsistencyError" not in log
        assert "Traceback" not in log

        # New bookings fold from empty tables; the Events written before stay.
        await produce(broker, EVENTS, event_records(after_restart))
        wait_for_salesforce(
            salesforce_emulator,
            {**expected_events(everything), **expected_events(after_restart)},
        )
    finally:
        worker.stop()
        broker.stop()
