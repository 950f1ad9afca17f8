"""A worker's and `check-salesforce`'s set-up mistakes (issue 21, items 4, 7, 10, 11):
each is one line naming what to set, at once (not after the startup timeout's retries),
with the documented exit code: 2 for a setting to fix, 1 otherwise. The commands run as
subprocesses, in parallel; the first test needs no broker and no Salesforce.

"At once" is judged without a stopwatch: every command gets a startup timeout far longer
than the test waits, so one that retries instead of failing is still running when the
test stops waiting and is reported as such, however loaded the machine is."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import pytest

from devkit.broker import free_port
from devkit.broker_namespace import BrokerNamespace
from devkit.salesforce_emulator.process import SalesforceEmulator
from devkit.workers import worker_environment
from tests.fixtures import command_line

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
# Far past WAIT_S: a command that retries instead of failing at once is still running
# when the test stops waiting (the issue: ~25 s of retries).
PATIENCE = "3600"
# How long the test waits for every command to end: all start together on 2 cores, and a
# loaded machine took 35 s for the slowest.
WAIT_S = 240.0
SF = "ACTIVITY_SYNC_SALESFORCE_"


@dataclass
class Case:
    args: tuple[str, ...]
    env: dict[str, str | None] = field(default_factory=dict)  # None: unset
    exit_code: int = 2
    words: tuple[str, ...] = ()  # in the error line, or in stdout when exit_code is 0


def run_all(cases: dict[str, Case], base: dict[str, str], cwd: Path) -> list[str]:
    """Start every case at once; what went wrong with each (nothing: an empty list)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVITY_SYNC_")}
    started = time.monotonic()
    running = {}
    for name, case in cases.items():
        env = {**clean, "PYTHONPATH": str(REPO), **base}
        for key, value in case.env.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        running[name] = subprocess.Popen(
            command_line(*case.args),
            cwd=cwd,  # no .env of the checkout
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    took: dict[str, float] = {}
    while len(took) < len(running):
        for name, process in running.items():
            if name not in took and process.poll() is not None:
                took[name] = time.monotonic() - started
        if time.monotonic() - started > WAIT_S:
            break
        time.sleep(0.05)
    problems = []
    for name, process in running.items():
        case = cases[name]
        if name not in took:
            process.kill()
            process.communicate(timeout=30)
            problems.append(f"{name}: still running after {WAIT_S:.0f}s: it retries")
            continue
        stdout, stderr = process.communicate(timeout=30)
        lines = stderr.strip().splitlines()
        if process.returncode != case.exit_code:
            problems.append(f"{name}: exit {process.returncode}, not {case.exit_code}: {stderr!r}")
        elif case.exit_code == 0:
            missing = [word for word in case.words if word not in stdout]
            if missing:
                problems.append(f"{name}: stdout lacks {missing}: {stdout[:300]!r}")
        elif len(lines) != 1 or not lines[0].startswith("activity-sync ") or "Traceback" in stderr:
            problems.append(f"{name}: not one line: {stderr!r}")
        elif not all(word in lines[0] for word in case.words):
            problems.append(f"{name}: {lines[0]!r} lacks {case.words}")
    return problems


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something listens on (another worker, say)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


class _Quiet(http.server.BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def plain_http_port() -> Iterator[int]:
    """A port that answers plain HTTP (not TLS): a wrong port in the login URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_setup_mistakes_without_a_broker_or_salesforce(
    tmp_path: Path, busy_port: int, plain_http_port: int
) -> None:
    not_pem = tmp_path / "ca.der"
    not_pem.write_bytes(b"\x30\x82\x01\x0a not a PEM file")
    missing = str(tmp_path / "missing.pem")
    nobody = f"https://127.0.0.1:{free_port()}"
    worker = ("worker", "-l", "info")
    check = ("check-salesforce", "--timeout", PATIENCE)
    no_salesforce = {f"{SF}LOGIN_URL": None, f"{SF}CLIENT_ID": None, f"{SF}CLIENT_SECRET": None}
    base = {
        "ACTIVITY_SYNC_BROKER_URL": f"kafka://127.0.0.1:{free_port()}",
        "ACTIVITY_SYNC_STARTUP_TIMEOUT": PATIENCE,
        "ACTIVITY_SYNC_WEB_PORT": str(free_port()),
        f"{SF}LOGIN_URL": nobody,
        f"{SF}CLIENT_ID": "activity-sync",
        f"{SF}CLIENT_SECRET": "s3cret",
    }
    cases = {
        # Faust's traceback after joining the group, before.
        "worker: the web port is taken": Case(
            worker,
            {"ACTIVITY_SYNC_WEB_PORT": str(busy_port)},
            words=(f"ACTIVITY_SYNC_WEB_PORT={busy_port}", "in use"),
        ),
        "worker --web-port taken": Case(
            (*worker, "--web-port", str(busy_port)),
            words=(f"ACTIVITY_SYNC_WEB_PORT={busy_port}", "in use"),
        ),
        # Exit 1 before, though the fix is a setting.
        "worker on all interfaces without a token": Case(
            worker,
            {"ACTIVITY_SYNC_WEB_BIND": "0.0.0.0"},
            words=("ACTIVITY_SYNC_WEB_BIND=0.0.0.0", "ACTIVITY_SYNC_WEB_TOKEN"),
        ),
        # The worker tried login.salesforce.com and started, before.
        "worker with no Salesforce settings": Case(
            worker, no_salesforce, words=(f"{SF}LOGIN_URL", f"{SF}CLIENT_ID")
        ),
        "worker with a client id but no secret": Case(
            worker, {f"{SF}CLIENT_SECRET": None}, words=(f"{SF}CLIENT_SECRET",)
        ),
        "worker with a CA file that is not PEM": Case(
            worker, {f"{SF}CA_FILE": str(not_pem)}, words=(f"{SF}CA_FILE", "PEM")
        ),
        "worker with an http:// login URL": Case(
            worker,
            {f"{SF}LOGIN_URL": "http://login.salesforce.com"},
            words=(f"{SF}LOGIN_URL", "https://"),
        ),
        # A traceback before.
        "check-salesforce with a missing CA file": Case(
            check, {f"{SF}CA_FILE": missing}, words=(f"{SF}CA_FILE", "No such file")
        ),
        "check-salesforce with no Salesforce settings": Case(
            check, no_salesforce, words=(f"{SF}LOGIN_URL", f"{SF}CLIENT_ID")
        ),
        # ~25 s of retries ending in ConnectionError, before.
        "check-salesforce, nothing listening": Case(
            check, words=("connection refused", f"{SF}LOGIN_URL")
        ),
        "check-salesforce, a plain-HTTP port": Case(
            check,
            {f"{SF}LOGIN_URL": f"https://127.0.0.1:{plain_http_port}"},
            words=("does not speak HTTPS", f"{SF}LOGIN_URL"),
        ),
        "check-salesforce, an unknown host": Case(
            check,
            {f"{SF}LOGIN_URL": "https://no-such-org.invalid"},
            words=("unknown host", f"{SF}LOGIN_URL"),
        ),
        # The network preflight ran first, before: exit 1 and no help without a broker.
        "worker --help without a broker": Case(
            (*worker, "--help"), exit_code=0, words=("Usage:", "--web-port")
        ),
        # Faust's version, before.
        "--version": Case(
            ("--version",),
            exit_code=0,
            words=(f"activity-sync, version {version('booking-activity-sync')}",),
        ),
        # Taken as UTC, before.
        "replay --since without a timezone": Case(
            ("replay", "--since", "2026-11-24T09:00:00"), words=("--since", "no timezone")
        ),
        # "nothing to redrive" and exit 0, before.
        "dlq redrive --reason unknown": Case(
            ("dlq", "redrive", "--topic", "events", "--reason", "bad-schema"),
            words=("--reason 'bad-schema'", "not-json", "schema"),
        ),
    }
    problems = run_all(cases, base, tmp_path)
    assert not problems, "\n".join(problems)


def test_an_untrusted_certificate_names_the_ca_file_setting(
    salesforce_emulator: SalesforceEmulator, tmp_path: Path
) -> None:
    env = {
        f"{SF}LOGIN_URL": salesforce_emulator.url,
        f"{SF}CLIENT_ID": salesforce_emulator.client_id,
        f"{SF}CLIENT_SECRET": salesforce_emulator.client_secret,
    }
    case = Case(("check-salesforce",), words=(f"{SF}CA_FILE", "verification failed"))
    problems = run_all({"check-salesforce without the CA": case}, env, tmp_path)
    assert not problems, "\n".join(problems)


def test_worker_mistakes_found_on_the_broker(
    broker: BrokerNamespace, salesforce_emulator: SalesforceEmulator, tmp_path: Path
) -> None:
    # The namespace's topics have 4 partitions, as compose's kafka-init made 8 while the
    # workers said 4: every event was dead-lettered (internal-error: PartitionsMismatch).
    env = worker_environment(broker, salesforce_emulator, tmp_path / "w")
    env["ACTIVITY_SYNC_STARTUP_TIMEOUT"] = PATIENCE
    cases = {
        "worker with another partition count than the topics": Case(
            ("worker", "-l", "info"),
            {"ACTIVITY_SYNC_PARTITIONS": "8"},
            words=("ACTIVITY_SYNC_PARTITIONS=8", f"{broker.topic('booking-events')} has 4"),
        ),
        # Past the broker: the login URL's port is a wrong one.
        "worker with nothing listening at the login URL": Case(
            ("worker", "-l", "info"),
            {f"{SF}LOGIN_URL": f"https://127.0.0.1:{free_port()}"},
            words=("connection refused", f"{SF}LOGIN_URL"),
        ),
    }
    problems = run_all(cases, env, tmp_path)
    assert not problems, "\n".join(problems)
