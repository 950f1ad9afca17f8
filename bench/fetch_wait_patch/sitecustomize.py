"""Experiment only (`pipeline_bench --fetch-max-wait-ms N`): clamp Faust's fetch wait.

Faust 0.15.3 creates its aiokafka consumer with a hard-coded `fetch_max_wait_ms=1500`
(faust/transport/drivers/aiokafka.py). Against Tansu a fetch then waits about half of
that before answering even when records are there, once per hop (booking-events to
the ingest agent, activity-projections to the sink). This directory is put first on
the workers' PYTHONPATH by the bench, so Python imports this module at start-up and
every consumer created with `fetch_max_wait_ms` gets BENCH_FETCH_MAX_WAIT_MS instead.
Nothing in the app is changed; it measures what a setting would buy.
"""

from __future__ import annotations

import os
from typing import Any

try:
    import aiokafka

    _original_init = aiokafka.AIOKafkaConsumer.__init__

    def _init(self: Any, *args: Any, **kwargs: Any) -> None:
        if "fetch_max_wait_ms" in kwargs:
            kwargs["fetch_max_wait_ms"] = int(os.environ.get("BENCH_FETCH_MAX_WAIT_MS", "50"))
        _original_init(self, *args, **kwargs)

    aiokafka.AIOKafkaConsumer.__init__ = _init
except ImportError:  # pragma: no cover - not an aiokafka process
    pass
