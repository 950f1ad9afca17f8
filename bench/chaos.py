"""Fault injection over the whole pipeline: `make chaos`.

Two worker processes with production settings (the 60 s limit pause, the attempt
deadline, backoff cap and reconcile interval of `Settings`, the kafka profile's own
session timeout, RocksDB; only the completion timer is off, so the fold of what was
sent is the expected state) on a three-node Apache Kafka cluster (devkit/kafka.py:
KRaft, every topic with replication factor 3 and min.insync.replicas 2, created up
front as deployment does; the traffic's producer and the app both send with acks=all)
and the Salesforce emulator, whose version fence comes from salesforce/
(devkit/salesforce_emulator/metadata.py).

Three Salesforce orgs (`--orgs 3`, the default; issue 23): the emulator's default org
(the workers' ACTIVITY_SYNC_SALESFORCE_* settings) and two named orgs of the same
emulator (`add_org`: globex, initech), registered as an operator does, with
`activity-sync orgs add` into the registry topic, their client secrets as `env:`
references that only the workers' environment resolves; the traffic starts once both
workers have read the registry. The bookings are spread over the orgs (each org has its
own copy of every page, `page.salesforce_org`), and about half of the bookings that get
a reassignment are moved by it to a page of another org (bench/chaos_orgs.py). `--orgs
1` is the run as it was before orgs existed: the same events, one org.

While a producer sends the lifecycles of `--bookings` bookings at a steady pace (with
1 % malformed records of every kind the contract names), a script of faults runs, at
fixed fractions of the traffic; each Salesforce-side fault hits one org (through its
/orgs/<name>/__admin routes, or the default org's), the orgs taken in turn from one
the seed picks, so every org gets two of the six and each seed puts them elsewhere
(`faults by org:` is logged first):

  0.05 UNABLE_TO_LOCK_ROW on 20 % of written records; 0.10 the Kafka node leading
  booking-events[0] SIGKILLed (no controlled shutdown) and restarted 5 s later;
  0.15 a worker SIGKILLed and restarted; 0.28 every Salesforce token of an org
  expired; 0.30 REQUEST_LIMIT_EXCEEDED (a sink pauses that org 60 s) and the other
  worker restarted (SIGTERM) during that pause; 0.45 an org down answering 503 with a
  worker SIGKILLed and restarted during it (0.50); 0.58 the Kafka node leading the
  bookings changelog's partition 0 stopped (SIGTERM: a controlled shutdown) for 30 s,
  then started again; 0.70 an org down closing connections with the other worker
  restarted (SIGTERM) during it; 0.85 UNABLE_TO_LOCK_ROW again; 0.95 (and 0.25) every
  org's faults cleared.

The broker faults run on their own threads (a node's restart takes 10-20 s here) and
one at a time: two nodes down of three is below min ISR. The limit step waits up to 45 s
for a sink to hit the limit (a SIGKILLed worker stalls its group for the kafka profile's
30 s session timeout, and nothing is written meanwhile), a worker fault comes at
least 10 s after the previous one ended, so a late step does not land two on top of
each other, and any step comes at least half its planned interval after the one before
(a late UNABLE_TO_LOCK_ROW window is not cleared at once). The timeline notes when the
partition's leader moved and when every partition's ISR was full again. `--brokers 1`
runs a single node instead (quicker; no broker faults: no other replica could lead).

Two verdicts, for every org. (a) At the first moment Salesforce has been quiet for
`--quiet` s (no API call, no write in any org) after the traffic, each org must equal
the pure fold of every valid event (devkit/verification.py `expected_by_org`: the fold
and projection of streams/core, the full Event in the booking's org and, in each org a
booking left, the mark its projection's departures give): no lost, stale or duplicate
Events, no Event in an org it does not belong to (`unexpected`); nothing waits for the
reconcile timer. (b) Over the whole run, no Event was ever written with a lower
Projection_Version__c than it had (each org's write log). Every malformed record
must be in booking-events.dlq, and no worker may exit by itself (checked before each
worker fault and at the end; `exited=` names one). Prints one line, `chaos: N bookings
in 3 orgs (K moved across them), lost=0 stale=0 duplicate=0 regressions=0 dlq=M/M`
(the counts summed over the orgs; with one org, `chaos: N bookings, lost=0 ...`), a line
per org and details of anything wrong on stderr (the wrong bookings' records in every
topic, their worker log lines, the timeline), and exits 1 if anything is off. The work
dir (printed first) keeps the worker logs, each Kafka node's log
(kafka/node-N/server.log) and the emulator's data; the cluster is stopped at the end,
on errors too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import requests
from aiokafka.admin import AIOKafkaAdminClient

from bench import harness as h
from bench.chaos_orgs import chaos_orgs, fault_targets, spread_over_orgs
from devkit import verification
from devkit.broker_namespace import APP_TOPICS, BrokerNamespace
from devkit.kafka import KafkaCluster, partition_leader
from devkit.salesforce_emulator.process import OrgAdmin, SalesforceEmulator
from devkit.topics import AnyBroker, Record, event_records, produce, read_topic
from devkit.workers import NO_COMPLETION_GRACE, WorkerProcess, worker_environment
from streams.commands.generate import generate_events
from streams.salesforce.org_registry import DEFAULT_ORG
from streams.worker.pipeline.dead_letter import read_headers

MALFORMED_KINDS = (
    "not-json",
    "not-utf8",
    "bad-schema",
    "naive-time",
    "unknown-type",
    "key-not-subject",
    "no-key",
    "oversized",
)


def log(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def malformed(kind: str, sample: h.Event, n: int) -> Record:
    """A record the worker must dead-letter; built from a real event where that helps."""
    key = str(sample["subject"]).encode()
    event = {**sample, "id": f"malformed-{n}"}
    if kind == "not-json":
        return key, b'{"specversion": "1.0", "id": "broken-' + str(n).encode() + b'"'
    if kind == "not-utf8":
        return key, b"\xff\xfe\x00garbage-" + str(n).encode()
    if kind == "bad-schema":
        return key, orjson.dumps({**event, "sequence": "third"})
    if kind == "naive-time":
        return key, orjson.dumps({**event, "time": "2026-11-24T09:30:00"})
    if kind == "unknown-type":
        return key, orjson.dumps({**event, "type": "booking.teleported", "data": {}})
    if kind == "key-not-subject":
        return b"b-someone-else", orjson.dumps(event)
    if kind == "no-key":
        return None, orjson.dumps(event)
    if kind == "oversized":
        data = dict(sample.get("data") or {})
        data["description"] = "x" * (70 * 1024)
        return key, orjson.dumps({**event, "data": data})
    raise ValueError(kind)


def build_traffic(
    bookings: int, seed: int, malformed_rate: float, orgs: tuple[str, ...] = (DEFAULT_ORG,)
) -> tuple[list[h.Event], list[Record], list[tuple[str, Record]], set[str]]:
    """Valid events (spread over `orgs`), the records to send (valid and malformed
    mixed), the malformed ones, and the bookings moved to another org."""
    rng = random.Random(seed)
    events, moved = spread_over_orgs(generate_events(bookings, seed), orgs, seed)
    count = max(len(MALFORMED_KINDS), round(len(events) * malformed_rate))
    bad: list[tuple[str, Record]] = []
    for n in range(count):
        kind = MALFORMED_KINDS[n % len(MALFORMED_KINDS)]
        bad.append((kind, malformed(kind, rng.choice(events), n)))
    records = event_records(events)
    slots = sorted(rng.sample(range(len(records) + len(bad)), len(bad)))
    mixed: list[Record] = []
    bad_iter = iter(bad)
    good_iter = iter(records)
    slot_set = set(slots)
    for position in range(len(records) + len(bad)):
        mixed.append(next(bad_iter)[1] if position in slot_set else next(good_iter))
    return events, mixed, bad, moved


class Producer(threading.Thread):
    """Sends the records at a steady pace in the background."""

    def __init__(
        self,
        broker: AnyBroker,
        records: list[Record],
        rate: float,
        done: Callable[[Producer], None] = lambda _: None,
    ) -> None:
        super().__init__(daemon=True, name="producer")
        self.broker, self.records, self.rate = broker, records, rate
        self.done = done  # called when every record is acknowledged
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        def count(index: int, _: float) -> None:
            self.sent = index + 1

        try:
            asyncio.run(
                produce(self.broker, h.EVENTS_TOPIC, self.records, rate=self.rate, on_sent=count)
            )
        except BaseException as exc:  # reported by the main thread
            self.error = exc
        else:
            self.done(self)


class Chaos:
    def __init__(
        self,
        args: argparse.Namespace,
        work: Path,
        cluster: KafkaCluster,
        orgs: tuple[str, ...],
    ) -> None:
        self.args = args
        self.work = work
        self.cluster = cluster
        # Each org's admin API by name (`default`: the emulator's own org; the others
        # once added), and the org each Salesforce-side fault of the script hits.
        self.sites: dict[str, OrgAdmin] = {}
        self.targets = fault_targets(orgs, args.seed)
        self.workers: dict[str, WorkerProcess] = {}
        self.timeline: list[str] = []
        self.began = time.monotonic()
        self.dumps: dict[str, list[str]] = {}
        # Workers found exited by themselves (check_running).
        self.dead: list[str] = []
        self._lock = threading.Lock()

    def check_running(self, name: str) -> None:
        """Note a worker that exited by itself (before a fault the script was about to
        inject, or by the end): a crash is a finding even when the other worker made up
        for it and the script restarted this one."""
        worker = self.workers[name]
        if worker.process is not None and worker.process.poll() is None:
            return
        code = worker.process.returncode if worker.process else None
        self.note(f"{name} had exited by itself (exit {code}): see {worker.log_path}")
        self.dead.append(name)

    def site(self, fault: str) -> tuple[str, OrgAdmin]:
        """The org a fault of chaos_orgs.SALESFORCE_FAULTS hits, and its admin API."""
        org = self.targets[fault]
        return org, self.sites[org]

    def where(self, org: str) -> str:
        """' in org NAME' for a note, when the run has more than one org."""
        return f" in org {org}" if len(self.sites) > 1 else ""

    def note(self, what: str) -> None:
        line = f"t={time.monotonic() - self.began:5.1f}s {what}"
        with self._lock:  # the broker faults note from their own thread
            self.timeline.append(line)
        log(line)


class Background(threading.Thread):
    """A fault that takes its time (a broker down, then back, then caught up) without
    holding up the script's next step; its exception is re-raised by `finish`."""

    def __init__(self, name: str, step: Callable[[], None]) -> None:
        super().__init__(daemon=True, name=name)
        self.step = step
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.step()
        except BaseException as exc:  # re-raised in the main thread
            self.error = exc

    def finish(self, timeout: float) -> None:
        self.join(timeout)
        if self.is_alive():
            raise RuntimeError(f"{self.name} still running after {timeout:.0f}s")
        if self.error is not None:
            raise RuntimeError(f"{self.name} failed: {self.error!r}") from self.error


