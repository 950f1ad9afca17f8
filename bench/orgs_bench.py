"""Many Salesforce orgs from one worker pool: `make bench-orgs` (issue 23's numbers).

Production defaults throughout: Apache Kafka (bench/brokers.py; `--broker embedded` to
compare), the RocksDB store, two `python -m streams worker` processes with the
worker's own limit pause, attempt deadline, backoff and reconcile interval (only the
completion timer is off, so the expected state is exactly the fold of what was sent,
as in chaos). The Salesforce emulator hosts `--orgs` named orgs (`add_org`), each
registered in the org registry as an operator would (`encode()` records onto the
compacted registry topic, what `activity-sync orgs add` writes), its client secret by
reference (`env:BENCH_SF_SECRET_ORG_000`) and given to the workers in their environment.
Every booking lives in one org (`page.salesforce_org`, spread at random per booking by
bench/chaos_orgs.py's `spread_over_orgs`, without moves); the default org gets nothing.

Phases, with the workers running and every org registered and checked on both:

1. backfill: a backlog spanning every org (`--backfill-bookings`, ~10 events each)
   produced at once; API calls per event over all orgs (the emulator's per-org
   counters, /__admin/api-calls) until every org holds the fold of it;
2. live: one org down (an emulator outage answering 503) and one over its daily API
   limit for the whole phase, while `--rate` events/s go to new bookings of every org
   for `--duration` s. Latency per booking = its Event's SystemModstamp minus the send
   of the last event that changed it (bench/harness.py), per org; every other org's
   p99 is judged against 1 s;
3. recovery: both orgs answer again (the outage ends, the limit is restored); how long
   until each holds the fold of everything sent to it, and at the end every org is
   compared with the pure fold (nothing lost, stale, duplicated or unexpected; the
   default org empty).

Prints a table (figure, value, target, verdict) and writes bench/orgs.json. Timings
are reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import sys
import tempfile
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import requests

from bench import harness as h
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
from bench.chaos_orgs import spread_over_orgs
from devkit import verification
from devkit.broker_namespace import ORGS_TOPIC
from devkit.salesforce_emulator.process import OrgHandle, SalesforceEmulator
from devkit.topics import event_records, produce
from devkit.workers import NO_COMPLETION_GRACE, WorkerProcess, worker_environment
from streams.commands.generate import generate_events
from streams.salesforce.org_registry import DEFAULT_ORG, OrgConnection, encode

RESULTS = Path(__file__).with_name("orgs.json")

TARGETS = {"live_p99_s": 1.0, "api_calls_per_event_backfill": 1 / 150}
BACKFILL_BOOKINGS_PER_ORG = 100
# Production settings but the completion timer (off: the expected state is the fold).
PRODUCTION = {"completion_grace": NO_COMPLETION_GRACE}
# Seconds between two looks at the orgs' Events while waiting for them to converge.
POLL_S = 2.0


def log(message: str) -> None:
    print(f"[bench-orgs {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# Pure helpers
# ---------------------------------------------------------------------------------------


def org_names(count: int) -> list[str]:
    """The bench's orgs: `org-000`, `org-001`, ... (names the registry accepts)."""
    if count < 3:
        raise ValueError(
            "the bench needs at least 3 orgs: one down, one over its limit, one to judge"
        )
    width = max(3, len(str(count - 1)))
    return [f"org-{n:0{width}d}" for n in range(count)]


def blocked_orgs(names: Sequence[str]) -> dict[str, str]:
    """Which org is down and which over its daily limit during the live phase."""
    return {"down": names[0], "over_limit": names[1]}


def secret_variable(org: str) -> str:
    """The environment variable the workers find `org`'s client secret in."""
    return "BENCH_SF_SECRET_" + org.upper().replace("-", "_")


def connection(org: str, login_url: str, client_id: str, ca_file: str) -> OrgConnection:
    """`org`'s registry record: its secret only as a reference (`env:` the workers')."""
    return OrgConnection(
        name=org,
        login_url=login_url,
        client_id=client_id,
        client_secret=f"env:{secret_variable(org)}",
        ca_file=ca_file,
    )


