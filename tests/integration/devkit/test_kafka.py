"""The dev kit's Apache Kafka process (devkit/kafka.py) as a test run uses it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
STARTER = """
import sys, time
from pathlib import Path
from devkit.kafka import KafkaCluster
cluster = KafkaCluster(Path(sys.argv[1]), brokers=1).start()
print(cluster.nodes[0].process.pid, flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    return state != "Z"


def test_a_node_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    # A test run or a bench killed before it could stop its Kafka must not leave the JVM
    # behind to eat the CPU of every later run.
    with subprocess.Popen(
        [sys.executable, "-c", STARTER, str(tmp_path / "kafka")],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    ) as starter:
        try:
            assert starter.stdout is not None
            jvm = int(starter.stdout.readline())
            assert alive(jvm)
            starter.send_signal(signal.SIGKILL)
            starter.wait()
            deadline = time.monotonic() + 60
            while alive(jvm) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not alive(jvm), "the Kafka JVM outlived the process that started it"
        finally:
            starter.kill()  # when an assertion failed before the SIGKILL
