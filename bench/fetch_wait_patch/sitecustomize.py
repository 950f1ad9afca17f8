"""Experiment only (`pipeline_bench --fetch-max-wait-ms N`): set every consumer's fetch wait.

The app's consumers wait 100 ms for a fetch (50 ms on Tansu; streams/transport/consumer.py
sets it on the aiokafka consumer after Faust creates it with its hard-coded 1500 ms).
This directory is put first on the workers' PYTHONPATH by the bench, so Python imports
this module at start-up, and every aiokafka consumer in the process then waits
BENCH_FETCH_MAX_WAIT_MS, whatever it was created or later set with: the value is a
class property whose setter is ignored. Nothing in the app is changed; it measures
what another wait would buy.
"""

from __future__ import annotations

import os
from typing import Any

try:
    import aiokafka

    _WAIT_MS = int(os.environ.get("BENCH_FETCH_MAX_WAIT_MS", "50"))

    def _ignore(self: Any, value: int) -> None:
        """Faust's 1500 ms and the app's own wait alike give way to the bench's."""

    # aiokafka keeps the wait in `_fetch_max_wait_ms` and hands it to its fetcher at start.
    aiokafka.AIOKafkaConsumer._fetch_max_wait_ms = property(lambda self: _WAIT_MS, _ignore)
except ImportError:  # pragma: no cover - not an aiokafka process
    pass
