"""The whole pipeline's speed and cost on this machine: `make bench` (`--quick` for a smoke run).

Everything runs as in production on a single-node Apache Kafka (`devkit/kafka.py`;
`--broker embedded`: the same scenarios on the embedded broker, Tansu, to compare) and
the Salesforce emulator: real `python -m streams worker` processes, observed only from
outside (consumer-group commits, topic end offsets, the emulator's admin API). Each
scenario gets a fresh broker of that kind. Scenarios:

1. ceilings on one topic: raw aiokafka consume, and Faust's bare `take_events` loop
   (`bench/bare_faust_app.py`, a worker process that does nothing with the events);
2. backfill, one worker: the topic is produced first, then the worker starts; fold
   time runs from the worker's "Ready" to its last batch (the last projection sent);
3. the same backfill with two workers (scale-out);
4. live: a running worker, a producer flooding it (fold throughput), then a steady
   500 events/s (latency from the send of the event to its Event's SystemModstamp in
   Salesforce, and API calls per event).

Prints a table, writes bench/results.json (naming the broker, its version and the
workers' store). Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import harness as h
from bench import worker_profile as profile
from bench.brokers import (
    Broker,
    add_broker_argument,
    broker_pid,
    create_app_topics,
    describe,
    start_broker,
    store,
)
from devkit import verification
from devkit.salesforce_emulator.process import SalesforceEmulator
from devkit.topics import Record, event_records, produce
from devkit.workers import WorkerProcess
from streams.commands.generate import generate_events
from streams.worker.settings import Settings, TimersSection

RESULTS = Path(__file__).with_name("results.json")

TARGETS = {
    "backfill_fold_vs_bare_faust": 0.6,
    "scale_out_two_vs_one": 1.5,
    "live_p99_s": 1.0,
    "api_calls_per_event_backfill": 1 / 150,
    "api_calls_per_event_live": 1 / 20,
}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------


def ceilings(broker: Broker, root: Path, count: int, args: argparse.Namespace) -> dict[str, Any]:
    raw_s = min(
        asyncio.run(h.consume_count(broker.bootstrap, h.EVENTS_TOPIC, count)) for _ in range(2)
    )
    log(f"raw aiokafka consume: {count / raw_s:,.0f} ev/s")
    figures: dict[str, Any] = {"raw_aiokafka_consume_ev_s": count / raw_s}
    # Faust's own consumer is the ceiling; the worker's consumer drains cheaper
    # (streams/transport/drain.py), so the same bare loop through it is reported beside it.
    for consumer, prefix in (("faust", "bare_faust"), ("app", "bare_app_consumer")):
        figures.update(_bare_loop(broker, root, count, args, consumer, prefix))
    return figures


def _bare_loop(
    broker: Broker,
    root: Path,
    count: int,
    args: argparse.Namespace,
    consumer: str,
    prefix: str,
) -> dict[str, Any]:
    defaults = Settings()
    bare = h.BareFaustProcess(
        broker,
        root,
        args.fold_batch_size or defaults.fold.batch_size,
        args.fold_batch_window or defaults.fold.batch_window,
        consumer,
    ).start()
    try:
        spawned = time.monotonic()
        ready = h.wait_until(bare.ready, 90, "the bare Faust app to be ready")
        pids = {prefix: bare.process.pid if bare.process else None, "broker": broker_pid(broker)}
        cpu_before = h.cpu_snapshot(pids)
        # With --py-spy, the bare loop is sampled as the backfill's worker is, so the two
        # consumers' shares can be set side by side (bench/worker_profile.py).
        spy, raw = None, root / f"profile-{prefix}.raw"
        if args.py_spy and bare.process is not None:
            spy = profile.record(args.py_spy, bare.process.pid, args.profile_s, raw)
        first = h.wait_until(lambda: bare.count() > 0, 90, "the bare Faust app's first batch")
        done = h.wait_until(lambda: bare.count() >= count, 600, "the bare Faust app to finish")
        cpu_after = h.cpu_snapshot(pids)
        cpu = h.cores_used(cpu_before, cpu_after, done - ready)
        if spy is not None:
            spy.wait(args.profile_s + 30)
            log(f"bare loop profile ({consumer} consumer): {raw}")
            profile.print_summary(profile.summarise(raw))
    finally:
        bare.stop()
    rate = count / (done - ready)
    log(f"bare Faust take_events, {consumer} consumer: {rate:,.0f} ev/s")
    return {
        f"{prefix}_ev_s": rate,
        f"{prefix}_ev_s_from_first_batch": count / (done - first),
        f"{prefix}_startup_s": ready - spawned,
        f"{prefix}_cores_used": cpu,
        f"{prefix}_cpu_us_per_event": h.cpu_us_per_event(cpu_before, cpu_after, count),
    }


def _start_workers(
    broker: Broker,
    emulator: SalesforceEmulator,
    root: Path,
    n: int,
    args: argparse.Namespace,
) -> list[WorkerProcess]:
    return [
        h.start_worker(broker, emulator, root, f"{root.name}-w{i + 1}", **worker_settings(args))
        for i in range(n)
    ]


def worker_settings(args: argparse.Namespace) -> dict[str, str]:
    """The batching settings given on the command line (the rest: the worker's defaults).

    The reconcile sweep runs at the production interval unless given: the test
    workers' 2 s sweep (devkit.workers) would put a whole-table scan every 2 s
    into every figure."""
    names = ("fold_batch_size", "fold_batch_window", "sink_batch_size", "sink_batch_window")
    chosen = {name: str(getattr(args, name)) for name in names if getattr(args, name) is not None}
    interval = args.reconcile_interval or TimersSection.model_fields["reconcile_interval"].default
    return {**chosen, "reconcile_interval": str(interval)}


def backfill(
    broker: Broker,
    emulator: SalesforceEmulator,
    root: Path,
    n_workers: int,
    count: int,
    expected: dict[str, dict[str, Any]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    emulator.reset()
    workers: list[WorkerProcess] = []
    with h.Watch(broker.bootstrap, emulator=emulator) as watch:
        try:
            spawned = time.monotonic()
            workers = _start_workers(broker, emulator, root, n_workers, args)
            readies = [
                h.wait_until(functools.partial(h.worker_ready, w), 90, "a worker to be ready")
                for w in workers
            ]
            ready = max(readies)
            pids = {w.log_path.stem: w.process.pid if w.process else None for w in workers}
            pids.update(broker=broker_pid(broker), emulator=_pid(emulator))
            cpu_before = h.cpu_snapshot(pids)
            spy = None
            if args.py_spy and n_workers == 1 and workers[0].process is not None:
                spy = profile.record(
                    args.py_spy, workers[0].process.pid, args.profile_s, root / "profile.raw"
                )
            committed = watch.wait(
                lambda s: s.committed.get(h.EVENTS_TOPIC, 0) >= count, 900, "the fold"
            )
            cpu_after = h.cpu_snapshot(pids)
            cpu = h.cores_used(cpu_before, cpu_after, committed.at - ready)
            projections = h.PROJECTIONS_TOPIC
            fold_done = watch.last_change(lambda s: s.ends.get(projections), spawned, committed.at)
            first = watch.first_time(lambda s: s.ends.get(projections, 0) > 0, spawned) or ready
            synced = h.sink_caught_up(watch, 900, committed)
            sf_done = watch.last_change(lambda s: s.api_calls, spawned, synced.at)
            calls = emulator.api_calls()
            comparison = verification.compare_salesforce(emulator.records(), expected)
            samples = h.scrape(workers)
            stages: list[tuple[str, float]] = []
            if spy is not None:
                spy.wait(args.profile_s + 30)
                stages = profile.summarise(root / "profile.raw")
        finally:
            for worker in workers:
                worker.stop()
    if stages:
        log("worker profile during the fold (py-spy):")
        profile.print_summary(stages)
    fold_s = fold_done - ready
    result = {
        "workers": n_workers,
        "events": count,
        "startup_s": ready - spawned,
        "ready_spread_s": max(readies) - min(readies),
        "fold_s": fold_s,
        "fold_ev_s": count / fold_s,
        "fold_ev_s_from_first_output": count / max(1e-9, fold_done - first),
        "cores_used_during_fold": cpu,
        "cpu_us_per_event": h.cpu_us_per_event(cpu_before, cpu_after, count),
        "salesforce_done_s": sf_done - ready,
        "end_to_end_ev_s": count / (sf_done - ready),
        "projections_sent": synced.ends.get(h.PROJECTIONS_TOPIC, 0),
        "api_calls": calls["total"],
        "api_calls_by_kind": calls.get("by_kind", {}),
        "api_calls_per_event": calls["total"] / count,
        "salesforce_matches_fold": comparison.ok,
        "salesforce_problems": comparison.details[:5],
        "metrics_endpoint": "ok" if samples else "unavailable",
        "profile": {name: round(share, 3) for name, share in stages},
    }
    log(
        f"backfill x{n_workers}: fold {result['fold_ev_s']:,.0f} ev/s, Salesforce done after "
        f"{result['salesforce_done_s']:.1f}s, {calls['total']} API calls, "
        f"matches fold: {comparison.ok}"
    )
    return result


def _worker_cpu(per_process: dict[str, int]) -> int:
    """The one worker's entry of a `cpu_us_per_event` snapshot (named by its log file)."""
    (worker,) = (us for name, us in per_process.items() if name not in ("broker", "emulator"))
    return worker


def _pid(handle: SalesforceEmulator) -> int | None:
    return handle.process.pid if handle.process is not None else None


def _produce(broker: Broker, records: list[Record], **kw: Any) -> float:
    return asyncio.run(produce(broker, h.EVENTS_TOPIC, records, **kw))


def live(
    broker: Broker, emulator: SalesforceEmulator, root: Path, args: argparse.Namespace
) -> dict[str, Any]:
    emulator.reset()
    asyncio.run(create_app_topics(broker))
    flood = event_records(generate_events(args.live_bookings, args.seed + 1, id_prefix="f-"))
    steady_events = list(
        generate_events(max(1, int(args.rate * args.duration / 2.5)), args.seed + 2, id_prefix="s-")
    )[: int(args.rate * args.duration)]
    steady = event_records(steady_events)
    expected = verification.expected_events(steady_events)
    result: dict[str, Any] = {}
    with h.Watch(broker.bootstrap, emulator=emulator) as watch:
        (worker,) = _start_workers(broker, emulator, root, 1, args)
        try:
            h.wait_until(lambda: h.worker_ready(worker), 90, "the worker to be ready")
            time.sleep(1.0)  # the group settles; the first poll has happened
            # Flood: as fast as one producer sends, into a running worker.
            pids = {
                "worker": worker.process.pid if worker.process else None,
                "broker": broker_pid(broker),
                "emulator": _pid(emulator),
                "bench (producer)": os.getpid(),
            }
            cpu_before = h.cpu_snapshot(pids)
            spy = None
            if args.py_spy and worker.process is not None:
                spy = profile.record(
                    args.py_spy, worker.process.pid, args.profile_s, root / "flood-profile.raw"
                )
            began = time.monotonic()
            result["flood_produce_s"] = round(_produce(broker, flood), 2)
            committed = watch.wait(
                lambda s: s.committed.get(h.EVENTS_TOPIC, 0) >= len(flood), 600, "the live fold"
            )
            fold_done = watch.last_change(
                lambda s: s.ends.get(h.PROJECTIONS_TOPIC), began, committed.at
            )
            result["flood_events"] = len(flood)
            result["flood_s"] = round(fold_done - began, 2)
            # On 2 cores the producer, the broker and the sink share them with the fold.
            cpu_after = h.cpu_snapshot(pids)
            result["cores_used_during_flood"] = h.cores_used(
                cpu_before, cpu_after, committed.at - began
            )
            result["cpu_us_per_flood_event"] = h.cpu_us_per_event(cpu_before, cpu_after, len(flood))
            result["flood_fold_ev_s"] = len(flood) / (fold_done - began)
            log(
                f"live flood: {len(flood):,} events folded in {result['flood_s']}s, "
                f"{result['flood_fold_ev_s']:,.0f} ev/s"
            )
            h.sink_caught_up(watch, 600, committed)
            if spy is not None:
                spy.wait(args.profile_s + 30)
                log("worker profile during the live flood (py-spy):")
                profile.print_summary(profile.summarise(root / "flood-profile.raw"))
            time.sleep(1.0)
            # Steady rate: latency and API calls per event.
            calls_before = emulator.total_api_calls()
            sent_at = [0.0] * len(steady)

            def stamp(index: int, wall: float) -> None:
                sent_at[index] = wall

            metrics_before = h.scrape([worker])
            base = watch.latest()
            base_committed = base.committed.get(h.EVENTS_TOPIC, 0) if base else 0
            took = _produce(broker, steady, rate=args.rate, on_sent=stamp)
            steady_folded = watch.wait(
                lambda s: s.committed.get(h.EVENTS_TOPIC, 0) >= base_committed + len(steady),
                600,
                "the steady-rate fold",
            )
            h.sink_caught_up(watch, 600, steady_folded)
            calls = emulator.total_api_calls() - calls_before
            records = [
                r for r in emulator.records() if str(r.get("Booking_Id__c", "")).startswith("s-")
            ]
            latencies = h.latencies_from_salesforce(steady_events, sent_at, records)
            comparison = verification.compare_salesforce(records, expected)
            metrics_after = h.scrape([worker])
            # The histogram counts since the worker started: keep the steady phase only.
            samples = {k: v - metrics_before.get(k, 0.0) for k, v in metrics_after.items()}
        finally:
            worker.stop()
    name = "activity_sync_end_to_end_latency_seconds"
    result.update(
        {
            "steady_rate_ev_s": args.rate,
            "steady_events": len(steady),
            "steady_achieved_ev_s": len(steady) / took,
            "latency_samples": len(latencies),
            "latency_p50_s": h.quantile(latencies, 0.5),
            "latency_p99_s": h.quantile(latencies, 0.99),
            "latency_max_s": max(latencies) if latencies else None,
            "latency_mean_s": statistics.fmean(latencies) if latencies else None,
            "share_within_1s": (
                sum(1 for v in latencies if v <= 1.0) / len(latencies) if latencies else None
            ),
            "metrics_histogram_p50_s": h.histogram_quantile(samples, name, 0.5),
            "metrics_histogram_p99_s": h.histogram_quantile(samples, name, 0.99),
            "metrics_endpoint": "ok" if metrics_after else "unavailable",
            "api_calls": calls,
            "api_calls_per_event": calls / len(steady),
            "salesforce_matches_fold": comparison.ok,
            "salesforce_problems": comparison.details[:5],
        }
    )
    log(
        f"live {args.rate:.0f} ev/s: p50 {result['latency_p50_s']}, p99 {result['latency_p99_s']}"
        f", {calls} API calls for {len(steady)} events"
    )
    return result


# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------


def _fmt(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def report(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    c, one, two, lv = (
        results["ceilings"],
        results["backfill_1"],
        results["backfill_2"],
        results["live"],
    )
    fraction_bare = one["fold_ev_s"] / c["bare_faust_ev_s"]
    fraction_bare_app = one["fold_ev_s"] / c["bare_app_consumer_ev_s"]
    fraction_raw = one["fold_ev_s"] / c["raw_aiokafka_consume_ev_s"]
    scale = two["fold_ev_s"] / one["fold_ev_s"]
    flood_bare = lv["flood_fold_ev_s"] / c["bare_faust_ev_s"]
    p99 = lv["latency_p99_s"]
    derived = {
        "backfill_fold_vs_bare_faust": fraction_bare,
        "backfill_fold_vs_bare_loop_app_consumer": fraction_bare_app,
        "backfill_fold_vs_raw_aiokafka": fraction_raw,
        "scale_out_two_vs_one": scale,
        "live_flood_vs_bare_faust": flood_bare,
    }
    results["derived"] = derived

    rows = [
        ("raw aiokafka consume", f"{c['raw_aiokafka_consume_ev_s']:,.0f} ev/s", "", ""),
        ("Faust bare take_events", f"{c['bare_faust_ev_s']:,.0f} ev/s", "", ""),
        (
            "  same loop, this app's consumer",
            f"{c['bare_app_consumer_ev_s']:,.0f} ev/s",
            "",
            "",
        ),
        ("backfill fold, 1 worker", f"{one['fold_ev_s']:,.0f} ev/s", "", ""),
        ("  worker CPU per event", f"{_worker_cpu(one['cpu_us_per_event'])} µs", "", ""),
        (
            "  as fraction of bare Faust",
            f"{fraction_bare:.2f}",
            "≥ 0.60",
            h.verdict(fraction_bare >= TARGETS["backfill_fold_vs_bare_faust"]),
        ),
        ("  as fraction of that loop, app's consumer", f"{fraction_bare_app:.2f}", "", ""),
        ("  as fraction of raw aiokafka", f"{fraction_raw:.3f}", "", ""),
        ("backfill to Salesforce, 1 worker", f"{one['end_to_end_ev_s']:,.0f} ev/s", "", ""),
        ("backfill fold, 2 workers", f"{two['fold_ev_s']:,.0f} ev/s", "", ""),
        (
            "  scale-out 2 vs 1",
            f"{scale:.2f}x",
            "≥ 1.5x",
            h.verdict(scale >= TARGETS["scale_out_two_vs_one"]),
        ),
        ("live fold (flooded, running worker)", f"{lv['flood_fold_ev_s']:,.0f} ev/s", "", ""),
        ("  as fraction of bare Faust", f"{flood_bare:.2f}", "", ""),
        ("  worker CPU per event", f"{lv['cpu_us_per_flood_event']['worker']} µs", "", ""),
        (
            f"live latency p50 @ {lv['steady_rate_ev_s']:.0f} ev/s",
            _fmt(lv["latency_p50_s"], ".3f"),
            "",
            "",
        ),
        (
            f"live latency p99 @ {lv['steady_rate_ev_s']:.0f} ev/s",
            _fmt(p99, ".3f") + " s",
            "≤ 1 s",
            h.verdict(None if p99 is None else p99 <= TARGETS["live_p99_s"]),
        ),
        (
            "API calls per event, backfill",
            f"1/{1 / max(one['api_calls_per_event'], 1e-9):,.0f}",
            "≤ 1/150",
            h.verdict(one["api_calls_per_event"] <= TARGETS["api_calls_per_event_backfill"]),
        ),
        (
            "API calls per event, live",
            f"1/{1 / max(lv['api_calls_per_event'], 1e-9):,.1f}",
            "≤ 1/20",
            h.verdict(lv["api_calls_per_event"] <= TARGETS["api_calls_per_event_live"]),
        ),
        (
            "Salesforce = fold (1w, 2w, live)",
            " ".join("yes" if r["salesforce_matches_fold"] else "NO" for r in (one, two, lv)),
            "",
            "",
        ),
    ]
    return rows


# ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    add_broker_argument(parser)
    parser.add_argument("--bookings", type=int, help="backfill bookings (10,000)")
    parser.add_argument("--events", type=int, help="backfill events (100,000)")
    parser.add_argument(
        "--spread", type=int, default=1000, help="bookings in flight while generating the topic"
    )
    parser.add_argument(
        "--live-bookings", type=int, help="bookings in the live flood (20,000: ~51,000 events)"
    )
    parser.add_argument("--rate", type=float, default=500.0, help="steady live rate, ev/s")
    parser.add_argument("--duration", type=float, help="steady live seconds (20)")
    parser.add_argument("--seed", type=int, default=7)
    # Unset: the worker's own defaults (streams/worker/settings.py).
    parser.add_argument("--fold-batch-size", type=int)
    parser.add_argument("--fold-batch-window", type=float)
    parser.add_argument("--sink-batch-size", type=int)
    parser.add_argument("--sink-batch-window", type=float)
    parser.add_argument("--reconcile-interval", type=float, help="seconds (production default)")
    parser.add_argument(
        "--only", choices=("ceilings", "backfill", "scale", "live"), action="append"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--fetch-max-wait-ms",
        type=int,
        help="experiment: workers' consumer fetch wait (Faust hard-codes 1500 ms)",
    )
    parser.add_argument(
        "--py-spy", help="py-spy binary: profile the one-worker backfill and the live flood"
    )
    parser.add_argument("--profile-s", type=float, default=20.0, help="seconds to profile")
    args = parser.parse_args(argv)
    quick = args.quick
    args.bookings = args.bookings or (2_000 if quick else 10_000)
    args.events = args.events or (20_000 if quick else 100_000)
    # 20,000 bookings keep the flood's fold ~12 s long: with 5,000 (~2 s, its first
    # poll and its last projection included) the ratio to bare Faust read 0.48-0.64.
    args.live_bookings = args.live_bookings or (2_000 if quick else 20_000)
    args.duration = args.duration or (10.0 if quick else 20.0)
    return args


def clamp_fetch_wait(ms: int) -> None:
    """Experiment: every consumer the worker processes create waits at most `ms` for a
    fetch instead of Faust's hard-coded 1500 ms. Worker processes inherit the
    environment: see bench/fetch_wait_patch."""
    patch = Path(__file__).with_name("fetch_wait_patch")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(patch), os.environ.get("PYTHONPATH", "")) if p
    )
    os.environ["BENCH_FETCH_MAX_WAIT_MS"] = str(ms)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def only(part: str) -> bool:
        return not args.only or part in args.only

    if args.fetch_max_wait_ms is not None:
        clamp_fetch_wait(args.fetch_max_wait_ms)
    work = Path(tempfile.mkdtemp(prefix="pipeline-bench-"))
    log(f"work dir {work}")
    started = time.monotonic()
    events = h.backfill_workload(args.bookings, args.events, args.seed, spread=args.spread)
    records = event_records(events)
    expected = verification.expected_events(events)
    log(f"workload: {len(records):,} events over {args.bookings:,} bookings")
    results: dict[str, Any] = {
        "machine": h.machine(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "workload": {
            "events": len(records),
            "bookings": args.bookings,
            "expected_events": len(expected),
        },
    }
    emulator = SalesforceEmulator(work / "salesforce")
    try:
        with start_broker(args.broker, work, "1") as broker:
            results["broker"] = describe(broker)
            results["store"] = store(worker_settings(args))
            log(f"broker: {results['broker']['name']}; store {results['store']}")
            asyncio.run(create_app_topics(broker))
            results["produce_ev_s"] = len(records) / _produce(broker, records)
            if only("ceilings"):
                results["ceilings"] = ceilings(broker, work, len(records), args)
            if only("backfill"):
                results["backfill_1"] = backfill(
                    broker, emulator, work / "backfill-1", 1, len(records), expected, args
                )
        if only("scale"):
            with start_broker(args.broker, work, "2") as broker:
                asyncio.run(create_app_topics(broker))
                _produce(broker, records)
                results["backfill_2"] = backfill(
                    broker, emulator, work / "backfill-2", 2, len(records), expected, args
                )
        if only("live"):
            with start_broker(args.broker, work, "3") as broker:
                results["live"] = live(broker, emulator, work / "live", args)
    finally:
        emulator.close()
    results["elapsed_s"] = time.monotonic() - started
    if all(k in results for k in ("ceilings", "backfill_1", "backfill_2", "live")):
        rows = report(results)
        results["targets"] = TARGETS
        print(f"broker: {results['broker']['name']}, store: {results['store']}")
        h.print_table(rows)
    else:
        print(json.dumps(results, indent=2, default=str))
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    log(f"wrote {args.output} after {results['elapsed_s']:.0f}s (logs in {work})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
