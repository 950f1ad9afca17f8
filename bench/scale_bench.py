"""`make bench-scale`: one worker on RocksDB as its state grows, stage by stage.

Each stage adds generated bookings (`streams.commands.generate`) to the same worker and
data dir: first up to its size less `--probe` bookings, then, once Salesforce has caught
up, the last `--probe` (10,000) whose fold is timed, so every stage's fold rate is
measured on the same workload over a larger state. It reports: that fold ev/s, the
worker's RSS at rest (the lowest over one of its allocator's trim cycles after the fold)
and its peak over the stage (`VmHWM`, reset as the stage begins), the timers' last sweep
(entries read, CPU, longest slice; `activity_sync_sweep_*`), live p50/p99 at `--rate`
ev/s while the timers run every few seconds, restart-to-ready after SIGTERM and after
SIGKILL, the data dir's size on disk, and whether Salesforce equals the fold of every
booking produced so far. Results go to bench/scale.json. At the end, bench/sweep_bench.py
compares a sweep with 1 % of the largest stage's bookings due against the full sweep
the timers did before the due index (`sweep_1pct_due_ratio`).

`--profile` keeps the worker's `GET /debug/memory/` report (RocksDB's memory, glibc's and
CPython's heaps; with `--trace-frames N` also tracemalloc's top sites, about ten times
slower) after each stage's fold, in bench/scale-profile.json; `--fold-only` skips the
live phase and the restarts; `--set NAME=VALUE` passes a worker setting
(`--set rocksdb_memory_mb=0`).

The broker is a single-node Apache Kafka (`devkit/kafka.py`), production's broker,
warmed up first (`--warm-up`: its JVM compiles its hot paths on the first records, which
would otherwise slow the first stage only); `--broker embedded` runs the stages on the
embedded broker (Tansu) instead. The broker's
CPU per event is its process's (the Kafka JVM's, or Tansu's). bench/scale.json names the
broker, its version and the worker's store.

Stages stop early when the next one would not fit the `--budget-s` (the run says so;
`predict_stage_s`). Figures are from a shared 2-core machine: noisy, read them as orders
of magnitude.

What the bench itself costs is kept small, so a million bookings fit the budget on 2
cores: a stage's growth is generated, produced and folded for the expected state in
chunks of `FILL_CHUNK` bookings (the worker folds one while the bench makes the next),
and Salesforce is read as changes since the last read (the emulator's
`records/Event?changed_after=N`) into a `devkit.verification.RunningComparison`, which
judges again only the bookings touched since its last answer. Each stage reports where
its seconds went (`steps_s`), and the worker's CPU per probe event by thread
(`worker_threads_us_per_event`: its event loop, RocksDB's background threads).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

from bench import harness as h
from bench import sweep_bench, worker_profile
from bench.brokers import (
    Broker,
    add_broker_argument,
    broker_pid,
    create_app_topics,
    describe,
    start_broker,
    store,
    warm_up,
)
from bench.pipeline_bench import clamp_fetch_wait
from devkit import verification
from devkit.kafka import KafkaCluster
from devkit.salesforce_emulator.process import SalesforceEmulator
from devkit.topics import event_records, produce
from devkit.workers import WorkerProcess
from streams.commands.generate import generate_events
from streams.worker.settings import ProcessSection

RESULTS = Path(__file__).with_name("scale.json")
PROFILE_RESULTS = Path(__file__).with_name("scale-profile.json")
# Timers often enough that the live phase runs with them (production: 30 s and 60 s).
TIMER_SETTINGS = {"completion_check_interval": "5", "reconcile_interval": "5"}
# The production attempt deadline (a test worker's 3 s gives up on a 200-record upsert
# whenever the shared machine is busy, hands the batch back and starts over).
SINK_SETTINGS = {"sink_attempt_deadline": "10"}
# What the bench reads of an Event: the compared fields, and the modstamp for latency.
READ_FIELDS = ("Booking_Id__c", "SystemModstamp", *verification.COMPARED_FIELDS)
# Bookings the bench generates, produces and folds at once while growing a stage.
FILL_CHUNK = 50_000
# Seconds between two reads of what changed in Salesforce while waiting for it (a read
# is of the Events changed since the last one: cheap even when the org is large).
VERIFY_POLL_S = 2.0


def log(message: str) -> None:
    print(f"[bench-scale {time.strftime('%H:%M:%S')}] {message}", flush=True)


class StepClock:
    """Seconds a stage spends in each of its steps (the bench's own work included), so
    a stage's time can be read: the worker's fold against what the bench costs."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        began = time.monotonic()
        try:
            yield
        finally:
            self.spent[name] = round(self.spent.get(name, 0.0) + time.monotonic() - began, 1)


def cpu_s(pid: int | None) -> float:
    """The process's CPU seconds so far (user + system, every thread)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_s(pid: int | None) -> dict[str, float]:
    """The process's CPU seconds so far by thread name (`comm`: the main thread is the
    program's name, RocksDB's background threads `rocksdb:low`/`rocksdb:high`, ...);
    threads that ended are not counted."""
    by_name: dict[str, float] = {}
    if pid is None:
        return by_name
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            head, _, tail = (task / "stat").read_text().rpartition(")")
            name = head.split("(", 1)[1]
            fields = tail.split()
            seconds = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            by_name[name] = by_name.get(name, 0.0) + seconds
    return by_name


def pid_of(process: Any) -> int | None:
    return None if process is None else int(process.pid)


def rss_mb(pid: int | None, field: str = "VmRSS") -> float:
    """The process's resident memory (`VmHWM`: its peak since the last reset) in MB."""
    if pid is None:
        return 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def reset_peak_rss(pid: int | None) -> None:
    """Start the process's `VmHWM` over from its current RSS (Linux's clear_refs)."""
    if pid is not None:
        Path(f"/proc/{pid}/clear_refs").write_text("5")


