"""The dev kit's commands (`python -m devkit broker|kafka|salesforce-emulator`), as a user
runs them and as the tests, benches and the demo start them (salesforce_emulator/process.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import requests
from aiokafka.admin import NewTopic

from devkit.broker import EmbeddedBroker
from devkit.kafka import pinned_version
from devkit.salesforce_emulator.process import SalesforceEmulator
from streams.commands import kafka_io
from streams.transport.connection import BrokerConnection
from tests.fixtures import assert_one_line_error, run_cli, start_cli, stop_cli

pytestmark = pytest.mark.integration


def test_broker_command_serves_kafka_until_sigterm() -> None:
    process = start_cli("broker", "--port", "0")
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("embedded Kafka broker listening on 127.0.0.1:"), first
        bootstrap = first.split()[-1]
        exports = [process.stdout.readline().strip() for _ in range(2)]
        assert exports == [
            f"export ACTIVITY_SYNC_BROKER_URL=kafka://{bootstrap}",
            "export ACTIVITY_SYNC_BROKER_PROFILE=embedded",
        ]
        env = dict(line.removeprefix("export ").split("=", 1) for line in exports)
        result = run_cli("produce", "--generate", "2", env=env)
        assert result.returncode == 0, result.stderr
    finally:
        code, stderr = stop_cli(process)
    assert code == 0, stderr
    assert "Traceback" not in stderr


def test_broker_command_on_a_busy_port_is_a_one_line_error() -> None:
    with EmbeddedBroker() as running:
        result = run_cli("broker", "--port", str(running.port), env={})
    assert_one_line_error(result, "already in use")


def kafka_ready(process: subprocess.Popen[str]) -> dict[str, str]:
    """The `kafka` command's ready line checked, and its export lines as settings."""
    assert process.stdout is not None
    ready = process.stdout.readline()
    assert ready.startswith(f"Apache Kafka {pinned_version()} ("), ready
    assert "1 node(s) ready at 127.0.0.1:" in ready
    export = process.stdout.readline().strip().removeprefix("export ")
    name, value = export.split("=", 1)
    return {name: value.strip("'")}


async def topics_of(env: dict[str, str]) -> list[str]:
    async with kafka_io.admin(
        BrokerConnection.named(env["ACTIVITY_SYNC_BROKER_URL"], "kafka")
    ) as admin:
        return list(await admin.list_topics())


async def test_kafka_command_serves_until_sigterm_and_keeps_its_log(tmp_path: Path) -> None:
    data = str(tmp_path / "kafka")
    process = start_cli("kafka", "--port", "0", "--data-dir", data)
    try:
        env = kafka_ready(process)
        assert list(env) == ["ACTIVITY_SYNC_BROKER_URL"]  # the kafka profile is the default
        url = BrokerConnection.named(env["ACTIVITY_SYNC_BROKER_URL"], "kafka")
        async with kafka_io.admin(url) as admin:
            await admin.create_topics([NewTopic("kept", 1, 1)])
    finally:
        code, stderr = stop_cli(process)
    assert code == 0, stderr
    assert "Traceback" not in stderr
    # Started again on the same data dir: the same storage, the topic still there.
    again = start_cli("kafka", "--port", "0", "--data-dir", data)
    try:
        assert "kept" in await topics_of(kafka_ready(again))
    finally:
        code, stderr = stop_cli(again)
    assert code == 0, stderr


def test_kafka_command_on_a_busy_port_is_a_one_line_error() -> None:
    with EmbeddedBroker() as running:
        result = run_cli("kafka", "--port", str(running.port), env={})
    assert_one_line_error(result, "already in use")


def test_salesforce_emulator_command_prints_its_connection_and_serves(tmp_path: Path) -> None:
    process = start_cli(
        "salesforce-emulator",
        "--port",
        "0",
        "--data-dir",
        str(tmp_path / "sf"),
        env={"ACTIVITY_SYNC_EMULATOR_CLIENT_ID": "from-env"},
    )
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        assert ready["client_id"] == "from-env"
        assert Path(ready["ca_file"]).exists()
        health = requests.get(f"{ready['url']}/__admin/health", verify=ready["ca_file"], timeout=5)
        assert health.json()["ok"] is True
    finally:
        code, stderr = stop_cli(process)
    assert code == 0, stderr


def test_salesforce_emulator_never_prints_a_secret_it_was_given(tmp_path: Path) -> None:
    """Issue 21, item 13: compose gives the emulator the client secret as a file, and the
    ready line printed it into `docker compose logs`. It names the file instead."""
    secret_file = tmp_path / "salesforce_client_secret.txt"
    secret_file.write_text("s3cret-from-the-file\n")
    process = start_cli(
        "salesforce-emulator",
        "--port",
        "0",
        "--data-dir",
        str(tmp_path / "sf"),
        "--client-secret-file",
        str(secret_file),
        env={"ACTIVITY_SYNC_EMULATOR_CLIENT_ID": "from-env"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        ready = json.loads(line)
        assert "s3cret-from-the-file" not in line
        assert ready["client_secret_from"] == f"--client-secret-file {secret_file}"
        assert "client_secret" not in ready
        # The secret from the file is the one the emulator accepts.
        token = requests.post(
            f"{ready['url']}/services/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "from-env",
                "client_secret": "s3cret-from-the-file",
            },
            verify=ready["ca_file"],
            timeout=5,
        )
        assert token.status_code == 200, token.text
    finally:
        code, stderr = stop_cli(process)
    assert code == 0, stderr
    assert "s3cret-from-the-file" not in stderr
    assert "s3cret-from-the-file" not in (tmp_path / "sf" / "credentials.json").read_text()


def test_salesforce_emulator_bad_faults_are_a_one_line_error(tmp_path: Path) -> None:
    result = run_cli(
        "salesforce-emulator", "--data-dir", str(tmp_path / "sf"), "--faults", "{nope", env={}
    )
    assert_one_line_error(result, "--faults")


def test_the_emulator_process_starts_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Outside the checkout, with a data dir relative to the caller's directory.
    monkeypatch.chdir(tmp_path)
    emulator = SalesforceEmulator(Path("sf"))
    try:
        assert Path(emulator.ca_file) == tmp_path / "sf" / "ca.pem"
        assert emulator.admin("GET", "health")["ok"] is True
    finally:
        emulator.close()