def run(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="chaos-"))
    log(
        f"seed {args.seed}; work dir {work} (worker logs, Kafka nodes' logs in "
        "kafka/node-*/server.log, emulator data)"
    )
    orgs = chaos_orgs(args.orgs)
    events, mixed, bad, moved = build_traffic(args.bookings, args.seed, args.malformed_rate, orgs)
    expected = verification.expected_by_org(events)
    rate = len(mixed) / args.duration
    log(
        f"{args.bookings} bookings: {len(events)} valid events, {len(bad)} malformed, "
        f"{sum(map(len, expected.values()))} Events expected"
        + (
            f" ({', '.join(f'{org} {len(expected.get(org, {}))}' for org in orgs)}; "
            f"{len(moved)} bookings moved across orgs)"
            if len(orgs) > 1
            else ""
        )
        + f"; sending at {rate:.0f}/s for {args.duration:.0f}s"
    )
    emulator = SalesforceEmulator(work / "salesforce")
    cluster = KafkaCluster(work / "kafka", brokers=args.brokers)
    chaos = Chaos(args, work, cluster, orgs)
    sites = chaos.sites
    sites[DEFAULT_ORG] = emulator
    # Production defaults: no test preset; the completion timer off (see the docstring).
    production = {"completion_grace": NO_COMPLETION_GRACE}
    settings = {"sink_limit_pause": str(args.limit_pause)}
    try:
        for org in orgs[1:]:
            sites[org] = emulator.add_org(org)
        if len(orgs) > 1:
            log("faults by org: " + ", ".join(f"{f} {o}" for f, o in chaos.targets.items()))
        started = time.monotonic()
        with cluster:
            log(
                f"Apache Kafka {cluster.version}: {args.brokers} node(s) at {cluster.bootstrap} "
                f"(replication factor {cluster.replication_factor}, min ISR "
                f"{cluster.min_insync_replicas}), up in {time.monotonic() - started:.0f}s"
            )
            try:
                # The app's topics, as deployment creates them (replication factor and
                # min ISR of the cluster; the org registry compacted); the workers
                # create their changelogs.
                asyncio.run(h.create_topics(cluster, list(APP_TOPICS.values())))
                secrets = register_orgs(cluster, sites)
                for name in ("worker-1", "worker-2"):
                    env = worker_environment(cluster, emulator, work / name, production, **settings)
                    chaos.workers[name] = WorkerProcess(
                        {**env, **secrets}, work / f"{name}.log"
                    ).start()
                for worker in chaos.workers.values():
                    h.wait_until(
                        functools.partial(h.worker_ready, worker), 180, "a worker to be ready"
                    )
                    h.wait_until(
                        functools.partial(follows_registry, worker, orgs[1:]),
                        60,
                        "a worker to read the org registry",
                    )
                chaos.began = time.monotonic()
                chaos.note("workers ready; traffic starts")
                producer = Producer(
                    cluster,
                    mixed,
                    rate,
                    lambda p: chaos.note(f"traffic done: {p.sent} records sent"),
                )
                producer.start()
                faults = script(chaos, args.duration)
                producer.join()
                if producer.error is not None:
                    raise RuntimeError(f"producer failed: {producer.error!r}")
                for fault in faults:  # every node back and caught up before the judging
                    fault.finish(180)
                for name in chaos.workers:
                    chaos.check_running(name)
                for site in sites.values():
                    site.replace_faults({})
                comparisons = at_first_quiet(chaos, expected, args.quiet, args.settle)
                writes = {org: site.writes() for org, site in sites.items()}
                dlq = asyncio.run(read_topic(cluster, h.EVENTS_DLQ_TOPIC))
                for worker in chaos.workers.values():
                    worker.stop()
                wrong = wrong_bookings(comparisons)
                if wrong:
                    chaos.dumps = dump_topics(cluster, work, wrong)
                    unsent = asyncio.run(missing_from_topic(cluster, mixed))
                    log(f"records sent but missing from {h.EVENTS_TOPIC}: {unsent}")
            finally:
                for worker in chaos.workers.values():  # on an error: none left running
                    worker.kill()
    finally:
        emulator.close()
    return verdict(chaos, args, events, expected, comparisons, writes, dlq, bad, moved)


