"""Fault injection over the whole pipeline: `make chaos`.

Two worker processes with production settings (the 60 s limit pause, the attempt
deadline, backoff cap and reconcile interval of `Settings`, the broker profile's own
session timeout, RocksDB; only the completion timer is off, so the fold of what was
sent is the expected state) on the embedded broker and the Salesforce emulator, whose
version fence comes from salesforce/ (devkit/salesforce_emulator/metadata.py). While a
producer sends the lifecycles of `--bookings` bookings at a steady pace (with 1 %
malformed records of every kind the contract names), a script of faults runs:

  UNABLE_TO_LOCK_ROW on 20 % of written records, a worker SIGKILLed and restarted,
  every Salesforce token expired, REQUEST_LIMIT_EXCEEDED (one sink pauses 60 s) and
  the other worker restarted (SIGTERM) during that pause, Salesforce down answering
  503 with a worker SIGKILLed and restarted during it, Salesforce down closing
  connections with the other worker restarted (SIGTERM) during it, then
  UNABLE_TO_LOCK_ROW again.

Two verdicts. (a) At the first moment Salesforce has been quiet for `--quiet` s (no
API call, no write) after the traffic, it must equal the pure fold of every valid
event: no lost, stale or duplicate Events, nothing unexpected; nothing waits for the
reconcile timer. (b) Over the whole run, no Event was ever written with a lower
Projection_Version__c than it had (the emulator's write log). Every malformed record
must be in booking-events.dlq. Prints one line, `chaos: N bookings, lost=0 stale=0
duplicate=0 regressions=0 dlq=M/M`, details of anything wrong on stderr, and exits 1
if anything is off.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench import harness as h
from devkit import verification
from devkit.broker import EmbeddedBroker
from devkit.salesforce_emulator.process import SalesforceEmulator
from devkit.topics import Record, event_records, produce, read_topic
from devkit.workers import NO_COMPLETION_GRACE, WorkerProcess
from streams.commands.generate import generate_events
from streams.worker.dead_letter import read_headers

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
    bookings: int, seed: int, malformed_rate: float
) -> tuple[list[h.Event], list[Record], list[tuple[str, Record]]]:
    """Valid events, the records to send (valid and malformed mixed), the malformed ones."""
    rng = random.Random(seed)
    events = list(generate_events(bookings, seed))
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
    return events, mixed, bad


class Producer(threading.Thread):
    """Sends the records at a steady pace in the background."""

    def __init__(self, broker: EmbeddedBroker, records: list[Record], rate: float) -> None:
        super().__init__(daemon=True, name="producer")
        self.broker, self.records, self.rate = broker, records, rate
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


class Chaos:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.workers: dict[str, WorkerProcess] = {}
        self.timeline: list[str] = []
        self.began = time.monotonic()
        self.dumps: dict[str, list[str]] = {}

    def note(self, what: str) -> None:
        line = f"t={time.monotonic() - self.began:5.1f}s {what}"
        self.timeline.append(line)
        log(line)


def run(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="chaos-"))
    log(f"seed {args.seed}; work dir {work} (worker logs, emulator data)")
    events, mixed, bad = build_traffic(args.bookings, args.seed, args.malformed_rate)
    expected = verification.expected_events(events)
    rate = len(mixed) / args.duration
    log(
        f"{args.bookings} bookings: {len(events)} valid events, {len(bad)} malformed, "
        f"{len(expected)} Events expected; sending at {rate:.0f}/s for {args.duration:.0f}s"
    )
    emulator = SalesforceEmulator(work / "salesforce")
    chaos = Chaos(args, work)
    # Production defaults: no test preset; the completion timer off (see the docstring).
    production = {"completion_grace": NO_COMPLETION_GRACE}
    settings = {"sink_limit_pause": str(args.limit_pause)}
    try:
        with EmbeddedBroker(log_path=work / "broker.log") as broker:
            asyncio.run(h.create_topics(broker.bootstrap, [h.EVENTS_TOPIC]))
            for name in ("worker-1", "worker-2"):
                chaos.workers[name] = h.start_worker(
                    broker, emulator, work, name, production, **settings
                )
            for worker in chaos.workers.values():
                h.wait_until(functools.partial(h.worker_ready, worker), 90, "a worker to be ready")
            chaos.began = time.monotonic()
            chaos.note("workers ready; traffic starts")
            producer = Producer(broker, mixed, rate)
            producer.start()
            script(chaos, emulator, args.duration)
            producer.join()
            if producer.error is not None:
                raise RuntimeError(f"producer failed: {producer.error!r}")
            chaos.note(f"traffic done: {producer.sent} records sent")
            emulator.replace_faults({})
            comparison = at_first_quiet(chaos, emulator, expected, args.quiet, args.settle)
            writes = emulator.writes()
            dlq = asyncio.run(read_topic(broker, h.EVENTS_DLQ_TOPIC))
            for worker in chaos.workers.values():
                worker.stop()
            if not comparison.ok:
                chaos.dumps = dump_topics(broker, work, comparison)
    finally:
        emulator.close()
    return verdict(chaos, args, events, expected, comparison, writes, dlq, bad)


def script(chaos: Chaos, emulator: SalesforceEmulator, duration: float) -> None:
    """The faults, at fixed fractions of the traffic's duration."""

    def at(fraction: float) -> None:
        wait = chaos.began + fraction * duration - time.monotonic()
        if wait > 0:
            time.sleep(wait)

    def kill_and_restart(name: str, down_for: float) -> None:
        worker = chaos.workers[name]
        worker.kill()
        chaos.note(f"SIGKILL {name} (pid {worker.process.pid if worker.process else '?'})")
        time.sleep(down_for)
        worker.start()
        chaos.note(f"restarted {name}")

    def stop_and_restart(name: str) -> None:
        worker = chaos.workers[name]
        worker.stop()
        chaos.note(f"SIGTERM {name}: stopped")
        worker.start()
        chaos.note(f"restarted {name}")

    def restart_during_limit_pause() -> None:
        limit(chaos, emulator)
        logs = {name: len(w.log_text()) for name, w in chaos.workers.items()}

        def paused() -> str | None:
            for name, worker in chaos.workers.items():
                if "API limit reached" in worker.log_text()[logs[name] :]:
                    return name
            return None

        deadline = time.monotonic() + 15
        while paused() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        name = paused()
        if name is None:
            chaos.note("no sink hit the limit within 15 s: restarting worker-2 anyway")
            name = "worker-1"
        else:
            chaos.note(f"{name}'s sink is in its {chaos.args.limit_pause:.0f} s limit pause")
        stop_and_restart("worker-2" if name == "worker-1" else "worker-1")

    steps: list[tuple[float, Callable[[], None]]] = [
        (0.05, lambda: lock_rows(chaos, emulator, 0.2)),
        (0.15, lambda: kill_and_restart("worker-2", 4.0)),
        (0.25, lambda: clear_faults(chaos, emulator)),
        (0.28, lambda: expire(chaos, emulator)),
        (0.30, restart_during_limit_pause),
        (0.45, lambda: down(chaos, emulator, 20.0, "503")),
        (0.50, lambda: kill_and_restart("worker-1", 3.0)),
        (0.70, lambda: down(chaos, emulator, 15.0, "close")),
        (0.74, lambda: stop_and_restart("worker-2")),
        (0.85, lambda: lock_rows(chaos, emulator, 0.2)),
        (0.95, lambda: clear_faults(chaos, emulator)),
    ]
    for fraction, step in steps:
        at(fraction)
        step()