def counts_delta(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """What each counter grew by (a counter only in `after` counts from 0)."""
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def latency_summary(
    by_org: Mapping[str, Sequence[float]], blocked: Collection[str], target_s: float
) -> dict[str, Any]:
    """Each org's live latency (samples, p50, p99, max) and the judgement over the orgs
    not in `blocked`: every one has samples and a p99 within `target_s`."""
    per_org = {
        org: {
            "samples": len(values),
            "p50_s": h.quantile(values, 0.5),
            "p99_s": h.quantile(values, 0.99),
            "max_s": max(values) if values else None,
        }
        for org, values in sorted(by_org.items())
    }
    judged = [org for org in per_org if org not in blocked]
    p99s = {org: per_org[org]["p99_s"] for org in judged}
    without = [org for org, p99 in p99s.items() if p99 is None]
    over = [org for org, p99 in p99s.items() if p99 is not None and p99 > target_s]
    measured = {org: p99 for org, p99 in p99s.items() if p99 is not None}
    worst = max(measured, key=lambda org: measured[org]) if measured else None
    pooled = [v for org in judged for v in by_org[org]]
    return {
        "per_org": per_org,
        "orgs_judged": len(judged),
        "orgs_within_target": len(measured) - len(over),
        "orgs_over_target": over,
        "orgs_without_samples": without,
        "worst_org": worst,
        "worst_org_p99_s": measured[worst] if worst is not None else None,
        "pooled_samples": len(pooled),
        "pooled_p50_s": h.quantile(pooled, 0.5),
        "pooled_p99_s": h.quantile(pooled, 0.99),
        "met": bool(judged) and not over and not without,
    }


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} s"


