"""Shared pieces of the pipeline bench and the chaos run.

Everything here observes the pipeline from outside, as an operator would: worker
processes are the real `python -m streams worker`, progress is read from each worker's
`/metrics/` page, Salesforce is read through the emulator's admin API, and topics are
read and written with plain aiokafka clients (`devkit.topics`, shared with the tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.samples import Sample as MetricSample

from devkit.broker import free_port
from devkit.broker_namespace import BrokerNamespace
from devkit.salesforce_emulator.process import SalesforceEmulator
from devkit.topics import AnyBroker
from devkit.workers import QUICK_SETTINGS, READY_MARKER, WorkerProcess, worker_environment
from schemas import event_from_dict
from streams.commands.generate import iso, rescheduled_data
from streams.core.fold import BookingState, fold

EVENTS_TOPIC = "booking-events"
EVENTS_DLQ_TOPIC = "booking-events.dlq"
PARTITIONS = 4

Event = dict[str, Any]


# ---------------------------------------------------------------------------------------
# Workloads
# ---------------------------------------------------------------------------------------


def backfill_workload(
    n_bookings: int, n_events: int, seed: int, *, spread: int = 1000
) -> list[Event]:
    """About `n_events` events over `n_bookings` bookings, as a long-lived topic holds them.

    Lifecycles come from `streams.commands.generate` (with its duplicates and late arrivals);
    each booking is then extended with alternating reschedules and cancellations
    (the reschedule-request flow) until the total reaches `n_events`, and the bookings
    are interleaved with `spread` of them in flight at once, so one booking's events
    lie spread over roughly `spread × events-per-booking` records of the topic.
    """
    from streams.commands.generate import generate_events

    rng = random.Random(seed)
    lifecycles: dict[str, list[Event]] = {}
    for event in generate_events(n_bookings, seed):
        lifecycles.setdefault(str(event["subject"]), []).append(event)
    total = sum(len(events) for events in lifecycles.values())
    extra = max(0, n_events - total)
    bookings = list(lifecycles)
    for n in range(extra):
        booking = bookings[n % len(bookings)]
        events = lifecycles[booking]
        last = max(events, key=lambda e: int(e["sequence"]))
        sequence = int(last["sequence"]) + 1
        moment = datetime.fromisoformat(str(last["time"])) + timedelta(hours=rng.randrange(1, 48))
        if sequence % 2:
            start = moment + timedelta(days=rng.randrange(1, 20))
            data = rescheduled_data(start, start + timedelta(minutes=30), "Moved", "customer")
            kind = "booking.rescheduled"
        else:
            data = {"reason": "Cannot make it", "by": "customer"}
            kind = "booking.canceled"
        events.append(
            {
                **last,
                "id": f"{booking}-x{sequence}",
                "type": kind,
                "time": iso(moment),
                "sequence": sequence,
                "data": data,
            }
        )
    return interleave(list(lifecycles.values()), rng, spread)


def interleave(queues: list[list[Event]], rng: random.Random, spread: int) -> list[Event]:
    """Each queue's events in order, `spread` queues in flight at once, picked at random."""
    waiting = [list(reversed(q)) for q in queues]
    waiting.reverse()
    active: list[list[Event]] = []
    out: list[Event] = []
    while waiting or active:
        while waiting and len(active) < spread:
            active.append(waiting.pop())
        slot = rng.randrange(len(active))
        queue = active[slot]
        out.append(queue.pop())
        if not queue:
            active[slot] = active[-1]
            active.pop()
    return out


# ---------------------------------------------------------------------------------------
# Live latency from Salesforce, and the report table
# ---------------------------------------------------------------------------------------


def last_changes(events: Sequence[Event]) -> dict[str, int]:
    """Per booking: the index in `events` (in send order) of the last event that changed
    its folded state. The sink writes a booking only for a newer state version, so the
    Event's last modification in Salesforce is the write of the state that event made."""
    states: dict[str, BookingState] = {}
    changed: dict[str, int] = {}
    for index, event in enumerate(events):
        booking = str(event["subject"])
        result = fold(states.get(booking), event_from_dict(dict(event)))
        states[booking] = result.state
        if result.changed:
            changed[booking] = index
    return changed