# The worker gives glibc's free pages back every ACTIVITY_SYNC_MALLOC_TRIM_INTERVAL (30 s):
# one sample after a fold lands anywhere in that cycle (237-304 MB at 10,000 bookings
# over four runs of the seventh session). At rest is the lowest of one sample a second
# over a whole cycle after the fold, with the timers running.
REST_S = float(ProcessSection.model_fields["malloc_trim_interval"].default) + 2


def disk_mb(path: Path) -> float:
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0]) / 1024


def sweep_figures(worker: WorkerProcess) -> dict[str, float]:
    samples = h.by_name(worker.metrics())
    figures: dict[str, float] = {}
    for timer in ("completion", "reconcile"):
        for name, short in (
            ("activity_sync_sweep_items", "items"),
            ("activity_sync_sweep_cpu_seconds", "cpu_s"),
            ("activity_sync_sweep_longest_slice_seconds", "longest_slice_s"),
        ):
            figures[f"{timer}_{short}"] = samples.get(f'{name}{{timer="{timer}"}}', 0.0)
    return figures


def memory_report(worker: WorkerProcess, top: int = 30) -> dict[str, Any]:
    """The worker's GET /debug/memory/ report (it must run with memory profiling on)."""
    answer = requests.get(f"{worker.web_url}/debug/memory/?top={top}", timeout=120)
    answer.raise_for_status()
    report: dict[str, Any] = answer.json()
    return report


# `--pin`: the worker on this CPU, the bench, broker and emulator on the other, so what
# they cost does not come out of the worker's share of the 2 cores.
WORKER_CPU, OTHERS_CPU = 0, 1
_pin = False


