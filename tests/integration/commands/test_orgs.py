"""`activity-sync orgs add|list|remove|check` against Apache Kafka and the emulator
(streams/commands/orgs.py): the registry is a compacted topic holding secret references
only; `check` resolves them where it runs and checks the org as check-salesforce does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from devkit.broker_namespace import BrokerNamespace
from devkit.salesforce_emulator.process import OrgAdmin, SalesforceEmulator
from devkit.workers import WorkerProcess
from streams.runtime.consumers import refresh_metadata
from tests.fixtures import Workers, assert_one_line_error, run_cli, wait_until

pytestmark = pytest.mark.integration


def _add(emulator: OrgAdmin, name: str, secret_ref: str) -> list[str]:
    return [
        "orgs",
        "add",
        name,
        "--login-url",
        emulator.url,
        "--client-id",
        emulator.client_id,
        "--client-secret",
        secret_ref,
        "--ca-file",
        emulator.ca_file,
    ]


async def _registry_values(broker: BrokerNamespace) -> list[bytes | None]:
    """Every value ever written to the registry topic, in no particular order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        topic = broker.topic("salesforce-orgs")
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        if not partitions:
            await refresh_metadata(consumer)
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        ends = await consumer.end_offsets(partitions)
        consumer.assign(partitions)
        values: list[bytes | None] = []
        while sum(ends.values()) > len(values):
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                values.extend(record.value for record in records)
        return values
    finally:
        await consumer.stop()


async def _cleanup_policy(broker: BrokerNamespace) -> str:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        resource = ConfigResource(ConfigResourceType.TOPIC, broker.topic("salesforce-orgs"))
        (answer,) = await admin.describe_configs([resource])
        entries = {entry[0]: entry[1] for entry in answer.resources[0][4]}
        return str(entries["cleanup.policy"])
    finally:
        await admin.close()


async def test_orgs_are_added_listed_checked_and_removed_with_secrets_by_reference(
    broker: BrokerNamespace, salesforce_emulator: SalesforceEmulator, tmp_path: Path
) -> None:
    secret_file = tmp_path / "acme-secret"
    secret_file.write_text(salesforce_emulator.client_secret + "\n")
    env = broker.env

    added = run_cli(*_add(salesforce_emulator, "acme", f"file:{secret_file}"), env=env)
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("org acme: added ("), added.stdout
    refused = run_cli(
        *_add(salesforce_emulator, "globex", salesforce_emulator.client_secret), env=env
    )
    assert_one_line_error(refused, "client_secret", "must be a reference")
    globex = run_cli(*_add(salesforce_emulator, "globex", "env:GLOBEX_SF_SECRET"), env=env)
    assert globex.returncode == 0, globex.stderr
    assert "env:GLOBEX_SF_SECRET: the variable is not set here" in globex.stdout

    listed = run_cli("orgs", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["acme", "globex"], lines
    assert f"client_secret=file:{secret_file}" in lines[0]

    # The registry holds references, never a secret, and is compacted.
    values = await _registry_values(broker)
    assert values
    assert all(salesforce_emulator.client_secret.encode() not in v for v in values if v)
    assert await _cleanup_policy(broker) == "compact"

    checked = run_cli("orgs", "check", "acme", env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.splitlines()[0].startswith("acme: ok "), checked.stdout
    unresolved = run_cli("orgs", "check", "globex", env=env)
    assert_one_line_error(unresolved, "org globex", "env:GLOBEX_SF_SECRET")
    resolved = run_cli(
        "orgs",
        "check",
        "globex",
        env={**env, "GLOBEX_SF_SECRET": salesforce_emulator.client_secret},
    )
    assert resolved.returncode == 0, resolved.stdout + resolved.stderr

    removed = run_cli("orgs", "remove", "acme", env=env)
    assert removed.returncode == 0, removed.stderr
    after = run_cli("orgs", "list", env=env)
    assert [line.split()[0] for line in after.stdout.splitlines()] == ["globex"]
    assert_one_line_error(run_cli("orgs", "remove", "acme", env=env), "not registered")
    assert_one_line_error(run_cli("orgs", "check", "acme", env=env), "not registered")


def _worker_orgs(worker: WorkerProcess) -> dict[str, object]:
    answer = requests.get(f"{worker.web_url}/orgs/", timeout=5)
    answer.raise_for_status()
    body: dict[str, object] = answer.json()
    return body


def _names(body: dict[str, object]) -> list[object]:
    orgs = body["orgs"]
    assert isinstance(orgs, list)
    return [org["name"] for org in orgs]


def _health(worker: WorkerProcess) -> tuple[int, dict[str, Any]]:
    answer = requests.get(f"{worker.web_url}/health/", timeout=10)
    return answer.status_code, answer.json()


def test_a_running_worker_follows_the_registry_without_a_restart(
    broker: BrokerNamespace,
    salesforce_emulator: SalesforceEmulator,
    workers: Workers,
    tmp_path: Path,
) -> None:
    env = broker.env
    # acme: an org of the emulator, its secret in a file the worker reads.
    acme_org = salesforce_emulator.add_org("acme")
    secret_file = tmp_path / "acme-secret"
    secret_file.write_text(acme_org.client_secret)
    acme = run_cli(*_add(acme_org, "acme", f"file:{secret_file}"), env=env)
    assert acme.returncode == 0, acme.stderr
    worker = workers.start()
    wait_until(lambda: _worker_orgs(worker)["caught_up"] is True, 60, "the registry read")
    assert _names(_worker_orgs(worker)) == ["acme"]
    wait_until(lambda: "acme" in _health(worker)[1]["orgs"], 60, "acme's check")
    assert _health(worker)[1]["orgs"]["acme"].startswith("ok ("), _health(worker)

    # Added, rotated and removed while it runs: seen within seconds, no restart.
    assert run_cli(*_add(salesforce_emulator, "globex", "env:GLOBEX_V1"), env=env).returncode == 0
    wait_until(lambda: _names(_worker_orgs(worker)) == ["acme", "globex"], 15, "globex added")
    # A failing org is reported, and the worker stays healthy.
    wait_until(lambda: "globex" in _health(worker)[1]["orgs"], 60, "globex's check")
    status, health = _health(worker)
    assert status == 200, health
    assert health["orgs"]["globex"] == "failing: env:GLOBEX_V1: the variable is not set"
    assert run_cli(*_add(salesforce_emulator, "globex", "env:GLOBEX_V2"), env=env).returncode == 0
    wait_until(
        lambda: (
            _worker_orgs(worker)["orgs"][1]["references"]  # type: ignore[index]
            == {"client_secret": "env:GLOBEX_V2"}
        ),
        15,
        "globex's secret rotated",
    )
    assert run_cli("orgs", "remove", "acme", env=env).returncode == 0
    wait_until(lambda: _names(_worker_orgs(worker)) == ["globex"], 15, "acme removed")
    assert "orgs registered" in worker.log_text()
    metrics = requests.get(f"{worker.web_url}/metrics/", timeout=5).text
    assert "activity_sync_orgs_registered 1.0" in metrics