def modstamps(records: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Booking id -> its Event's SystemModstamp (epoch seconds)."""
    return {
        str(r["Booking_Id__c"]): datetime.fromisoformat(
            str(r["SystemModstamp"]).replace("+0000", "+00:00")
        ).timestamp()
        for r in records
        if r.get("Booking_Id__c") and r.get("SystemModstamp")
    }


def latencies(
    changed: Mapping[str, int], sent_at: Sequence[float], records: Iterable[Mapping[str, Any]]
) -> list[float]:
    """Per booking of `records` that `changed` names: from the send (wall clock, by
    event index) of the last event that changed it to its Event's SystemModstamp."""
    modified = modstamps(records)
    return [
        modified[booking] - sent_at[index]
        for booking, index in changed.items()
        if booking in modified
    ]


def latencies_from_salesforce(
    events: list[Event], sent_at: list[float], records: list[dict[str, Any]]
) -> list[float]:
    """Per booking: from the send of the last event that changed it to its SystemModstamp."""
    return latencies(last_changes(events), sent_at, records)


def quantile(values: Sequence[float], q: float) -> float | None:
    """The `q` quantile of `values` (the value at rank q·n, no interpolation); None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def verdict(ok: bool | None) -> str:
    """A report row's verdict: met, MISSED, or n/a when the figure is missing."""
    return "n/a" if ok is None else ("met" if ok else "MISSED")


def print_table(rows: Sequence[tuple[str, str, str, str]]) -> None:
    """The report: measure, value, target, verdict, in aligned columns."""
    header = ("measure", "value", "target", "")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


# ---------------------------------------------------------------------------------------
# Processes: broker, emulator, workers, the bare Faust app
# ---------------------------------------------------------------------------------------


def start_worker(
    broker: AnyBroker,
    emulator: SalesforceEmulator,
    root: Path,
    name: str,
    preset: Mapping[str, str] = QUICK_SETTINGS,
    /,
    **extra: str,
) -> WorkerProcess:
    """A worker process on `broker` (its profile, replication and namespace: an
    embedded broker, a Kafka cluster or a namespace on one) with `preset` (default: a
    test worker's QUICK_SETTINGS; chaos gives production defaults) and `extra` settings."""
    env = worker_environment(broker, emulator, root / name, preset, **extra)
    return WorkerProcess(env, root / f"{name}.log").start()


@dataclass
class BareFaustProcess:
    """`python -m bench.bare_faust_app worker`: Faust's own per-message ceiling."""

    broker: AnyBroker
    root: Path
    batch_size: int = 1000
    batch_window: float = 0.05
    # "faust": Faust's own consumer (the ceiling); "app": the worker's (streams.transport.consumer).
    consumer: str = "faust"
    web_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.root / f"bare-{self.consumer}.log"

    def start(self) -> BareFaustProcess:
        self.root.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            # The URL, the profile (kafka is the default: an embedded broker must say
            # so) and the namespace's topics, as a worker's.
            **BrokerNamespace.of(self.broker).env,
            "ACTIVITY_SYNC_DATA_DIR": str(self.root / f"bare-{self.consumer}-data"),
            "BENCH_BARE_CONSUMER": self.consumer,
            "ACTIVITY_SYNC_WEB_PORT": str(self.web_port),
            "ACTIVITY_SYNC_FOLD_BATCH_SIZE": str(self.batch_size),
            "ACTIVITY_SYNC_FOLD_BATCH_WINDOW": str(self.batch_window),
            "PYTHONUNBUFFERED": "1",
        }
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bench.bare_faust_app", "worker", "-l", "info"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def ready(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"bare Faust app exited; see {self.log_path}")
        return READY_MARKER in self.log_path.read_bytes()

    def count(self) -> int:
        try:
            answer = requests.get(f"http://127.0.0.1:{self.web_port}/count/", timeout=2)
            return int(answer.json()["count"])
        except (requests.RequestException, ValueError, KeyError):
            return 0

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def worker_ready(worker: WorkerProcess) -> bool:
    if worker.process is None or worker.process.poll() is not None:
        raise RuntimeError(f"worker exited; see {worker.log_path}")
    with open(worker.log_path, "rb") as log:
        log.seek(getattr(worker, "_log_offset", 0))
        return READY_MARKER in log.read()


# ---------------------------------------------------------------------------------------
# Metrics: the workers' /metrics/ pages
# ---------------------------------------------------------------------------------------


def by_name(samples: Iterable[MetricSample]) -> dict[str, float]:
    """`name{labels}` -> value for every sample, plus `name` -> sum over its label sets."""
    named: dict[str, float] = {}
    for sample in samples:
        named[sample.name] = named.get(sample.name, 0.0) + sample.value
        if sample.labels:
            labels = ",".join(f'{k}="{v}"' for k, v in sample.labels.items())
            named[f"{sample.name}{{{labels}}}"] = sample.value
    return named


