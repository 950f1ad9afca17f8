"""The operator commands, run as an operator runs them: `python -m streams ...` subprocesses.

One broker, the shared Salesforce emulator and one worker serve the whole module (a
worker takes seconds to start); the module's first step produces a file through the
CLI, and the status, replay and HTTP tests read what it made.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from devkit.broker import free_port
from devkit.broker_namespace import BrokerNamespace
from devkit.kafka import KafkaCluster
from devkit.salesforce_emulator.process import SalesforceEmulator
from devkit.verification import expected_events
from devkit.workers import WorkerProcess, worker_environment
from streams.commands.generate import generate_events
from tests.fixtures import (
    assert_one_line_error,
    broker_namespace,
    produce,
    read_topic,
    run_cli,
    wait_for_salesforce,
    wait_until,
)

pytestmark = pytest.mark.integration


@dataclass
class Stack:
    broker: BrokerNamespace
    emulator: SalesforceEmulator
    worker: WorkerProcess
    env: dict[str, str]  # what a command needs to reach this stack
    events: list[dict[str, Any]]  # the valid events the module produced
    produced: subprocess.CompletedProcess[str]


GOOD_BOOKINGS = 12


def input_lines(events: list[dict[str, Any]]) -> bytes:
    """The events as JSON lines, with a malformed line (3) and a schema violation (6)."""
    lines = [orjson.dumps(event) for event in events]
    lines.insert(2, b'{"specversion": "1.0", "id": "x-1", "type": "booking.sch')
    bad = dict(events[0], sequence="three")  # a string is not a sequence number
    lines.insert(5, orjson.dumps(bad))
    return b"\n".join(lines) + b"\n"


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    salesforce_emulator_session: SalesforceEmulator,
    kafka_cluster: KafkaCluster | None,
) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("cli")
    emulator = salesforce_emulator_session
    if emulator.process is None:
        emulator.start()
    emulator.reset()
    with broker_namespace(kafka_cluster, root) as broker:
        env = worker_environment(broker, emulator, root / "worker-1")
        worker = WorkerProcess(env, root / "worker-1.log").start()
        try:
            worker.wait_ready()
            events = list(generate_events(GOOD_BOOKINGS, seed=7, duplicate_rate=0.0))
            path = root / "events.jsonl"
            path.write_bytes(input_lines(events))
            produced = run_cli("produce", str(path), env=env)
            # Every test below starts from a worker that has synced all of it.
            wait_for_salesforce(emulator, expected_events(events))
            yield Stack(broker, emulator, worker, env, events, produced)
        finally:
            worker.stop()


def a_booking_with_an_event(stack: Stack) -> str:
    return sorted(expected_events(stack.events))[0]


# produce ----------------------------------------------------------------------------


async def test_produce_reports_bad_lines_by_number_and_sends_the_rest(stack: Stack) -> None:
    result = stack.produced
    assert result.returncode == 1, result.stderr
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 2, result.stderr
    assert errors[0].startswith("line 3: not-json")
    assert errors[1].startswith("line 6: schema at sequence")
    sent = f"sent {len(stack.events)} events to {stack.broker.topic('booking-events')}; rejected 2"
    assert sent in result.stdout

    records = await read_topic(stack.broker, "booking-events", expect=len(stack.events))
    assert len(records) == len(stack.events)
    assert all(record.key == orjson.loads(record.value)["subject"].encode() for record in records)


async def test_produce_generate_and_stdin_exit_zero(broker: BrokerNamespace) -> None:
    env = broker.env
    generated = run_cli("produce", "--generate", "5", "--seed", "3", env=env)
    assert generated.returncode == 0, generated.stderr
    count = len(list(generate_events(5, seed=3)))
    assert f"sent {count} events" in generated.stdout

    one = orjson.dumps(next(generate_events(1, seed=99, id_prefix="stdin-")))
    piped = run_cli("produce", "-", env=env, stdin=one + b"\n\n")
    assert piped.returncode == 0, piped.stderr
    assert "sent 1 event to" in piped.stdout

    # Another seed's bookings are new ones, not conflicting copies of the first seed's.
    named = run_cli("produce", "--generate", "2", "--seed", "4", "--id-prefix", "mine-", env=env)
    assert named.returncode == 0, named.stderr
    more = len(list(generate_events(2, seed=4)))

    records = await read_topic(broker, "booking-events", expect=count + 1 + more)
    assert len(records) == count + 1 + more
    prefixes = {record.key.decode().rsplit("-", 1)[0] for record in records}
    assert prefixes == {"b-s3", "stdin", "mine"}


def test_produce_with_the_broker_unreachable_fails_fast_on_one_line(tmp_path: Path) -> None:
    env = {"ACTIVITY_SYNC_BROKER_URL": f"kafka://127.0.0.1:{free_port()}"}
    path = tmp_path / "one.jsonl"
    path.write_bytes(orjson.dumps(next(generate_events(1, seed=1))) + b"\n")
    # --timeout 2 is the whole budget: a command that ignored it would wait for aiokafka's
    # own request timeouts and outlive run_cli's 60 s timeout.
    result = run_cli("produce", str(path), "--timeout", "2", env=env)
    assert_one_line_error(result, "cannot reach the Kafka broker")


def test_produce_input_errors_are_one_line(tmp_path: Path) -> None:
    env = {"ACTIVITY_SYNC_BROKER_URL": f"kafka://127.0.0.1:{free_port()}"}
    assert_one_line_error(
        run_cli("produce", str(tmp_path / "missing.jsonl"), env=env), "cannot read"
    )
    assert_one_line_error(run_cli("produce", env=env), "FILE", "--generate")


# status and the worker's HTTP views -------------------------------------------------


def test_status_shows_events_view_projection_and_sync(stack: Stack) -> None:
    booking = a_booking_with_an_event(stack)
    expected = expected_events(stack.events)[booking]
    result = run_cli("status", booking, "--worker", stack.worker.web_url, env=stack.env)
    assert result.returncode == 0, result.stderr
    assert f"Booking {booking}" in result.stdout
    assert f"status         {expected['Event_Status__c']}" in result.stdout
    assert "Events (" in result.stdout
    assert "Projection (version" in result.stdout
    assert "Sync: in sync" in result.stdout

    as_json = run_cli("--json", "status", booking, "--worker", stack.worker.web_url, env=stack.env)
    report = json.loads(as_json.stdout)
    assert report["booking_id"] == booking
    assert report["projection"]["fields"]["Event_Status__c"] == expected["Event_Status__c"]
    assert report["sync"]["in_sync"] is True


def test_status_of_an_unknown_booking_is_a_one_line_error(stack: Stack) -> None:
    result = run_cli("status", "no-such-booking", "--worker", stack.worker.web_url, env=stack.env)
    assert result.returncode == 1
    assert_one_line_error(result, "unknown booking 'no-such-booking'")


def test_status_with_no_worker_is_a_one_line_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run_cli("status", "b-1", "--worker", url, env={})
    assert_one_line_error(result, "cannot reach the worker")


def test_worker_http_endpoints(stack: Stack) -> None:
    booking = a_booking_with_an_event(stack)
    base = stack.worker.web_url
    health = requests.get(f"{base}/health/", timeout=5)
    assert health.status_code == 200
    assert health.json()["status"] == "ok"

    found = requests.get(f"{base}/bookings/{booking}/", timeout=5)
    assert found.status_code == 200
    assert found.json()["booking_id"] == booking
    missing = requests.get(f"{base}/bookings/nope/", timeout=5)
    assert missing.status_code == 404
    assert "unknown booking" in missing.json()["error"]

    def lag_reported() -> bool:
        text = requests.get(f"{base}/metrics/", timeout=5).text
        topic = stack.broker.topic("booking-events")
        return f'activity_sync_consumer_lag{{partition="0",topic="{topic}"}}' in text

    wait_until(lag_reported, 20, "the consumer lag gauge")
    text = requests.get(f"{base}/metrics/", timeout=5).text
    ingested = [
        line for line in text.splitlines() if line.startswith("activity_sync_events_ingested_total")
    ]
    assert ingested
    assert float(ingested[0].split()[-1]) >= len(stack.events)
    assert "activity_sync_end_to_end_latency_seconds_bucket" in text
    assert "activity_sync_salesforce_calls_total" in text

    # A record that bypassed `produce`'s validation is dead-lettered and counted.
    asyncio.run(produce(stack.broker, "booking-events", [(b"raw-1", b"{not json")]))
    dlq = stack.broker.topic("booking-events.dlq")
    dead = f'activity_sync_events_dead_lettered_total{{reason="not-json",topic="{dlq}"}}'
    wait_until(lambda: dead in requests.get(f"{base}/metrics/", timeout=5).text, 20, "DLQ count")


# replay -----------------------------------------------------------------------------


def test_replay_bookings_rewrites_them_even_when_already_synced(stack: Stack) -> None:
    expected = expected_events(stack.events)
    stack.emulator.reset()  # Salesforce lost every Event; the worker still thinks it is in sync
    chosen = sorted(expected)[:2]
    result = run_cli("replay", "--bookings", chosen[0], "--bookings", chosen[1], env=stack.env)
    assert result.returncode == 0, result.stderr
    assert "replayed 2 bookings (forced upsert)" in result.stdout
    wait_for_salesforce(stack.emulator, {booking: expected[booking] for booking in chosen})


def test_replay_since_rewrites_every_recent_booking(stack: Stack) -> None:
    expected = expected_events(stack.events)
    stack.emulator.reset()
    result = run_cli("replay", "--since", "1h", env=stack.env)
    assert result.returncode == 0, result.stderr
    assert f"replayed {len(expected)} bookings" in result.stdout
    wait_for_salesforce(stack.emulator, expected)


def test_replay_bad_input_is_a_one_line_error(stack: Stack) -> None:
    unknown = run_cli("replay", "--bookings", "no-such-booking", env=stack.env)
    assert unknown.returncode == 1
    assert "unknown booking 'no-such-booking'" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    assert_one_line_error(run_cli("replay", "--since", "yesterday", env=stack.env), "--since")
    assert_one_line_error(run_cli("replay", env=stack.env), "--since", "--bookings")
    unreachable = {"ACTIVITY_SYNC_BROKER_URL": f"kafka://127.0.0.1:{free_port()}"}
    assert_one_line_error(
        run_cli("replay", "--since", "1h", env=unreachable), "cannot reach the Kafka broker"
    )


# backfill ---------------------------------------------------------------------------


def test_backfill_follows_a_new_app_version_until_it_has_caught_up(stack: Stack) -> None:
    expected = expected_events(stack.events)
    stack.emulator.reset()  # the rebuild must write every Event again
    # Same projections topic: the v2 sink must skip the v1 projections on it.
    rebuild = worker_environment(
        stack.broker, stack.emulator, stack.worker.log_path.parent / "v2", app_version="2"
    )
    worker = WorkerProcess(rebuild, stack.worker.log_path.parent / "worker-v2.log").start()
    try:
        result = run_cli(
            "backfill",
            "--worker",
            worker.web_url,
            "--interval",
            "0.5",
            "--timeout",
            "60",
            env=rebuild,
            timeout=90,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"group {stack.broker.app_id}-v2" in result.stdout
        assert "backfill: caught up" in result.stdout
        summary = result.stdout.strip().splitlines()[-1]
        calls = int(summary.split("Salesforce API calls ")[1].split(",")[0])
        assert calls >= 1
        wait_for_salesforce(stack.emulator, expected)
    finally:
        worker.stop()


def test_backfill_follows_version_1s_first_load(stack: Stack) -> None:
    # A new deployment's first load is version 1's group, the bare app id (README).
    result = run_cli(
        "backfill",
        "--app-version",
        "1",
        "--worker",
        stack.worker.web_url,
        "--interval",
        "0.5",
        "--timeout",
        "60",
        env=stack.env,
        timeout=90,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"group {stack.broker.app_id} rebuilding" in result.stdout
    assert "backfill: caught up" in result.stdout


def test_backfill_refuses_a_version_below_1(stack: Stack) -> None:
    result = run_cli("backfill", "--app-version", "0", env=stack.env)
    assert_one_line_error(result, "app version 0", "versions start at 1")
    assert result.returncode == 2
