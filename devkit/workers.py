"""Worker processes on this machine, for the demo, the tests and the benchmarks.

A worker is the real `activity-sync worker` command in its own process, configured by
environment variables exactly as in production; nothing here is test-only behaviour.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from devkit.broker import EmbeddedBroker, free_port, stop_process
from devkit.broker_namespace import BrokerNamespace
from devkit.kafka import KafkaCluster
from devkit.salesforce_emulator.process import SalesforceEmulator

READY_MARKER = b"[^Worker]: Ready"
# Long enough that the completion timer never fires during a test or bench run: the
# expected state is then exactly the fold of what was produced.
NO_COMPLETION_GRACE = str(20 * 365 * 86400)
# A test or bench worker: no completion timer, short retries and sweeps.
QUICK_SETTINGS: Mapping[str, str] = {
    "completion_grace": NO_COMPLETION_GRACE,
    "sink_limit_pause": "1",
    "sink_attempt_deadline": "3",
    "reconcile_interval": "2",
    "salesforce_retry_cap_s": "2",
}


def worker_environment(
    broker: BrokerNamespace | EmbeddedBroker | KafkaCluster,
    emulator: SalesforceEmulator,
    data_dir: Path,
    preset: Mapping[str, str] = QUICK_SETTINGS,
    /,
    **extra: str,
) -> dict[str, str]:
    """ACTIVITY_SYNC_* settings of a worker on this broker (its profile, and the app id
    and topics of its namespace) and emulator, with the production store (rocksdb://)
    under `data_dir`: then `preset` (by default a test or bench worker's,
    `QUICK_SETTINGS`) and `extra`, by setting name (`fold_batch_size="5000"` sets
    ACTIVITY_SYNC_FOLD_BATCH_SIZE)."""
    env = {
        **BrokerNamespace.of(broker).env,
        "ACTIVITY_SYNC_DATA_DIR": str(data_dir),
        "ACTIVITY_SYNC_SALESFORCE_LOGIN_URL": emulator.url,
        "ACTIVITY_SYNC_SALESFORCE_CLIENT_ID": emulator.client_id,
        "ACTIVITY_SYNC_SALESFORCE_CLIENT_SECRET": emulator.client_secret,
        "ACTIVITY_SYNC_SALESFORCE_CA_FILE": emulator.ca_file,
    }
    settings = {**preset, **extra}
    env.update({f"ACTIVITY_SYNC_{name.upper()}": value for name, value in settings.items()})
    return env


class WorkerError(RuntimeError):
    """A worker process did not start or died."""


@dataclass
class WorkerProcess:
    """One `activity-sync worker` process; `env` holds its `ACTIVITY_SYNC_*` settings."""

    env: dict[str, str]
    log_path: Path
    web_port: int = 0
    loglevel: str = "info"
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.web_port == 0:
            self.web_port = free_port()

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start(self) -> WorkerProcess:
        if self.process is not None and self.process.poll() is None:
            raise WorkerError("worker already running")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            **self.env,
            "ACTIVITY_SYNC_WEB_PORT": str(self.web_port),
            "PYTHONUNBUFFERED": "1",
        }
        with open(self.log_path, "ab") as log:
            log.write(b"\n--- worker start ---\n")
            log.flush()
            self._log_offset = log.tell()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streams", "worker", "-l", self.loglevel],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def wait_ready(self, timeout: float = 60.0) -> WorkerProcess:
        """Block until the worker logs that it is ready (partitions assigned, recovered)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise WorkerError(f"worker exited early; see {self.log_path}")
            with open(self.log_path, "rb") as log:
                log.seek(self._log_offset)
                if READY_MARKER in log.read():
                    return self
            time.sleep(0.2)
        raise WorkerError(f"worker not ready after {timeout}s; see {self.log_path}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metrics(self, timeout: float = 5.0) -> list[Sample]:
        """Every sample of the worker's /metrics/ page."""
        answer = requests.get(f"{self.web_url}/metrics/", timeout=timeout)
        answer.raise_for_status()
        return [
            sample
            for family in text_string_to_metric_families(answer.text)
            for sample in family.samples
        ]

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no final commit, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM and wait: Faust's clean shutdown (offsets committed)."""
        stop_process(self.process, timeout)