def scrape(workers: Iterable[WorkerProcess]) -> dict[str, float]:
    """The workers' metrics summed sample by sample (a dead or starting worker adds 0)."""
    total: dict[str, float] = {}
    for worker in workers:
        try:
            samples = worker.metrics(timeout=2)
        except requests.RequestException:  # not listening yet, gone, or not 200
            continue
        for name, value in by_name(samples).items():
            total[name] = total.get(name, 0.0) + value
    return total


def folded(samples: dict[str, float]) -> float:
    """Events the fold has finished with: folded (any outcome) or dead-lettered on input."""
    dlq = sum(
        value
        for name, value in samples.items()
        if name.startswith("activity_sync_events_dead_lettered_total{")
        and f'topic="{EVENTS_DLQ_TOPIC}"' in name
    )
    return samples.get("activity_sync_events_folded_total", 0.0) + dlq


def histogram_quantile(samples: dict[str, float], name: str, q: float) -> float | None:
    """Quantile `q` of a Prometheus histogram, interpolated linearly inside its bucket."""
    buckets: list[tuple[float, float]] = []
    prefix = f"{name}_bucket{{"
    for key, value in samples.items():
        if key.startswith(prefix) and 'le="' in key:
            label = key.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float("inf") if label == "+Inf" else float(label), value))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower
            width = count - below
            return lower + (bound - lower) * ((rank - below) / width if width else 1.0)
        lower, below = bound, count
    return lower


def histogram_share_below(samples: dict[str, float], name: str, bound: float) -> float | None:
    total = samples.get(f'{name}_bucket{{le="+Inf"}}', 0.0)
    within = samples.get(f'{name}_bucket{{le="{bound}"}}')
    if not total or within is None:
        return None
    return within / total


def wait_until(check: Callable[[], bool], timeout: float, what: str, poll: float = 0.1) -> float:
    """Poll `check` until true; return the monotonic time it first was. Raises on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return time.monotonic()
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(poll)


# ---------------------------------------------------------------------------------------
# Kafka clients
# ---------------------------------------------------------------------------------------


async def create_topics(
    broker: str | AnyBroker, names: Sequence[str], partitions: int = PARTITIONS
) -> None:
    """Create `names` (default names, in the broker's namespace) with `partitions`, unless
    they exist, with the broker's replication factor: 3 on a three-node cluster. A bare
    bootstrap string (`host:port`) is a single broker: replication factor 1."""
    if not names:
        return
    if isinstance(broker, str):
        space = BrokerNamespace(f"kafka://{broker}", broker, "kafka")
    else:
        space = BrokerNamespace.of(broker)
    await dataclasses.replace(space, partitions=partitions).create_topics(list(names))


async def consume_count(bootstrap: str, topic: str, expect: int, limit_s: float = 60.0) -> float:
    """Raw aiokafka: read `expect` records of `topic` from the start; return seconds taken."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    try:
        # The metadata of the consumer's start names no topic on Apache Kafka (Tansu's
        # names them all): ask for every topic's before looking the partitions up.
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        seen = 0
        began = time.monotonic()
        deadline = began + limit_s
        while seen < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=100_000)
            seen += sum(len(items) for items in batch.values())
        return time.monotonic() - began
    finally:
        await consumer.stop()


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "python": sys.version.split()[0]}


# ---------------------------------------------------------------------------------------
# Progress seen from outside: consumer-group commits, topic ends, Salesforce API calls
# ---------------------------------------------------------------------------------------

PROJECTIONS_TOPIC = "activity-projections"
APP_GROUP = "booking-activity-sync"


@dataclass
class Sample:
    at: float  # time.monotonic()
    committed: dict[str, int]  # topic -> committed offsets summed over partitions
    ends: dict[str, int]  # topic -> end offsets summed (activity-projections only)
    api_calls: int | None