def secret_variable(org: str) -> str:
    """The environment variable the workers find `org`'s client secret in."""
    return "CHAOS_SF_SECRET_" + org.upper().replace("-", "_")


def register_orgs(broker: AnyBroker, sites: dict[str, OrgAdmin]) -> dict[str, str]:
    """Register every org but the default one as an operator does (`activity-sync orgs
    add`, the secret as an env: reference); the variables the workers need."""
    secrets: dict[str, str] = {}
    for org, site in sites.items():
        if org == DEFAULT_ORG:
            continue
        variable = secret_variable(org)
        added = subprocess.run(
            [
                *(sys.executable, "-m", "streams", "orgs", "add", org),
                *("--login-url", site.url, "--client-id", site.client_id),
                *("--client-secret", f"env:{variable}", "--ca-file", site.ca_file),
            ],
            env={**os.environ, **BrokerNamespace.of(broker).env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        if added.returncode != 0:
            raise RuntimeError(f"orgs add {org} failed: {added.stderr.strip()}")
        log(added.stdout.splitlines()[0])
        secrets[variable] = site.client_secret
    return secrets


def follows_registry(worker: WorkerProcess, orgs: tuple[str, ...]) -> bool:
    """The worker has read the registry to its end and knows every org of the run."""
    try:
        body = requests.get(f"{worker.web_url}/orgs/", timeout=5).json()
    except (requests.RequestException, ValueError):
        return False
    return bool(body.get("caught_up")) and set(orgs) <= {o["name"] for o in body["orgs"]}


# How long the limit step waits for a sink to hit REQUEST_LIMIT_EXCEEDED.
LIMIT_WAIT_S = 45.0
# The least time between the end of one worker fault and the next.
WORKER_GAP_S = 10.0


def script(chaos: Chaos, duration: float) -> list[Background]:
    """The faults, at fixed fractions of the traffic's duration, each Salesforce-side
    one in the org `chaos.targets` names. The broker faults run on their own threads
    (returned: the caller waits for them) so that a node's slow restart does not shift
    the worker faults after it."""

    def at(fraction: float) -> None:
        wait = chaos.began + fraction * duration - time.monotonic()
        if wait > 0:
            time.sleep(wait)

    last_worker_fault = [0.0]

    def after_last_worker_fault() -> None:
        # A step that ran late (the limit step waits for a sink) must not put two
        # worker faults on top of each other: each gets WORKER_GAP_S to take effect.
        wait = last_worker_fault[0] + WORKER_GAP_S - time.monotonic()
        if wait > 0:
            time.sleep(wait)

    def kill_and_restart(name: str, down_for: float) -> None:
        after_last_worker_fault()
        worker = chaos.workers[name]
        chaos.check_running(name)
        pid = worker.process.pid if worker.process else "?"
        worker.kill()
        chaos.note(f"SIGKILL {name} (pid {pid})")
        time.sleep(down_for)
        worker.start()
        chaos.note(f"restarted {name}")
        last_worker_fault[0] = time.monotonic()

    def stop_and_restart(name: str) -> None:
        after_last_worker_fault()
        worker = chaos.workers[name]
        chaos.check_running(name)
        began = time.monotonic()
        worker.stop()
        chaos.note(f"SIGTERM {name}: stopped after {time.monotonic() - began:.1f}s")
        worker.start()
        chaos.note(f"restarted {name}")
        last_worker_fault[0] = time.monotonic()

    def restart_during_limit_pause() -> None:
        limit(chaos)
        logs = {name: len(w.log_text()) for name, w in chaos.workers.items()}

        def paused() -> str | None:
            for name, worker in chaos.workers.items():
                if "API limit reached" in worker.log_text()[logs[name] :]:
                    return name
            return None

        # Up to LIMIT_WAIT_S: the worker SIGKILLed at 0.15 stalls the group until its
        # session times out (30 s on Kafka), and no sink writes meanwhile.
        deadline = time.monotonic() + LIMIT_WAIT_S
        while paused() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        name = paused()
        if name is None:
            chaos.note(
                f"no sink hit the limit within {LIMIT_WAIT_S:.0f} s: restarting worker-2 anyway"
            )
            name = "worker-1"
        else:
            chaos.note(f"{name}'s sink is in its {chaos.args.limit_pause:.0f} s limit pause")
        stop_and_restart("worker-2" if name == "worker-1" else "worker-1")

    broker_faults: list[Background] = []

    def in_background(name: str, step: Callable[[], None]) -> None:
        # One broker fault at a time: two nodes down of three is below min ISR.
        for earlier in broker_faults:
            earlier.finish(120)
        if len(chaos.cluster.nodes) < 3:
            chaos.note(f"{name} skipped: a single Kafka node has no other replica to lead")
            return
        fault = Background(name, step)
        fault.start()
        broker_faults.append(fault)

    steps: list[tuple[float, Callable[[], None]]] = [
        (0.05, lambda: lock_rows(chaos, "lock-rows", 0.2)),
        (0.10, lambda: in_background("leader kill", lambda: kill_leader(chaos, 5.0))),
        (0.15, lambda: kill_and_restart("worker-2", 4.0)),
        (0.25, lambda: clear_faults(chaos)),
        (0.28, lambda: expire(chaos)),
        (0.30, restart_during_limit_pause),
        (0.45, lambda: down(chaos, "down-503", 20.0, "503")),
        (0.50, lambda: kill_and_restart("worker-1", 3.0)),
        (0.58, lambda: in_background("broker stop", lambda: stop_broker(chaos, 30.0))),
        (0.70, lambda: down(chaos, "down-close", 15.0, "close")),
        (0.74, lambda: stop_and_restart("worker-2")),
        (0.85, lambda: lock_rows(chaos, "lock-rows-2", 0.2)),
        (0.95, lambda: clear_faults(chaos)),
    ]
    previous = (0.0, chaos.began)  # the previous step's fraction and when it ran
    for fraction, step in steps:
        at(fraction)
        # After a late step, at least half of the planned interval: a fault window
        # (UNABLE_TO_LOCK_ROW until cleared) does not shrink to nothing.
        gap = (fraction - previous[0]) * duration / 2
        time.sleep(max(0.0, previous[1] + gap - time.monotonic()))
        previous = (fraction, time.monotonic())
        step()
    return broker_faults


# The partitions whose leader the broker faults take down: the traffic's first
# partition, and the fold's state of the bookings on it (its changelog).
EVENTS_PARTITION = (h.EVENTS_TOPIC, 0)
CHANGELOG_PARTITION = (f"{h.APP_GROUP}-bookings-changelog", 0)


def leader_of(chaos: Chaos, topic: str, partition: int) -> int | None:
    return asyncio.run(partition_leader(chaos.cluster.bootstrap, topic, partition))


def wait_new_leader(
    chaos: Chaos, topic: str, partition: int, old: int, timeout: float = 60.0
) -> tuple[int | None, float]:
    """The partition's next leader other than `old`, and the seconds until one showed."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        with contextlib.suppress(Exception):
            leader = leader_of(chaos, topic, partition)
            if leader is not None and leader != old:
                return leader, time.monotonic() - began
        time.sleep(0.25)
    return None, time.monotonic() - began


async def short_of_isr(bootstrap: str) -> int:
    """Partitions (of every topic) whose in-sync replicas are fewer than their replicas."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        topics = await admin.describe_topics()
    finally:
        await admin.close()
    return sum(
        1
        for topic in topics
        for partition in topic["partitions"]
        if len(partition["isr"]) < len(partition["replicas"])
    )


def wait_full_isr(chaos: Chaos, since: float, timeout: float = 120.0) -> None:
    """Note when every partition has all its replicas in sync again (the node caught up)."""
    deadline = time.monotonic() + timeout
    short = -1
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            short = asyncio.run(short_of_isr(chaos.cluster.bootstrap))
            if short == 0:
                chaos.note(
                    f"every partition's ISR full again {time.monotonic() - since:.1f}s "
                    "after the restart"
                )
                return
        time.sleep(0.5)
    chaos.note(f"{short} partitions still short of their ISR {timeout:.0f}s after the restart")


def kill_leader(chaos: Chaos, down_for: float) -> None:
    """(a) SIGKILL the node leading booking-events[0] (no controlled shutdown: its
    partitions keep that leader until the controller fences the node, on a missed
    session or its next start), restart it `down_for` seconds later. A watcher notes
    when another node leads the partition, while the node starts again."""
    topic, partition = EVENTS_PARTITION
    victim = leader_of(chaos, topic, partition)
    if victim is None:
        chaos.note(f"{topic}[{partition}] has no leader: no node killed")
        return
    node = chaos.cluster.node(victim)
    pid = node.process.pid if node.process else "?"
    node.kill()
    killed = time.monotonic()
    chaos.note(f"SIGKILL Kafka node {victim} (pid {pid}), leader of {topic}[{partition}]")

    def watch_leader() -> None:
        leader, took = wait_new_leader(chaos, topic, partition, victim, timeout=90.0)
        chaos.note(
            f"{topic}[{partition}] led by node {leader} {took:.1f}s after the kill"
            if leader is not None
            else f"{topic}[{partition}] still led by node {victim} {took:.0f}s after the kill"
        )

    watcher = threading.Thread(target=watch_leader, daemon=True, name="leader watch")
    watcher.start()
    time.sleep(max(0.0, killed + down_for - time.monotonic()))
    starting = time.monotonic()
    chaos.cluster.start_node(victim)
    back = time.monotonic()
    chaos.note(
        f"Kafka node {victim} restarted: back in the cluster {back - killed:.1f}s after the "
        f"kill (its start took {back - starting:.1f}s)"
    )
    watcher.join(95.0)
    wait_full_isr(chaos, back)


def stop_broker(chaos: Chaos, down_for: float) -> None:
    """(b) SIGTERM (a controlled shutdown: its partitions' leadership moves first) the
    node leading the bookings changelog's partition 0, start it `down_for` s later."""
    topic, partition = CHANGELOG_PARTITION
    victim = leader_of(chaos, topic, partition) or chaos.cluster.nodes[-1].node_id
    began = time.monotonic()
    chaos.cluster.node(victim).stop()
    chaos.note(
        f"SIGTERM Kafka node {victim} (leader of {topic}[{partition}]): stopped after "
        f"{time.monotonic() - began:.1f}s of controlled shutdown; "
        f"{topic}[{partition}] now led by node {leader_of(chaos, topic, partition)}"
    )
    time.sleep(max(0.0, began + down_for - time.monotonic()))
    starting = time.monotonic()
    chaos.cluster.start_node(victim)
    back = time.monotonic()
    chaos.note(
        f"Kafka node {victim} started again: back in the cluster {back - began:.1f}s after "
        f"the SIGTERM (its start took {back - starting:.1f}s)"
    )
    wait_full_isr(chaos, back)


def lock_rows(chaos: Chaos, fault: str, probability: float) -> None:
    org, site = chaos.site(fault)
    site.set_faults(unable_to_lock_row={"probability": probability}, seed=chaos.args.seed)
    chaos.note(f"UNABLE_TO_LOCK_ROW on {probability:.0%} of written records{chaos.where(org)}")


def clear_faults(chaos: Chaos) -> None:
    for site in chaos.sites.values():
        site.replace_faults({})
    chaos.note("faults cleared" + (" in every org" if len(chaos.sites) > 1 else ""))


def expire(chaos: Chaos) -> None:
    org, site = chaos.site("expire-tokens")
    chaos.note(f"expired {site.expire_tokens()} Salesforce tokens{chaos.where(org)}")


def limit(chaos: Chaos) -> None:
    org, site = chaos.site("limit")
    site.set_faults(request_limit_exceeded={"next": 1, "only": ["collections_upsert"]})
    chaos.note(f"REQUEST_LIMIT_EXCEEDED for the next upsert{chaos.where(org)}")


def down(chaos: Chaos, fault: str, seconds: float, mode: str) -> None:
    org, site = chaos.site(fault)
    site.down(seconds, mode)
    chaos.note(f"Salesforce down for {seconds:.0f}s ({mode}){chaos.where(org)}")


def at_first_quiet(
    chaos: Chaos,
    expected: dict[str, dict[str, dict[str, Any]]],
    quiet: float,
    limit_s: float,
) -> dict[str, verification.Comparison]:
    """Every org against the fold at the first moment Salesforce (all its orgs) has seen
    no API call and no write for `quiet` seconds (waiting at most `limit_s`): what an
    operator would take for "done". Not later: a run that needs the reconcile timer to
    repair it fails."""
    deadline = time.monotonic() + limit_s
    last: tuple[int, int] | None = None
    since = time.monotonic()
    while time.monotonic() < deadline:
        sites = chaos.sites.values()
        now = (sum(s.total_api_calls() for s in sites), sum(len(s.writes()) for s in sites))
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
        time.sleep(0.5)
    else:
        chaos.note(f"Salesforce never quiet for {quiet:.0f}s within {limit_s:.0f}s")
    comparisons = {
        org: verification.compare_salesforce(site.records(), expected.get(org, {}))
        for org, site in chaos.sites.items()
    }
    differences = sum(len(c.details) for c in comparisons.values())
    chaos.note(
        f"Salesforce quiet for {quiet:.0f}s: "
        + (f"{differences} differences" if differences else "matches the fold")
        + (f" in {len(comparisons)} orgs" if len(comparisons) > 1 else "")
    )
    return comparisons


def wrong_bookings(comparisons: dict[str, verification.Comparison]) -> list[str]:
    """The bookings any org has wrong, each once, in the order found."""
    wrong: dict[str, None] = {}
    for c in comparisons.values():
        wrong.update(dict.fromkeys(c.lost + c.stale + c.duplicate + c.unexpected))
    return list(wrong)


def regressions(writes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Writes that took an Event's Projection_Version__c down (the fence forbids it)."""
    return [
        w
        for w in writes
        if w["outcome"] == "written"
        and w["old"] is not None
        and w["new"] is not None
        and w["new"] < w["old"]
    ]


def verdict(
    chaos: Chaos,
    args: argparse.Namespace,
    events: list[h.Event],
    expected: dict[str, dict[str, dict[str, Any]]],
    comparisons: dict[str, verification.Comparison],
    writes: dict[str, list[dict[str, Any]]],
    dlq: list[Any],
    bad: list[tuple[str, Record]],
    moved: set[str],
) -> int:
    in_dlq = Counter((record.key, record.value) for record in dlq)
    found = 0
    missing: list[str] = []
    codes: Counter[str] = Counter()
    for kind, (key, value) in bad:
        if in_dlq[(key, value)] > 0:
            in_dlq[(key, value)] -= 1
            found += 1
        else:
            missing.append(kind)
    for record in dlq:
        codes[read_headers(record.headers).get("code", "?")] += 1
    extra = sum(in_dlq.values())
    several = len(comparisons) > 1
    backwards = {org: regressions(log_of) for org, log_of in writes.items()}
    regressed = sum(map(len, backwards.values()))
    counts = {
        kind: sum(len(getattr(c, kind)) for c in comparisons.values())
        for kind in ("lost", "stale", "duplicate", "unexpected")
    }
    ok = (
        all(c.ok for c in comparisons.values())
        and found == len(bad)
        and not regressed
        and not chaos.dead
    )
    for org, log_of in writes.items():
        where = chaos.where(org)
        for write in backwards[org][:20]:
            log(f"regression{where}: {write}")
        refused = sum(1 for w in log_of if w["outcome"] == "refused")
        log(f"write log{where}: {len(log_of)} writes, {refused} refused by the version fence")
    if several:
        for org, c in comparisons.items():
            log(
                f"org {org}: {len(expected.get(org, {}))} Events expected, lost={len(c.lost)} "
                f"stale={len(c.stale)} duplicate={len(c.duplicate)} "
                f"unexpected={len(c.unexpected)} regressions={len(backwards[org])}"
            )
    if not ok:
        for org, c in comparisons.items():
            for line in c.details[:50]:
                log(f"difference{chaos.where(org)}: {line}")
        if missing:
            log(f"malformed records missing from the DLQ, by kind: {Counter(missing)}")
        investigate(chaos, events, wrong_bookings(comparisons))
    log(f"DLQ codes: {dict(codes)}; records not from the malformed set: {extra}")
    log("timeline:\n  " + "\n  ".join(chaos.timeline))
    print(
        f"chaos: {args.bookings} bookings"
        + (f" in {len(comparisons)} orgs ({len(moved)} moved across them)" if several else "")
        + f", lost={counts['lost']} stale={counts['stale']} duplicate={counts['duplicate']} "
        f"regressions={regressed} dlq={found}/{len(bad)}"
        + (f" unexpected={counts['unexpected']}" if counts["unexpected"] else "")
        + (f" exited={','.join(chaos.dead)}" if chaos.dead else "")
    )
    return 0 if ok else 1


DUMPED_TOPICS = (
    h.EVENTS_TOPIC,
    h.PROJECTIONS_TOPIC,
    f"{h.APP_GROUP}-bookings-changelog",
    f"{h.APP_GROUP}-synced-changelog",
)


def _summary(topic: str, value: bytes | None) -> str:
    """A short description of one record of a dumped topic."""
    try:
        body: Any = orjson.loads(value or b"null")
    except orjson.JSONDecodeError:
        return repr((value or b"")[:80])
    if not isinstance(body, dict):
        return repr(body)[:80]
    if topic == h.EVENTS_TOPIC:
        return f"{body.get('type')} seq={body.get('sequence')} id={body.get('id')}"
    if topic == h.PROJECTIONS_TOPIC:
        fields = body.get("fields") or {}
        left = [gone.get("salesforce_org") or DEFAULT_ORG for gone in body.get("departures", [])]
        return (
            f"projection v={body.get('version')} status={fields.get('Event_Status__c')}"
            + (f" org={body['salesforce_org']}" if body.get("salesforce_org") else "")
            + (f" left={','.join(left)}" if left else "")
        )
    if "events" in body:
        return f"state v={body.get('version')} events={len(body['events'])}"
    return repr(body)[:120]


def dump_topics(broker: AnyBroker, work: Path, wrong: list[str]) -> dict[str, list[str]]:
    """Every record of the wrong bookings in the app's topics, for the post-mortem."""
    lines: dict[str, list[str]] = {booking: [] for booking in wrong}
    for topic in DUMPED_TOPICS:
        records = asyncio.run(read_topic(broker, topic))
        for record in records:
            booking = (record.key or b"").decode("utf-8", "replace").strip('"')
            if booking in lines:
                stamp = time.strftime("%H:%M:%S", time.localtime(record.timestamp / 1000))
                millis = record.timestamp % 1000
                lines[booking].append(
                    f"{stamp}.{millis:03d} {topic}[{record.partition}]@{record.offset} "
                    f"{_summary(topic, record.value)}"
                )
    with open(work / "wrong-bookings.txt", "w") as out:
        for booking, entries in sorted(lines.items()):
            out.write(f"--- {booking}\n" + "\n".join(sorted(entries)) + "\n")
    return lines


async def missing_from_topic(broker: AnyBroker, sent: list[Record]) -> int:
    """Records the producer sent that booking-events does not hold: a loss before the
    app (the producer's), not the app's."""
    held = Counter((r.key, r.value) for r in await read_topic(broker, h.EVENTS_TOPIC))
    missing = 0
    for record in sent:
        if held[record] > 0:
            held[record] -= 1
        else:
            missing += 1
    return missing


def investigate(chaos: Chaos, events: list[h.Event], wrong: list[str]) -> None:
    """For a few wrong bookings: their events, topic records, and worker log lines."""
    for booking in wrong[:5]:
        mine = [e for e in events if e["subject"] == booking]
        log(f"--- {booking}: {len(mine)} events")
        for event in mine:
            page = (event.get("data") or {}).get("page") or {}
            org = f" org={page.get('salesforce_org') or DEFAULT_ORG}" if page else ""
            log(
                f"    seq={event['sequence']} {event['type']} id={event['id']} "
                f"at {event['time']}{org}"
            )
        for line in sorted(chaos.dumps.get(booking, [])):
            log(f"    {line}")
        for name, worker in chaos.workers.items():
            for line in worker.log_text().splitlines():
                if booking in line:
                    log(f"    {name}: {line[:300]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bookings", type=int, default=2_500)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--orgs",
        type=int,
        choices=(1, 2, 3),
        default=3,
        help="Salesforce orgs: the default one and up to two registered ones (1: the "
        "default org alone, as before orgs existed)",
    )
    parser.add_argument(
        "--brokers",
        type=int,
        choices=(1, 3),
        default=3,
        help="Kafka nodes: 3 (replication factor 3, min ISR 2, the broker faults) or 1 "
        "(quicker; no broker faults)",
    )
    parser.add_argument("--duration", type=float, default=90.0, help="seconds of traffic")
    parser.add_argument("--malformed-rate", type=float, default=0.01)
    parser.add_argument(
        "--limit-pause", type=float, default=60.0, help="sink_limit_pause, s (production: 60)"
    )
    parser.add_argument(
        "--quiet", type=float, default=20.0, help="judge when Salesforce is quiet this long, s"
    )
    parser.add_argument(
        "--settle", type=float, default=240.0, help="max wait for that quiet moment, s"
    )
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