def report(results: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """The table's rows (figure, value, target, verdict) from a run's results."""
    setup, backfill, live, recovery = (
        results["setup"],
        results["backfill"],
        results["live"],
        results["recovery"],
    )
    lat = live["latency"]
    per_event = backfill["api_calls_per_event"]
    rows = [
        ("orgs registered (emulator orgs)", str(setup["orgs"]), "", ""),
        ("backfill events over all orgs", f"{backfill['events']:,}", "", ""),
        ("  fold", f"{backfill['fold_ev_s']:,.0f} ev/s", "", ""),
        ("  into Salesforce, every org", f"{backfill['end_to_end_ev_s']:,.0f} ev/s", "", ""),
        (
            "  API calls per event",
            f"1/{1 / per_event:,.0f}" if per_event else "0",
            "≤ 1/150",
            h.verdict(per_event <= TARGETS["api_calls_per_event_backfill"]),
        ),
        ("  Salesforce = fold, every org", "yes" if backfill["matches_fold"] else "NO", "", ""),
        (
            f"live @ {live['rate_ev_s']:.0f} ev/s for {live['duration_s']:.0f} s",
            f"{live['achieved_ev_s']:,.0f} ev/s sent",
            "",
            "",
        ),
        (
            "  orgs with p99 ≤ 1 s (down, over-limit org left out)",
            f"{lat['orgs_within_target']}/{lat['orgs_judged']}",
            "all",
            h.verdict(lat["met"]),
        ),
        (
            "  worst org's p99",
            f"{_seconds(lat['worst_org_p99_s'])} ({lat['worst_org']})",
            "≤ 1 s",
            h.verdict(None if lat["worst_org_p99_s"] is None else lat["met"]),
        ),
        (
            "  p50 / p99 over those orgs' bookings",
            f"{_seconds(lat['pooled_p50_s'])} / {_seconds(lat['pooled_p99_s'])}",
            "",
            "",
        ),
        ("  Salesforce = fold, those orgs", "yes" if live["healthy_match"] else "NO", "", ""),
    ]
    for role, org in results["blocked"].items():
        seconds = recovery["converged_after_s"].get(org)
        rows.append(
            (
                f"{role} org ({org}) converged after it recovered",
                _seconds(seconds),
                "converges",
                h.verdict(seconds is not None),
            )
        )
    loads = [phase.get("load_average_at_start") for phase in (backfill, live)]
    shown = [f"{load[0]:.1f}" if load else "n/a" for load in loads]
    rows.append(("load average (1 min) at backfill / live start", " / ".join(shown), "", ""))
    final = results["final"]
    rows.append(
        (
            "nothing lost: every org = fold at the end",
            "yes"
            if final["ok"]
            else "NO: "
            + ", ".join(f"{count} {kind}" for kind, count in final["problems"].items() if count),
            "yes",
            h.verdict(final["ok"]),
        )
    )
    return rows


# ---------------------------------------------------------------------------------------
# Orgs: the emulator's, the registry's, the workers' view of them
# ---------------------------------------------------------------------------------------


def register(broker: Broker, handles: Mapping[str, OrgHandle]) -> dict[str, str]:
    """Register every org (the records `orgs add` writes); returns the environment the
    workers resolve the orgs' `env:` references from."""
    records = [
        encode(connection(name, org.url, org.client_id, org.ca_file))
        for name, org in handles.items()
    ]
    asyncio.run(produce(broker, ORGS_TOPIC, records))
    return {secret_variable(name): org.client_secret for name, org in handles.items()}


def _get(worker: WorkerProcess, path: str) -> dict[str, Any]:
    try:
        answer = requests.get(f"{worker.web_url}/{path}/", timeout=5)
        body: dict[str, Any] = answer.json()
        return body
    except (requests.RequestException, ValueError):
        return {}


def follows(worker: WorkerProcess, names: Collection[str]) -> bool:
    """The worker has read the registry (every org) and checked every org."""
    seen = _get(worker, "orgs")
    if not seen.get("caught_up") or {o["name"] for o in seen.get("orgs", [])} != set(names):
        return False
    return set(_get(worker, "health").get("orgs", {})) >= set(names)


def failing_checks(workers: Iterable[WorkerProcess]) -> dict[str, str]:
    return {
        name: line
        for worker in workers
        for name, line in _get(worker, "health").get("orgs", {}).items()
        if not str(line).startswith("ok")
    }


def api_calls(emulator: SalesforceEmulator, handles: Mapping[str, OrgHandle]) -> dict[str, int]:
    """API calls so far today by kind, summed over the default org and every named one."""
    total: dict[str, int] = {}
    for org in [emulator, *handles.values()]:
        for kind, count in org.api_calls()["by_kind"].items():
            total[kind] = total.get(kind, 0) + int(count)
    return total


def converge(
    handles: Mapping[str, OrgHandle],
    expected: Mapping[str, Mapping[str, dict[str, Any]]],
    orgs: Collection[str],
    timeout_s: float,
) -> tuple[dict[str, float], dict[str, list[dict[str, Any]]], dict[str, verification.Comparison]]:
    """Until each of `orgs` holds what the fold expects of it (or `timeout_s`): when each
    did (seconds from the call), each org's Events as last read, and the last
    comparison of those that did not."""
    began = time.monotonic()
    done: dict[str, float] = {}
    records: dict[str, list[dict[str, Any]]] = {}
    differing: dict[str, verification.Comparison] = {}
    while True:
        for org in [o for o in orgs if o not in done]:
            records[org] = handles[org].records()
            comparison = verification.compare_salesforce(records[org], dict(expected.get(org, {})))
            if comparison.ok:
                done[org] = time.monotonic() - began
                differing.pop(org, None)
            else:
                differing[org] = comparison
        if len(done) == len(orgs) or time.monotonic() - began > timeout_s:
            return done, records, differing
        time.sleep(POLL_S)


def last_modstamp(records: Iterable[Mapping[str, Any]]) -> float | None:
    stamps = h.modstamps(records).values()
    return max(stamps) if stamps else None


# ---------------------------------------------------------------------------------------
# Phases
# ---------------------------------------------------------------------------------------


class Run:
    """The processes of one run: the emulator and its orgs, the broker, the workers."""

    def __init__(self, args: argparse.Namespace, broker: Broker, emulator: SalesforceEmulator):
        self.args = args
        self.broker = broker
        self.emulator = emulator
        self.names = org_names(args.orgs)
        self.blocked = blocked_orgs(self.names)
        self.handles: dict[str, OrgHandle] = {}
        self.workers: list[WorkerProcess] = []
        self.sent: list[h.Event] = []

    def pids(self) -> dict[str, int | None]:
        pids = {w.log_path.stem: w.process.pid if w.process else None for w in self.workers}
        emulator = self.emulator.process.pid if self.emulator.process else None
        own = {"bench": os.getpid()}  # the producer and the bench's own polling
        return {**pids, "broker": broker_pid(self.broker), "emulator": emulator, **own}

    def setup(self, root: Path) -> dict[str, Any]:
        began = time.monotonic()
        self.handles = {name: self.emulator.add_org(name) for name in self.names}
        orgs_s = time.monotonic() - began
        log(f"{len(self.handles)} emulator orgs in {orgs_s:.1f}s")
        asyncio.run(create_app_topics(self.broker))
        secrets = register(self.broker, self.handles)
        spawned = time.monotonic()
        for n in range(self.args.workers):
            name = f"worker-{n + 1}"
            env = worker_environment(self.broker, self.emulator, root / name, PRODUCTION)
            self.workers.append(WorkerProcess({**env, **secrets}, root / f"{name}.log").start())
        for worker in self.workers:
            h.wait_until(functools.partial(h.worker_ready, worker), 180, "a worker to be ready")
        ready = time.monotonic()
        for worker in self.workers:
            h.wait_until(
                functools.partial(follows, worker, self.names),
                600,
                "every worker to read and check every org",
                poll=1.0,
            )
        followed = time.monotonic()
        failing = failing_checks(self.workers)
        log(
            f"workers ready after {ready - spawned:.0f}s; every org read and checked after "
            f"{followed - ready:.0f}s more; failing checks: {len(failing)}"
        )
        return {
            "orgs": len(self.names),
            "emulator_orgs_s": orgs_s,
            "workers": len(self.workers),
            "workers_ready_s": ready - spawned,
            "orgs_checked_s": followed - ready,
            "failing_checks": dict(list(failing.items())[:5]),
        }

    def backfill(self, watch: h.Watch) -> dict[str, Any]:
        args = self.args
        events = h.backfill_workload(args.backfill_bookings, args.backfill_events, args.seed)
        events, _ = spread_over_orgs(events, self.names, args.seed, move_share=0.0)
        expected = verification.expected_by_org(events)
        records = event_records(events)
        calls_before = api_calls(self.emulator, self.handles)
        load = os.getloadavg()  # the machine is shared: how busy it was as the phase began
        base = watch.latest()
        base_committed = base.committed.get(h.EVENTS_TOPIC, 0) if base else 0
        cpu_before = h.cpu_snapshot(self.pids())
        began, began_wall = time.monotonic(), time.time()
        asyncio.run(produce(self.broker, h.EVENTS_TOPIC, records))
        produced = time.monotonic()
        committed = watch.wait(
            lambda s: s.committed.get(h.EVENTS_TOPIC, 0) >= base_committed + len(records),
            900,
            "the backfill's fold",
        )
        fold_done = watch.last_change(
            lambda s: s.ends.get(h.PROJECTIONS_TOPIC), began, committed.at
        )
        cpu = h.cores_used(cpu_before, h.cpu_snapshot(self.pids()), committed.at - began)
        done, written, differing = converge(self.handles, expected, self.names, args.settle)
        calls = counts_delta(calls_before, api_calls(self.emulator, self.handles))
        self.sent.extend(events)
        last = max((s for s in map(last_modstamp, written.values()) if s is not None), default=None)
        total = sum(calls.values())
        result = {
            "events": len(records),
            "bookings": args.backfill_bookings,
            "expected_events": sum(len(v) for v in expected.values()),
            "produce_s": produced - began,
            "fold_s": fold_done - began,
            "fold_ev_s": len(records) / max(1e-9, fold_done - began),
            "salesforce_done_s": None if last is None else last - began_wall,
            "end_to_end_ev_s": 0.0 if last is None else len(records) / (last - began_wall),
            "cores_used_during_fold": cpu,
            "load_average_at_start": load,
            "api_calls": total,
            "api_calls_by_kind": calls,
            "api_calls_per_event": total / len(records),
            "orgs_converged": len(done),
            "matches_fold": len(done) == len(self.names),
            "problems": _problems(differing),
        }
        log(
            f"backfill: {len(records):,} events, fold {result['fold_ev_s']:,.0f} ev/s, "
            f"{total} API calls (1/{len(records) / max(total, 1):,.0f}), "
            f"{len(done)}/{len(self.names)} orgs = fold"
        )
        return result

    def live(self) -> dict[str, Any]:
        args = self.args
        down, limited = self.handles[self.blocked["down"]], self.handles[self.blocked["over_limit"]]
        count = int(args.rate * args.duration)
        events = list(generate_events(max(1, int(count / 2.5)), args.seed + 1, id_prefix="l-"))
        events, _ = spread_over_orgs(events[:count], self.names, args.seed + 1, move_share=0.0)
        changed = h.last_changes(events)
        self.sent.extend(events)
        expected = verification.expected_by_org(self.sent)
        sent_at = [0.0] * len(events)

        def stamp(index: int, wall: float) -> None:
            sent_at[index] = wall

        down.down(args.duration + args.settle + 3600)
        limited.set_daily_limit(0)
        log(f"{down.name} down, {limited.name} over its daily limit; live traffic starts")
        metrics_before = h.scrape(self.workers)
        calls_before = api_calls(self.emulator, self.handles)
        load = os.getloadavg()
        cpu_before = h.cpu_snapshot(self.pids())
        took = asyncio.run(
            produce(
                self.broker, h.EVENTS_TOPIC, event_records(events), rate=args.rate, on_sent=stamp
            )
        )
        cpu = h.cores_used(cpu_before, h.cpu_snapshot(self.pids()), took)
        healthy = [org for org in self.names if org not in self.blocked.values()]
        done, written, differing = converge(self.handles, expected, healthy, args.settle)
        calls = counts_delta(calls_before, api_calls(self.emulator, self.handles))
        metrics_after = h.scrape(self.workers)
        samples = {k: v - metrics_before.get(k, 0.0) for k, v in metrics_after.items()}
        by_org = {org: h.latencies(changed, sent_at, written.get(org, [])) for org in self.names}
        summary = latency_summary(by_org, set(self.blocked.values()), TARGETS["live_p99_s"])
        histogram = "activity_sync_end_to_end_latency_seconds"
        result = {
            "rate_ev_s": args.rate,
            "duration_s": args.duration,
            "events": len(events),
            "achieved_ev_s": len(events) / took,
            "cores_used": cpu,
            "load_average_at_start": load,
            "load_average_at_end": os.getloadavg(),
            "healthy_orgs_converged": len(done),
            "healthy_match": len(done) == len(healthy),
            "converged_after_traffic_s": max(done.values()) if done else None,
            "problems": _problems(differing),
            "api_calls": sum(calls.values()),
            "api_calls_by_kind": calls,
            "metrics_histogram_p99_s": h.histogram_quantile(samples, histogram, 0.99),
            "skipped": {
                k: v for k, v in samples.items() if "projections_skipped_total{" in k and v
            },
            "latency": summary,
        }
        log(
            f"live: {result['achieved_ev_s']:,.0f} ev/s sent; "
            f"{summary['orgs_within_target']}/{summary['orgs_judged']} orgs p99 ≤ 1 s, worst "
            f"{summary['worst_org']} {summary['worst_org_p99_s']}; pooled p99 "
            f"{summary['pooled_p99_s']}; {len(done)}/{len(healthy)} healthy orgs = fold"
        )
        return result

    def recover(self) -> dict[str, Any]:
        down, limited = self.handles[self.blocked["down"]], self.handles[self.blocked["over_limit"]]
        expected = verification.expected_by_org(self.sent)
        down.down(0)
        limited.set_daily_limit(int(limited.info["daily_limit"]))
        log(f"{down.name} up, {limited.name}'s limit restored; waiting for them to converge")
        blocked = list(self.blocked.values())
        done, _, differing = converge(self.handles, expected, blocked, self.args.recover_timeout)
        log(f"recovery: converged after {done} (not: {sorted(differing)})")
        return {"converged_after_s": done, "problems": _problems(differing)}

    def final(self) -> dict[str, Any]:
        """Every org against the fold of everything sent, and the default org empty."""
        expected = verification.expected_by_org(self.sent)
        problems: dict[str, list[str]] = {}
        totals = {"lost": 0, "stale": 0, "duplicate": 0, "unexpected": 0}
        orgs: dict[str, Any] = {**self.handles, DEFAULT_ORG: self.emulator}
        for name, org in orgs.items():
            comparison = verification.compare_salesforce(org.records(), expected.get(name, {}))
            for kind in totals:
                totals[kind] += len(getattr(comparison, kind))
            if not comparison.ok:
                problems[name] = comparison.details[:3]
        ok = not problems
        log("final: every org = fold" if ok else f"final: {totals} in {len(problems)} orgs")
        return {"ok": ok, "problems": totals, "details": dict(list(problems.items())[:5])}


def _problems(differing: Mapping[str, verification.Comparison]) -> dict[str, Any]:
    return {
        "orgs": len(differing),
        "first": {org: c.details[:3] for org, c in list(sorted(differing.items()))[:3]},
    }


# ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_broker_argument(parser)
    parser.add_argument("--orgs", type=int, default=200, help="registered orgs (200)")
    parser.add_argument("--rate", type=float, default=500.0, help="live rate, ev/s (500)")
    parser.add_argument("--duration", type=float, default=60.0, help="live seconds (60)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    parser.add_argument(
        "--backfill-bookings", type=int, help="backfill bookings (100 per org: 20,000)"
    )
    parser.add_argument("--backfill-events", type=int, help="backfill events (10 per booking)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--settle",
        type=float,
        default=180.0,
        help="seconds the served orgs may take to hold the fold after a phase (180)",
    )
    parser.add_argument(
        "--recover-timeout",
        type=float,
        default=600.0,
        help="seconds the two blocked orgs may take to converge once they recover (600)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    org_names(args.orgs)  # at least 3
    # 100 per org: each worker makes at least a lookup and an upsert per org in a backfill
    # (it folds a share of every org's bookings), so with 50 an org that floor alone was
    # 1/125 of the events, whatever the batching (docs/performance.md, "Many orgs").
    args.backfill_bookings = args.backfill_bookings or BACKFILL_BOOKINGS_PER_ORG * args.orgs
    args.backfill_events = args.backfill_events or 10 * args.backfill_bookings
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="orgs-bench-"))
    log(f"work dir {work} (worker logs, emulator data)")
    started = time.monotonic()
    results: dict[str, Any] = {
        "machine": h.machine(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    emulator = SalesforceEmulator(work / "salesforce")
    run: Run | None = None
    try:
        with start_broker(args.broker, work, "orgs") as broker:
            results["broker"] = describe(broker)
            results["store"] = store()
            log(f"broker: {results['broker']['name']}; store {results['store']}")
            asyncio.run(warm_up(broker))
            run = Run(args, broker, emulator)
            results["blocked"] = run.blocked
            try:
                results["setup"] = run.setup(work)
                with h.Watch(broker.bootstrap) as watch:
                    results["backfill"] = run.backfill(watch)
                # The live phase reads no offsets: no watch polling the broker beside it.
                results["live"] = run.live()
                results["recovery"] = run.recover()
                results["final"] = run.final()
            finally:
                for worker in run.workers:
                    worker.stop()
    finally:
        emulator.close()
    results["elapsed_s"] = time.monotonic() - started
    results["targets"] = TARGETS
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"broker: {results['broker']['name']}, store: {results['store']}, {args.workers} workers")
    h.print_table(report(results))
    log(f"wrote {args.output} after {results['elapsed_s']:.0f}s (logs in {work})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