def lock_rows(chaos: Chaos, emulator: SalesforceEmulator, probability: float) -> None:
    emulator.set_faults(unable_to_lock_row={"probability": probability}, seed=chaos.args.seed)
    chaos.note(f"UNABLE_TO_LOCK_ROW on {probability:.0%} of written records")


def clear_faults(chaos: Chaos, emulator: SalesforceEmulator) -> None:
    emulator.replace_faults({})
    chaos.note("faults cleared")


def expire(chaos: Chaos, emulator: SalesforceEmulator) -> None:
    chaos.note(f"expired {emulator.expire_tokens()} Salesforce tokens")


def limit(chaos: Chaos, emulator: SalesforceEmulator) -> None:
    emulator.set_faults(request_limit_exceeded={"next": 1, "only": ["collections_upsert"]})
    chaos.note("REQUEST_LIMIT_EXCEEDED for the next upsert")


def down(chaos: Chaos, emulator: SalesforceEmulator, seconds: float, mode: str) -> None:
    emulator.down(seconds, mode)
    chaos.note(f"Salesforce down for {seconds:.0f}s ({mode})")


def at_first_quiet(
    chaos: Chaos,
    emulator: SalesforceEmulator,
    expected: dict[str, dict[str, Any]],
    quiet: float,
    limit_s: float,
) -> verification.Comparison:
    """Salesforce against the fold at the first moment it has seen no API call and no
    write for `quiet` seconds (waiting at most `limit_s`): what an operator would take
    for "done". Not later: a run that needs the reconcile timer to repair it fails."""
    deadline = time.monotonic() + limit_s
    last: tuple[int, int] | None = None
    since = time.monotonic()
    while time.monotonic() < deadline:
        now = (emulator.total_api_calls(), len(emulator.writes()))
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
        time.sleep(0.5)
    else:
        chaos.note(f"Salesforce never quiet for {quiet:.0f}s within {limit_s:.0f}s")
    comparison = verification.compare_salesforce(emulator.records(), expected)
    chaos.note(
        f"Salesforce quiet for {quiet:.0f}s: "
        + ("matches the fold" if comparison.ok else f"{len(comparison.details)} differences")
    )
    return comparison


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
    expected: dict[str, dict[str, Any]],
    comparison: verification.Comparison,
    writes: list[dict[str, Any]],
    dlq: list[Any],
    bad: list[tuple[str, Record]],
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
    backwards = regressions(writes)
    ok = comparison.ok and found == len(bad) and not backwards
    for write in backwards[:20]:
        log(f"regression: {write}")
    refused = sum(1 for w in writes if w["outcome"] == "refused")
    log(f"write log: {len(writes)} writes, {refused} refused by the version fence")
    if not ok:
        for line in comparison.details[:50]:
            log(f"difference: {line}")
        if missing:
            log(f"malformed records missing from the DLQ, by kind: {Counter(missing)}")
        investigate(chaos, events, comparison)
    log(f"DLQ codes: {dict(codes)}; records not from the malformed set: {extra}")
    log("timeline:\n  " + "\n  ".join(chaos.timeline))
    print(
        f"chaos: {args.bookings} bookings, lost={len(comparison.lost)} "
        f"stale={len(comparison.stale)} duplicate={len(comparison.duplicate)} "
        f"regressions={len(backwards)} dlq={found}/{len(bad)}"
        + (f" unexpected={len(comparison.unexpected)}" if comparison.unexpected else "")
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
        return f"projection v={body.get('version')} status={fields.get('Event_Status__c')}"
    if "events" in body:
        return f"state v={body.get('version')} events={len(body['events'])}"
    return repr(body)[:120]


def dump_topics(
    broker: EmbeddedBroker, work: Path, comparison: verification.Comparison
) -> dict[str, list[str]]:
    """Every record of the wrong bookings in the app's topics, for the post-mortem."""
    wrong = set(comparison.lost + comparison.stale + comparison.duplicate + comparison.unexpected)
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


def investigate(chaos: Chaos, events: list[h.Event], comparison: verification.Comparison) -> None:
    """For a few wrong bookings: their events, topic records, and worker log lines."""
    wrong = (comparison.lost + comparison.stale + comparison.duplicate + comparison.unexpected)[:5]
    for booking in wrong:
        mine = [e for e in events if e["subject"] == booking]
        log(f"--- {booking}: {len(mine)} events")
        for event in mine:
            log(f"    seq={event['sequence']} {event['type']} id={event['id']} at {event['time']}")
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
