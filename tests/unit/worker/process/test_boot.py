"""`boot()` (streams/worker/process/boot.py) sets up the process; importing the app does not.

The import checks run in a fresh interpreter: this test process may have imported the
app and booted long before (tests/unit/worker/process/test_gc_tuning.py calls `streams.cli.main`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from streams import cli
from streams.worker.process.gc_tuning import THRESHOLDS

# Records what reaches glibc (mallopt) instead of calling it, then reports the process's
# state after importing `module` and again after boot(settings).
PROBE = """
import gc, json, logging, sys
from faust import stores
from streams.worker.process import allocator, log_filters, rocksdb_store

calls = []

class RecordingLibc:
    def mallopt(self, option, value):
        calls.append([option, value])
        return 1

    def malloc_trim(self, pad):
        return 0

allocator.LIBC = RecordingLibc()
gc.set_threshold(700, 10, 10)  # CPython's defaults
payload_logger = logging.getLogger(log_filters.PAYLOAD_LOGGERS[0])

def state():
    return {
        "mallopt": list(calls),
        "gc": list(gc.get_threshold()),
        "budgeted_store": stores.by_url("rocksdb://") is rocksdb_store.Store,
        "log_filters": len(payload_logger.filters),
    }

__import__(sys.argv[1])
imported = state()
from streams.worker.app import settings
from streams.worker.process.boot import boot
boot(settings)
booted = state()
print(json.dumps({"imported": imported, "booted": booted}))
"""


def probe(module: str) -> dict[str, Any]:
    env = {**os.environ, "ACTIVITY_SYNC_MALLOC_ARENA_MAX": "3"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, module], capture_output=True, text=True, env=env, check=True
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


@pytest.mark.parametrize("module", ["streams.worker.app", "streams.cli"])
def test_importing_the_app_sets_up_nothing(module: str) -> None:
    assert probe(module)["imported"] == {
        "mallopt": [],
        "gc": [700, 10, 10],
        "budgeted_store": False,
        "log_filters": 0,
    }


def test_boot_sets_up_the_process() -> None:
    from streams.worker.process.allocator import M_ARENA_MAX

    assert probe("streams.worker.app")["booted"] == {
        "mallopt": [[M_ARENA_MAX, 3]],
        "gc": list(THRESHOLDS),
        "budgeted_store": True,
        "log_filters": 2,  # RedactCustomer, OneLineClientErrors
    }


def test_the_command_line_boots_before_the_worker_s_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The checks' threads must find glibc's arena cap already set.
    steps: list[str] = []
    monkeypatch.setattr(sys, "argv", ["activity-sync", "worker"])
    monkeypatch.setattr(cli, "boot", lambda settings: steps.append("boot"))
    monkeypatch.setattr(cli, "check_worker", lambda args: steps.append("checks"))
    monkeypatch.setattr(cli.app, "main", lambda: steps.append("app"))

    cli.main()

    assert steps == ["boot", "checks", "app"]
