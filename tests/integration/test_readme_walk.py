"""The README's laptop run ("A laptop run without `make demo`, in four shells"), each
shell a process of its own: `python -m devkit broker`, `python -m devkit
salesforce-emulator`, `activity-sync worker`, `activity-sync produce` and `status`; then
every long-running process stopped and started again, as a person would, and more
events produced. It ends with the Events the fold of everything produced says, and a
`status` that reads the booking's Event from Salesforce and says it is in sync.

The embedded broker forgets its log when it stops (README: "Stopping and starting
again"), so the restarted worker says in one line that it starts with empty tables, and
the walk produces the first bookings again before the new ones, as the README says.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from devkit.broker import free_port, wait_for_port
from devkit.salesforce_emulator.process import SalesforceEmulator
from devkit.verification import expected_events
from devkit.workers import WorkerProcess
from streams.commands.generate import generate_events
from tests.fixtures import run_cli, start_cli, stop_cli, wait_for_salesforce

pytestmark = pytest.mark.integration

DROPPED = "starts with empty tables"


def start_broker(port: int) -> subprocess.Popen[str]:
    """`python -m devkit broker --port PORT`, once it prints where it listens."""
    process = start_cli("broker", "--port", str(port))
    assert process.stdout is not None
    first = process.stdout.readline()
    if not first.startswith(f"embedded Kafka broker listening on 127.0.0.1:{port}"):
        stop_cli(process)
        raise AssertionError(f"the broker did not start: {first!r}")
    assert wait_for_port("127.0.0.1", port, timeout=30)
    return process


def shell_env(broker_port: int, emulator: SalesforceEmulator, data_dir: Path) -> dict[str, str]:
    """What the README's shells export: the profile, and the emulator's printed settings
    (the broker on a free port rather than 9092, the data dir under the test's)."""
    return {
        "ACTIVITY_SYNC_BROKER_PROFILE": "embedded",
        "ACTIVITY_SYNC_BROKER_URL": f"kafka://127.0.0.1:{broker_port}",
        "ACTIVITY_SYNC_DATA_DIR": str(data_dir),
        "ACTIVITY_SYNC_SALESFORCE_LOGIN_URL": emulator.url,
        "ACTIVITY_SYNC_SALESFORCE_CLIENT_ID": emulator.client_id,
        "ACTIVITY_SYNC_SALESFORCE_CLIENT_SECRET": emulator.client_secret,
        "ACTIVITY_SYNC_SALESFORCE_CA_FILE": emulator.ca_file,
    }


def produce(env: dict[str, str], *args: str) -> None:
    result = run_cli("produce", *args, env=env, timeout=300)
    assert result.returncode == 0, result.stderr


def status_in_sync(env: dict[str, str], booking: str, worker: WorkerProcess) -> None:
    """`status BOOKING` names it and, having read its Event from Salesforce (the shell's
    Salesforce settings), says the Event holds the projection's version."""
    result = run_cli("status", booking, "--worker", worker.web_url, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert booking in result.stdout, result.stdout
    assert "Sync: in sync (Salesforce has version" in result.stdout, result.stdout
    assert "not checked" not in result.stdout, result.stdout


async def test_the_readme_laptop_walk_survives_a_restart_of_every_process(
    tmp_path: Path,
) -> None:
    broker_port = free_port()
    first = list(generate_events(200, seed=0))  # produce --generate 200
    later = list(generate_events(50, seed=1))  # produce --generate 50 --seed 1
    broker = start_broker(broker_port)
    # Started here; its first start picks a port, a restart binds the same one (as the
    # README's --port 8443 does).
    emulator = SalesforceEmulator(tmp_path / "salesforce-emulator")
    worker: WorkerProcess | None = None
    try:
        env = shell_env(broker_port, emulator, tmp_path / "worker")
        worker = WorkerProcess(env, tmp_path / "worker.log").start().wait_ready()
        produce(env, "--generate", "200")
        wait_for_salesforce(emulator, expected_events(first))
        status_in_sync(env, "b-s0-000000", worker)

        # Ctrl-C in every shell, then the same commands again.
        worker.stop()
        emulator.stop()
        code, stderr = stop_cli(broker)
        assert code == 0, stderr
        broker = start_broker(broker_port)
        emulator.start()
        assert shell_env(broker_port, emulator, tmp_path / "worker") == env
        worker.start().wait_ready()
        log = worker.log_text()
        assert len([line for line in log.splitlines() if DROPPED in line]) == 1, log
        assert "Traceback" not in log

        produce(env, "--generate", "200")  # the README: the earlier bookings again
        produce(env, "--generate", "50", "--seed", "1")
        wait_for_salesforce(emulator, {**expected_events(first), **expected_events(later)})
        status_in_sync(env, "b-s0-000000", worker)
        status_in_sync(env, "b-s1-000000", worker)
        assert worker.process is not None
        assert worker.process.poll() is None, "worker died"
    finally:
        if worker is not None:
            worker.stop()
        emulator.close()
        stop_cli(broker)
