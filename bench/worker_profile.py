"""Where a worker's CPU goes: py-spy samples grouped into the pipeline's stages.

`python -m bench.pipeline_bench --only backfill --py-spy PATH` attaches py-spy
(not a project dependency: `pip install --target DIR py-spy`, then PATH is
DIR/bin/py-spy) to the one-worker backfill and prints this breakdown; the raw
samples stay in the work dir. `python -m bench.worker_profile RAW_FILE` summarises a file
recorded earlier with `py-spy record -f raw`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

# First match wins: a sample counts for the first stage whose marker is in its stack.
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "sink (Salesforce calls, synced table)",
        ("streams/worker/pipeline/sink.py", "streams/salesforce/"),
    ),
    (
        "Kafka produce (projection sends, changelog writes)",
        (
            "Topic.send",
            "publish_message",
            "Producer.send",
            "ProducerBuffer",
            "aiokafka/producer",
            "Channel._send_now",
            "on_send_",
        ),
    ),
    ("fold: decode + validate", ("parse_event", "validate_json")),
    ("fold: state load/store (JSON)", ("from_bytes", "to_bytes")),
    ("fold: fold + project", ("streams/core/fold.py", "streams/core/projection.py")),
    ("table bookkeeping", ("table_partition", "ManagedUserDict", "faust/tables")),
    ("ingest agent, other", ("streams/worker/pipeline/ingest.py",)),
    (
        "Kafka consume (fetch, Faust events, acks)",
        (
            "faust/transport/consumer.py",
            "aiokafka/consumer",
            "conductor.py",
            "create_event",
            "faust/streams.py",
            "aiokafka/record",
        ),
    ),
    ("offset commits", ("commit",)),
    ("thread pool (off-loop calls)", ("_WorkItem.run",)),
    (
        "event loop, scheduling, waiting",
        ("selectors.py", "base_events.py", "asyncio/events.py", "asyncio/tasks.py", "mode/"),
    ),
)


def summarise(raw: Path) -> list[tuple[str, float]]:
    """Share of samples per stage, largest first, from py-spy's raw (collapsed) output."""
    counts: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not number.isdigit():
            continue
        samples = int(number)
        if stack.rsplit(";", 1)[-1].startswith("_worker (") and "futures/thread.py" in stack:
            continue  # an idle pool thread waiting for work, not CPU
        total += samples
        stage = next((name for name, marks in STAGES if any(m in stack for m in marks)), "other")
        counts[stage] += samples
    return [(name, n / total) for name, n in counts.most_common()] if total else []


def record(py_spy: str, pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    """Start py-spy sampling `pid` for `seconds` (100 Hz) into `out` (raw format)."""
    duration = str(max(1, int(seconds)))
    options = ["-r", "100", "-f", "raw", "-o", str(out)]
    return subprocess.Popen(
        [py_spy, "record", "-p", str(pid), "-d", duration, *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(Path(py_spy).resolve().parent.parent)},
    )


def print_summary(rows: list[tuple[str, float]]) -> None:
    for name, share in rows:
        print(f"  {share:6.1%}  {name}")


if __name__ == "__main__":
    print_summary(summarise(Path(sys.argv[1])))