class Watch:
    """A thread sampling the app's progress every `interval` seconds.

    The worker's own progress signal is its consumer group: Faust commits the offsets
    of events the agents have finished (every commit interval, 2.8 s by default). To
    time the end of the fold more finely than that, the watch also follows the end
    offset of activity-projections, which the ingest agent appends to after folding
    each batch: the fold finished when that offset last moved.

    That end offset is read by consuming the topic (the offset after the last record
    seen), not with ListOffsets: Tansu answers ListOffsets(latest) with the newest
    record batch's first offset + 1 (streams/transport/tansu.py), so the sink could look
    caught up while the tail of the newest batch was still unwritten. (The larger
    error, a "caught up" moment early in the fold, is `wait(since=...)`'s to avoid.)
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        group: str = APP_GROUP,
        emulator: SalesforceEmulator | None = None,
        interval: float = 0.1,
    ) -> None:
        self.bootstrap = bootstrap
        self.group = group
        self.emulator = emulator
        self.interval = interval
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="watch")
        self.error: BaseException | None = None

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._sample_forever())
        except BaseException as exc:  # surfaced to the caller through wait()
            self.error = exc
        finally:
            loop.close()

    async def _sample_forever(self) -> None:
        tps = [
            TopicPartition(t, p)
            for t in (EVENTS_TOPIC, PROJECTIONS_TOPIC)
            for p in range(PARTITIONS)
        ]
        ends_tps = [TopicPartition(PROJECTIONS_TOPIC, p) for p in range(PARTITIONS)]
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        # Reads activity-projections from the start: the offset after its last record
        # seen is the exact end (ListOffsets is not, on Tansu).
        tail = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=50,
        )
        await admin.start()
        await tail.start()
        tail.assign(ends_tps)
        tail_ends = dict.fromkeys(ends_tps, 0)
        try:
            while not self._stop.is_set():
                committed: dict[str, int] = {}
                try:
                    offsets = await admin.list_consumer_group_offsets(self.group, partitions=tps)
                    for tp, meta in offsets.items():
                        committed[tp.topic] = committed.get(tp.topic, 0) + max(0, meta.offset)
                    fetched = await tail.getmany(timeout_ms=0)
                except Exception:  # a topic not there yet, a rebalance: sample again
                    await asyncio.sleep(self.interval)
                    continue
                for tp, records in fetched.items():
                    if records:
                        tail_ends[tp] = records[-1].offset + 1
                ends = {PROJECTIONS_TOPIC: sum(tail_ends.values())}
                calls = None
                if self.emulator is not None:
                    with contextlib.suppress(Exception):
                        calls = int(self.emulator.api_calls()["total"])
                self.samples.append(Sample(time.monotonic(), committed, ends, calls))
                await asyncio.sleep(self.interval)
        finally:
            await tail.stop()
            await admin.close()

    def latest(self) -> Sample | None:
        return self.samples[-1] if self.samples else None

    def wait(
        self, check: Callable[[Sample], bool], timeout: float, what: str, since: float = 0.0
    ) -> Sample:
        """The first sample taken at or after `since` (monotonic) that passes `check`."""
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            if self.error is not None:
                raise RuntimeError(f"watch failed: {self.error!r}")
            for sample in self.samples[seen:]:
                if sample.at >= since and check(sample):
                    return sample
            seen = len(self.samples)
            time.sleep(self.interval / 2)
        raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}: {self.latest()}")

    def last_change(self, value: Callable[[Sample], object], since: float, until: float) -> float:
        """When `value` of the samples last changed within (since, until]."""
        last = since
        previous: object = None
        for sample in self.samples:
            if sample.at > until:
                break
            current = value(sample)
            if sample.at > since and previous is not None and current != previous:
                last = sample.at
            previous = current
        return last

    def first_time(self, check: Callable[[Sample], bool], since: float) -> float | None:
        for sample in self.samples:
            if sample.at >= since and check(sample):
                return sample.at
        return None


def sink_caught_up(watch: Watch, timeout: float, fold_done: Sample) -> Sample:
    """Wait until the sink committed everything the fold sent to activity-projections.

    Only samples from `fold_done` on count: while the fold still runs, the sink can
    briefly catch up with what was sent so far (seen: "done" 1.5 s into a 20 s backfill).
    """
    return watch.wait(
        lambda s: (
            s.ends.get(PROJECTIONS_TOPIC, 0) > 0
            and s.committed.get(PROJECTIONS_TOPIC, 0) >= s.ends.get(PROJECTIONS_TOPIC, 0)
        ),
        timeout,
        "the sink to catch up",
        since=fold_done.at,
    )


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds a process has used so far (0 when it is gone)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(pids: dict[str, int | None]) -> dict[str, float]:
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


def cores_used(
    before: dict[str, float], after: dict[str, float], seconds: float
) -> dict[str, float]:
    """Average cores each process used between two snapshots."""
    return {name: round((after[name] - before[name]) / seconds, 2) for name in before}


def cpu_us_per_event(
    before: dict[str, float], after: dict[str, float], events: int
) -> dict[str, int]:
    """CPU microseconds each process used per event between two snapshots: unlike
    `cores_used`, it does not depend on where the window ends."""
    return {name: round((after[name] - before[name]) / events * 1e6) for name in before}