def pin_worker(worker: WorkerProcess) -> None:
    """Every thread of the worker on WORKER_CPU (threads it starts later inherit it)."""
    if not _pin or worker.process is None:
        return
    for task in Path(f"/proc/{worker.process.pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError):  # a thread that just ended
            os.sched_setaffinity(int(task.name), {WORKER_CPU})


def start(worker: WorkerProcess) -> None:
    worker.start()
    pin_worker(worker)
    worker.wait_ready(timeout=600)
    pin_worker(worker)


def restart(worker: WorkerProcess, *, kill: bool) -> float:
    """Stop (SIGTERM, or SIGKILL), start again; seconds from the start to ready."""
    if kill:
        worker.kill()
    else:
        worker.stop(timeout=120)
    began = time.monotonic()
    start(worker)
    return time.monotonic() - began


class Stages:
    """The worker, its broker and emulator, and what Salesforce should hold so far."""

    def __init__(
        self,
        broker: Broker,
        emulator: SalesforceEmulator,
        worker: WorkerProcess,
        work: Path,
        args: argparse.Namespace,
    ) -> None:
        self.broker, self.emulator, self.worker, self.work = broker, emulator, worker, work
        self.args = args
        # Salesforce against the fold of every booking of every stage, kept by reading
        # only the Events changed since the last read (a full read of a million Events
        # at every look would cost more than the stage's fold).
        self.salesforce = verification.RunningComparison()
        self.read_up_to = 0  # the emulator's change number of the last read
        self.clock = StepClock()  # the current stage's

    def run(self, index: int, new_bookings: int) -> dict[str, Any]:
        # The stage grows the state to its size less the probe, waits for Salesforce,
        # then folds the probe: every stage's fold rate is measured on the same workload
        # (`--probe` new bookings) and differs only by the state already held.
        probe = min(self.args.probe, new_bookings)
        self.clock = StepClock()
        self.spied: dict[str, Any] = {}
        fill_ok, fill_problems = True, list[str]()
        worker_pid = pid_of(self.worker.process)
        reset_peak_rss(worker_pid)  # the stage's peak: its fill and its probe
        fill_began = time.monotonic()
        if new_bookings > probe:
            self.fill(f"s{index}-", self.args.seed + index, new_bookings - probe)
            fill_ok, fill_problems = self.salesforce_matches(timeout=3600)
        timings = {
            "fill_bookings": new_bookings - probe,
            "fill_s": round(time.monotonic() - fill_began, 1),
        }
        # CPU per event of the worker (what the wall-clock rate says, without the other
        # processes' share of the 2 cores), and of the broker (the Kafka JVM, or the
        # embedded broker) and the emulator.
        pids = {
            "fold_cpu_us_per_event": worker_pid,
            "broker_cpu_us_per_event": broker_pid(self.broker),
            "emulator_cpu_us_per_event": pid_of(self.emulator.process),
        }
        cpu_before = {name: cpu_s(pid) for name, pid in pids.items()}
        threads_before = thread_cpu_s(pids["fold_cpu_us_per_event"])
        probe_began = time.monotonic()
        events, fold_s = self.fold(f"p{index}-", self.args.seed + 500 + index, probe, index)
        timings["probe_bookings"] = probe
        timings["probe_s"] = round(time.monotonic() - probe_began, 1)
        fold_ev_s = events / max(1e-9, fold_s)
        cpu_per_event: dict[str, Any] = {
            name: round((cpu_s(pid) - cpu_before[name]) / events * 1e6)
            for name, pid in pids.items()
        }
        # The worker's by thread: its event loop against RocksDB's compactions and
        # flushes (a larger state costs more of those), the Salesforce call threads.
        threads = thread_cpu_s(pids["fold_cpu_us_per_event"])
        cpu_per_event["worker_threads_us_per_event"] = {
            name: round((seconds - threads_before.get(name, 0.0)) / events * 1e6)
            for name, seconds in sorted(threads.items())
            if seconds - threads_before.get(name, 0.0) > 0
        }
        ok, problems = self.salesforce_matches(timeout=3600)
        ok, problems = ok and fill_ok, fill_problems + problems
        rss = {
            "rss_after_fold_mb": round(rss_mb(worker_pid), 1),
            "rss_peak_mb": round(rss_mb(worker_pid, "VmHWM"), 1),
        }
        with self.clock.step("timers"):  # two or more rounds of the timers after the fold
            rest = list[float]()
            for _ in range(int(REST_S)):
                time.sleep(1)
                rest.append(rss_mb(worker_pid))
        rss["rss_mb"] = round(min(rest), 1)
        sweeps = sweep_figures(self.worker)
        profile = {"memory_profile": memory_report(self.worker)} if self.args.profile else {}
        if self.args.fold_only:
            return {
                "probe_events": events,
                "fold_ev_s": round(fold_ev_s),
                **cpu_per_event,
                **rss,
                "disk_mb": round(disk_mb(self.work / "worker"), 1),
                "salesforce_matches_fold": ok,
                "salesforce_problems": problems[:5],
                "steps_s": self.clock.spent,
                **timings,
                **profile,
                **self.spied,
            }
        with self.clock.step("live"):
            live = self.live(index)
        live_ok, live_problems = self.salesforce_matches(timeout=300)
        with self.clock.step("restarts"):
            sigterm_s = restart(self.worker, kill=False)
            sigkill_s = restart(self.worker, kill=True)
        return {
            "probe_events": events,
            "fold_ev_s": round(fold_ev_s),
            **cpu_per_event,
            **rss,
            **{k: round(v, 4) for k, v in sweeps.items()},
            **live,
            "restart_sigterm_s": round(sigterm_s, 1),
            "restart_sigkill_s": round(sigkill_s, 1),
            "disk_mb": round(disk_mb(self.work / "worker"), 1),
            "salesforce_matches_fold": ok and live_ok,
            "salesforce_problems": (problems + live_problems)[:5],
            "steps_s": self.clock.spent,
            **timings,
            **profile,
            **self.spied,
        }

    def fill(self, prefix: str, seed: int, bookings: int) -> None:
        """Grow the state by `bookings` generated bookings, untimed, in chunks of
        `FILL_CHUNK`: each chunk is produced before the bench folds it for the expected
        state, so the worker folds one chunk while the bench makes the next, and the
        bench never holds more than a chunk's events. The caller waits for Salesforce."""
        for chunk, start in enumerate(range(0, bookings, FILL_CHUNK)):
            size = min(FILL_CHUNK, bookings - start)
            with self.clock.step("generate"):
                events = list(generate_events(size, seed + chunk, id_prefix=f"{prefix}{chunk}-"))
            with self.clock.step("produce"):
                asyncio.run(produce(self.broker, h.EVENTS_TOPIC, event_records(events)))
            with self.clock.step("expected fold"):
                self.salesforce.expect(verification.expected_events(events))

    def fold(self, prefix: str, seed: int, bookings: int, index: int = 0) -> tuple[int, float]:
        """Produce `bookings` generated bookings and wait for the fold: (events, seconds
        from the first event produced to the last projection sent). With `--py-spy`, the
        worker is sampled over the first `--py-spy-s` seconds of it (`self.spied`)."""
        with self.clock.step("generate"):
            events = list(generate_events(bookings, seed, id_prefix=prefix))
        with self.clock.step("expected fold"):
            self.salesforce.expect(verification.expected_events(events))
        with h.Watch(self.broker.bootstrap, emulator=self.emulator) as watch:
            base = watch.wait(lambda s: True, 30, "a first sample")
            target = base.committed.get(h.EVENTS_TOPIC, 0) + len(events)
            t0 = time.monotonic()
            spy, raw = None, self.work / f"py-spy-stage-{index}.raw"
            if self.args.py_spy and self.worker.process is not None:
                spy = worker_profile.record(
                    self.args.py_spy, self.worker.process.pid, self.args.py_spy_s, raw
                )
            with self.clock.step("produce"):
                asyncio.run(produce(self.broker, h.EVENTS_TOPIC, event_records(events)))
            with self.clock.step("fold after produce"):
                folded = watch.wait(
                    lambda s: s.committed.get(h.EVENTS_TOPIC, 0) >= target, 3600, "the fold"
                )
            fold_done = watch.last_change(lambda s: s.ends.get(h.PROJECTIONS_TOPIC), t0, folded.at)
        if spy is not None:
            spy.wait(self.args.py_spy_s + 30)
            self.spied = {"py_spy_raw": str(raw), "py_spy_stages": worker_profile.summarise(raw)}
        return len(events), fold_done - t0

    def read_changes(self) -> None:
        """Apply the Events changed since the last read to `self.salesforce`."""
        changed, self.read_up_to = self.emulator.changes(
            "Event", self.read_up_to, fields=READ_FIELDS
        )
        self.salesforce.apply(changed)

    def salesforce_matches(self, timeout: float) -> tuple[bool, list[str]]:
        """Wait until Salesforce equals the fold of everything produced (or time out)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with self.clock.step("read Salesforce"):
                    self.read_changes()
            except requests.RequestException as exc:  # a busy emulator: read again
                log(f"reading Salesforce back: {type(exc).__name__}; again")
                if time.monotonic() > deadline:
                    return False, [f"Salesforce not read back: {exc}"]
                time.sleep(VERIFY_POLL_S)
                continue
            with self.clock.step("compare"):
                comparison = self.salesforce.compare()
            if comparison.ok or time.monotonic() > deadline:
                return comparison.ok, comparison.details[:5]
            with self.clock.step("wait for Salesforce"):
                time.sleep(VERIFY_POLL_S)

    def live(self, index: int) -> dict[str, Any]:
        """`--rate` ev/s of new bookings for `--live-s`, timers running: latency."""
        count = int(self.args.rate * self.args.live_s)
        events = list(generate_events(count, self.args.seed + 1000 + index, id_prefix=f"l{index}-"))
        events = events[:count]
        self.salesforce.expect(verification.expected_events(events))
        sent_at = [0.0] * len(events)

        def stamp(i: int, wall: float) -> None:
            sent_at[i] = wall

        asyncio.run(
            produce(
                self.broker,
                h.EVENTS_TOPIC,
                event_records(events),
                rate=self.args.rate,
                on_sent=stamp,
            )
        )
        time.sleep(5)
        self.read_changes()
        records = [
            r
            for r in self.salesforce.records.values()
            if str(r.get("Booking_Id__c", "")).startswith(f"l{index}-")
        ]
        latencies = h.latencies_from_salesforce(events, sent_at, records)
        sweeps = sweep_figures(self.worker)
        return {
            "live_events": len(events),
            "live_p50_s": h.quantile(latencies, 0.5),
            "live_p99_s": h.quantile(latencies, 0.99),
            "live_sweep_longest_slice_s": round(
                max(sweeps["completion_longest_slice_s"], sweeps["reconcile_longest_slice_s"]), 4
            ),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", default="10000,50000,200000,1000000")
    add_broker_argument(parser)
    parser.add_argument("--budget-s", type=float, default=1200.0)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--live-s", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument(
        "--probe", type=int, default=10_000, help="new bookings whose fold each stage times"
    )
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--profile", action="store_true", help="keep GET /debug/memory/")
    parser.add_argument(
        "--trace-frames", type=int, default=0, help="tracemalloc frames (0: off; ~10x slower)"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="a worker setting"
    )
    parser.add_argument("--fold-only", action="store_true", help="no live phase, no restarts")
    parser.add_argument(
        "--py-spy",
        metavar="PATH",
        help="py-spy binary: sample the worker during each probe (bench/worker_profile.py)",
    )
    parser.add_argument("--py-spy-s", type=float, default=5.0, help="seconds sampled a probe")
    parser.add_argument(
        "--warm-up",
        type=int,
        default=100_000,
        metavar="RECORDS",
        help="records a Kafka broker produces and serves before the first stage, so its "
        "JVM's warm-up is not charged to the first stage (0: none; the embedded broker: none)",
    )
    parser.add_argument(
        "--fetch-max-wait-ms",
        type=int,
        help="experiment: the worker's consumer fetch wait (Faust hard-codes 1500 ms)",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="the worker on CPU 0; this bench, the broker and the emulator on CPU 1",
    )
    args = parser.parse_args(argv)
    if args.fetch_max_wait_ms is not None:
        clamp_fetch_wait(args.fetch_max_wait_ms)
    if args.pin:
        global _pin
        _pin = True
        os.sched_setaffinity(0, {OTHERS_CPU})  # inherited by the broker and the emulator
    if args.output is None:
        args.output = PROFILE_RESULTS if args.profile else RESULTS
    sizes = [int(s) for s in args.stages.split(",")]
    work = Path(tempfile.mkdtemp(prefix="scale-bench-"))
    log(f"work dir {work}; stages {sizes}; budget {args.budget_s:.0f}s")
    began = time.monotonic()
    results: dict[str, Any] = {
        "machine": h.machine(),
        "pinned": args.pin,
        "fetch_max_wait_ms": args.fetch_max_wait_ms,
        "stages": [],
        "skipped": [],
    }
    with start_broker(args.broker, work, "scale") as broker:
        emulator = SalesforceEmulator(work / "salesforce")  # started
        asyncio.run(create_app_topics(broker))
        extra = dict(TIMER_SETTINGS, **SINK_SETTINGS, memory_profile_frames=str(args.trace_frames))
        extra.update(item.split("=", 1) for item in args.set)
        results["broker"] = describe(broker)
        results["store"] = store(extra)
        results["worker_settings"] = extra
        log(f"broker: {results['broker']['name']}; store {results['store']}")
        if args.warm_up and isinstance(broker, KafkaCluster):
            took = asyncio.run(warm_up(broker, args.warm_up))
            results["broker_warm_up"] = {"records": args.warm_up, "seconds": round(took, 1)}
            log(f"broker warmed up: {args.warm_up:,} records produced and consumed in {took:.0f}s")
        worker = h.start_worker(broker, emulator, work, "worker", **extra)
        pin_worker(worker)
        worker.wait_ready(timeout=120)
        pin_worker(worker)
        stages = Stages(broker, emulator, worker, work, args)
        held = 0
        last: dict[str, Any] = {}  # the last stage's figures
        try:
            for index, target in enumerate(sizes):
                spent = time.monotonic() - began
                predicted = predict_stage_s(last, held, target, args.probe)
                if held and spent + predicted > args.budget_s:
                    log(
                        f"stage {target:,} would not fit the {args.budget_s:.0f}s budget "
                        f"({spent:.0f}s spent, ~{predicted:.0f}s predicted): stopping"
                    )
                    results["skipped"] = sizes[index:]
                    break
                stage_began = time.monotonic()
                stage = {"bookings": target, **stages.run(index, target - held)}
                held, last = target, stage
                stage["stage_s"] = round(time.monotonic() - stage_began)
                results["stages"].append(stage)
                log(json.dumps({k: v for k, v in stage.items() if k != "memory_profile"}))
                summarise(results)
                args.output.write_text(json.dumps(results, indent=2) + "\n")
        finally:
            worker.stop(timeout=120)
            emulator.close()
    if results["stages"]:
        largest = results["stages"][-1]["bookings"]
        log(f"a sweep with 1 % due against the full sweep, at {largest:,} bookings")
        results["sweep_vs_full"] = sweep_bench.measure(largest, args.seed, 1.0, repeat=3)
        summarise(results)
        args.output.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    return 0


def predict_stage_s(last: dict[str, Any], held: int, target: int, probe: int) -> float:
    """Seconds the stage growing `held` bookings to `target` should take, from the last
    stage: what the rest of it took (probe, live phase, restarts: alike in every stage)
    plus this stage's fill at the last one's seconds per booking (its fill's; before any
    stage had a fill, its probe's: generated, produced, folded and checked alike)."""
    if not last:
        return 0.0
    if last.get("fill_bookings"):
        per_booking = last["fill_s"] / last["fill_bookings"]
    else:
        per_booking = last["probe_s"] / last["probe_bookings"]
    return float(last["stage_s"] - last["fill_s"] + per_booking * (target - held - probe))


def summarise(results: dict[str, Any]) -> None:
    """The ratios of the targets: largest stage against the first (10k)."""
    first, last = results["stages"][0], results["stages"][-1]
    results["largest_stage_bookings"] = last["bookings"]
    # At rest (after the worker's trim), and the peak of the stage (its fill and probe).
    results["rss_ratio"] = round(last["rss_mb"] / first["rss_mb"], 2)
    if first.get("rss_peak_mb") and last.get("rss_peak_mb"):
        results["rss_peak_ratio"] = round(last["rss_peak_mb"] / first["rss_peak_mb"], 2)
    results["fold_ratio"] = round(last["fold_ev_s"] / first["fold_ev_s"], 2)
    if first.get("fold_cpu_us_per_event") and last.get("fold_cpu_us_per_event"):
        # The same ratio from the worker's CPU per event (higher is better, like fold_ratio).
        results["fold_cpu_ratio"] = round(
            first["fold_cpu_us_per_event"] / last["fold_cpu_us_per_event"], 2
        )
    results["restart_sigterm_s"] = last.get("restart_sigterm_s")
    results["live_p99_s"] = last.get("live_p99_s")
    # A sweep reads its due slice: its cost against the first stage's (flat = cost of
    # what is due, not of what is held).
    cpu = [s.get("completion_cpu_s", 0.0) + s.get("reconcile_cpu_s", 0.0) for s in (first, last)]
    results["sweep_cost_ratio"] = round(cpu[1] / cpu[0], 2) if cpu[0] else None
    # The target "a sweep with 1 % due costs <= 2 % of the full sweep" (bench/sweep_bench.py).
    versus = results.get("sweep_vs_full")
    if versus:
        results["sweep_1pct_due_ratio"] = max(versus["completion_ratio"], versus["reconcile_ratio"])
    results["salesforce_matches_fold_every_stage"] = all(
        s["salesforce_matches_fold"] for s in results["stages"]
    )


COLUMNS = (
    ("bookings", "bookings", "{:,}"),
    ("fold_ev_s", "fold ev/s", "{:,}"),
    ("fold_cpu_us_per_event", "worker CPU µs/event", "{:,}"),
    ("broker_cpu_us_per_event", "broker CPU µs/event", "{:,}"),
    ("emulator_cpu_us_per_event", "emulator CPU µs/event", "{:,}"),
    ("rss_mb", "RSS at rest MB", "{:.0f}"),
    ("rss_peak_mb", "RSS peak MB", "{:.0f}"),
    ("completion_cpu_s", "completion sweep CPU s", "{:.4f}"),
    ("reconcile_items", "reconcile sweep entries", "{:.0f}"),
    ("reconcile_cpu_s", "reconcile sweep CPU s", "{:.4f}"),
    ("live_sweep_longest_slice_s", "longest sweep slice s", "{:.4f}"),
    ("live_p50_s", "live p50 s", "{:.2f}"),
    ("live_p99_s", "live p99 s", "{:.2f}"),
    ("restart_sigterm_s", "restart SIGTERM s", "{:.1f}"),
    ("restart_sigkill_s", "restart SIGKILL s", "{:.1f}"),
    ("disk_mb", "disk MB", "{:.0f}"),
    ("salesforce_matches_fold", "Salesforce = fold", "{}"),
)


def print_table(results: dict[str, Any]) -> None:
    """A Markdown table (docs/performance.md takes it as is)."""
    if "broker" in results:
        print(f"broker: {results['broker']['name']}, store: {results.get('store')}")
    print("| " + " | ".join(title for _, title, _ in COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for stage in results["stages"]:
        cells = []
        for key, _, spec in COLUMNS:
            value = stage.get(key)
            cells.append("—" if value is None else spec.format(value))
        print("| " + " | ".join(cells) + " |")
    for key in (
        "rss_ratio",
        "rss_peak_ratio",
        "fold_ratio",
        "fold_cpu_ratio",
        "sweep_cost_ratio",
        "sweep_1pct_due_ratio",
        "restart_sigterm_s",
        "live_p99_s",
    ):
        print(f"{key}: {results.get(key)}")
    if results["skipped"]:
        print(f"stages not run (budget): {results['skipped']}")


if __name__ == "__main__":
    sys.exit(main())
