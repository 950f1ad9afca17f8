"""Every settings, connection and credentials mistake is one line on stderr, for every
command, and no output ever shows a secret. No broker or Salesforce runs here: the
commands run as subprocesses (in parallel: each is mostly Python start-up) against a
port nobody listens on."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from devkit.broker import free_port
from tests.fixtures import command_line

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
SECRETS = ("hunter2-PASSWORD", "hunter2-CLIENT-SECRET", "hunter2-FROM-FILE", "hunter2-WEB")


@dataclass
class Case:
    args: tuple[str, ...]
    env: dict[str, str]
    words: tuple[str, ...]  # in the last line


def secret_environment(tmp_path: Path) -> dict[str, str]:
    token_file = tmp_path / "security_token"
    token_file.write_text("hunter2-FROM-FILE\n")
    return {
        "ACTIVITY_SYNC_BROKER_URL": f"kafka://127.0.0.1:{free_port()}",
        # An org configured (a worker without one refuses to start: test_startup.py).
        "ACTIVITY_SYNC_SALESFORCE_CLIENT_ID": "activity-sync",
        "ACTIVITY_SYNC_SALESFORCE_CLIENT_SECRET": "hunter2-CLIENT-SECRET",
        "ACTIVITY_SYNC_SALESFORCE_PASSWORD": "hunter2-PASSWORD",
        "ACTIVITY_SYNC_SALESFORCE_SECURITY_TOKEN_FILE": str(token_file),
        "ACTIVITY_SYNC_WEB_TOKEN": "hunter2-WEB",
        "ACTIVITY_SYNC_STARTUP_TIMEOUT": "1",
    }


def cases(tmp_path: Path) -> dict[str, Case]:
    missing = str(tmp_path / "missing")
    worker = ("worker", "-l", "info")
    return {
        "password flow without username": Case(
            ("produce", "--generate", "1"),
            {"ACTIVITY_SYNC_SALESFORCE_AUTH": "password"},
            ("bad settings", "ACTIVITY_SYNC_SALESFORCE_USERNAME"),
        ),
        "partitions not a number": Case(
            ("produce", "--generate", "1"),
            {"ACTIVITY_SYNC_PARTITIONS": "abc"},
            ("ACTIVITY_SYNC_PARTITIONS", "integer"),
        ),
        "nested setting not a number": Case(
            ("status", "b-1"),
            {"ACTIVITY_SYNC_SALESFORCE_TIMEOUT_S": "soon"},
            ("ACTIVITY_SYNC_SALESFORCE_TIMEOUT_S",),
        ),
        "missing secret file": Case(
            ("backfill", "--app-version", "2"),
            {"ACTIVITY_SYNC_SALESFORCE_PASSWORD_FILE": missing},
            ("ACTIVITY_SYNC_SALESFORCE_PASSWORD_FILE", missing, "No such file"),
        ),
        "empty broker URL": Case(
            ("replay", "--since", "1h"),
            {"ACTIVITY_SYNC_BROKER_URL": ""},
            ("ACTIVITY_SYNC_BROKER_URL", "no Kafka broker"),
        ),
        "empty broker URL, worker": Case(
            worker, {"ACTIVITY_SYNC_BROKER_URL": ""}, ("activity-sync worker", "BROKER_URL")
        ),
        # Parsed as our option, not as Faust's --app: it gets as far as the broker.
        "backfill --app-version 2": Case(
            ("backfill", "--app-version", "2", "--timeout", "1"),
            {},
            ("activity-sync backfill", "cannot reach the Kafka broker"),
        ),
        # Version 1 is followed too (a new deployment's first load): to the broker.
        "backfill --app-version 1": Case(
            ("backfill", "--app-version", "1", "--timeout", "1"),
            {},
            ("activity-sync backfill", "cannot reach the Kafka broker"),
        ),
        "delete-version 1": Case(
            ("delete-version", "1", "--yes", "--timeout", "1"),
            {"ACTIVITY_SYNC_APP_VERSION": "2"},
            ("activity-sync delete-version", "cannot reach the Kafka broker"),
        ),
        "worker with no broker listening": Case(
            worker, {}, ("activity-sync worker", "cannot reach the Kafka broker")
        ),
        "worker with a missing CA file": Case(
            worker,
            {"ACTIVITY_SYNC_SALESFORCE_CA_FILE": missing},
            ("ACTIVITY_SYNC_SALESFORCE_CA_FILE", "No such file"),
        ),
        "worker on all interfaces without a token": Case(
            worker,
            {"ACTIVITY_SYNC_WEB_BIND": "0.0.0.0", "ACTIVITY_SYNC_WEB_TOKEN": ""},
            ("ACTIVITY_SYNC_WEB_BIND=0.0.0.0", "ACTIVITY_SYNC_WEB_TOKEN"),
        ),
        "status with no worker": Case(
            ("status", "b-1", "--worker", f"http://127.0.0.1:{free_port()}"),
            {},
            ("cannot reach the worker",),
        ),
    }


def test_every_mistake_is_one_line_and_no_secret_is_shown(tmp_path: Path) -> None:
    base = secret_environment(tmp_path)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVITY_SYNC_")}
    running = {
        name: subprocess.Popen(
            command_line(*case.args),
            cwd=tmp_path,  # no .env of the checkout
            env={**clean, "PYTHONPATH": str(REPO), **base, **case.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, case in cases(tmp_path).items()
    }
    problems = []
    for name, process in running.items():
        case = cases(tmp_path)[name]
        stdout, stderr = process.communicate(timeout=60)
        lines = stderr.strip().splitlines()
        shown = stdout + stderr
        if process.returncode == 0 or not lines:
            problems.append(f"{name}: exit {process.returncode}, stderr {stderr!r}")
        elif "Traceback" in shown or not all(line.startswith("activity-sync") for line in lines):
            problems.append(f"{name}: not one-line errors: {stderr!r}")
        elif not all(word in lines[-1] for word in case.words):
            problems.append(f"{name}: {lines[-1]!r} lacks {case.words}")
        # The worker waits for the broker with one line per retry; the rest say it once.
        if len(lines) > 1 and not all("waiting" in line for line in lines[:-1]):
            problems.append(f"{name}: more than one line: {stderr!r}")
        problems += [f"{name}: shows {secret}" for secret in SECRETS if secret in shown]
    assert not problems, "\n".join(problems)
