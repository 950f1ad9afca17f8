"""Micro-benchmark of the pure core on one core: `make bench-fold`.

Decodes, validates, folds and projects a realistic mix of events (from
`streams.commands.generate`), as the ingest agent does per message, then measures what
loading and storing a `BookingState` costs (the pipeline does both per table access).
Options: `--bookings N --seed S --repeat R --profile`; `--default-gc` for CPython's GC
thresholds instead of the worker's (the figures use the worker's, as production does).
`--ingest-only RUNS` runs only the ingest loop RUNS times after one warm-up, timing
nothing: the target for py-spy, and for counting instructions under valgrind (run it
with two values; the difference over the extra runs' events is the loop's count per
event, which a loaded machine does not change: docs/performance.md).

All messages are decoded up front and held in memory, so the working set grows with
`--bookings`; on small VMs memory speed then dominates (validation alone slows
down ~2x from 5,000 to 20,000 bookings). The default, 5,000 bookings (~13k
events), is the size of a few ingest batches over a warm table.

The "worker path" figure is what the ingest agent really does per batch: each
booking's state loaded from bytes, its events of the batch folded, the state stored
back and projected, over a backfill-like workload (`bench.harness.backfill_workload`:
10 events per booking, spread so that a booking sees ~1-2 events per batch).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import sys
import time
from collections.abc import Callable

import orjson

from schemas import BookingEvent, parse_event
from streams.commands.generate import generate_events
from streams.core.fold import BookingState, fold
from streams.core.projection import project
from streams.worker.process.gc_tuning import tune_gc


def _messages(bookings: int, seed: int) -> list[tuple[bytes, bytes]]:
    return [
        (event["subject"].encode(), orjson.dumps(event))
        for event in generate_events(bookings, seed)
    ]


def _ingest(messages: list[tuple[bytes, bytes]]) -> dict[str, BookingState]:
    states: dict[str, BookingState] = {}
    for key, raw in messages:
        event = parse_event(raw, key)
        result = fold(states.get(event.subject), event)
        if result.changed:
            states[event.subject] = result.state
            project(result.state)
    return states


def _worker_path(batches: list[list[tuple[bytes, bytes]]]) -> dict[bytes, bytes]:
    """As `streams.worker.pipeline.ingest.fold_batch` does, minus Kafka: the table holds
    state bytes."""
    table: dict[bytes, bytes] = {}
    for batch in batches:
        by_booking: dict[bytes, list[BookingEvent]] = {}
        for key, raw in batch:
            by_booking.setdefault(key, []).append(parse_event(raw, key))
        for key, events in by_booking.items():
            stored = table.get(key)
            state = BookingState.from_bytes(stored) if stored is not None else None
            changed = False
            for event in events:
                result = fold(state, event)
                state = result.state
                changed = changed or result.changed
            assert state is not None
            if changed:
                table[key] = state.to_bytes()
                project(state)
    return table


def _backfill_batches(seed: int, batch_size: int) -> list[list[tuple[bytes, bytes]]]:
    from bench.harness import backfill_workload  # imports Kafka clients: only when used

    events = backfill_workload(2_000, 20_000, seed, spread=200)
    messages = [(str(event["subject"]).encode(), orjson.dumps(event)) for event in events]
    return [messages[i : i + batch_size] for i in range(0, len(messages), batch_size)]


def _profile(work: Callable[[], object]) -> None:
    profiler = cProfile.Profile()
    profiler.runcall(work)
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(25)


def _best(runs: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        began = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - began)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bookings", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="cProfile one ingest run")
    parser.add_argument(
        "--profile-worker", action="store_true", help="cProfile one worker-path run"
    )
    parser.add_argument("--batch", type=int, default=200, help="worker path: events per batch")
    parser.add_argument(
        "--default-gc",
        action="store_true",
        help="CPython's GC thresholds, not the worker's (streams/worker/process/gc_tuning.py)",
    )
    parser.add_argument(
        "--ingest-only",
        type=int,
        metavar="RUNS",
        help="only the ingest loop, RUNS times after a warm-up (for py-spy or valgrind)",
    )
    args = parser.parse_args(argv)
    # The worker runs with these thresholds (`boot()`); without them a full collection
    # walks every held message and state, and decode+validate alone measured ~2x slower.
    if not args.default_gc:
        tune_gc()

    messages = _messages(args.bookings, args.seed)
    states = _ingest(messages)  # warm-up; also the states for the storage figures
    if args.ingest_only is not None:
        for _ in range(args.ingest_only):
            _ingest(messages)
        print(f"ingest loop: {len(messages):,} events, {args.ingest_only} runs after a warm-up")
        return
    batches = _backfill_batches(args.seed, args.batch)
    backfill_events = sum(map(len, batches))
    table = _worker_path(batches)
    if args.profile:
        _profile(lambda: _ingest(messages))
    if args.profile_worker:
        _profile(lambda: _worker_path(batches))

    seconds = _best(args.repeat, lambda: _ingest(messages))
    # The floor under the figure above: pydantic's decode+validate alone.
    parse_s = _best(args.repeat, lambda: [parse_event(raw, key) for key, raw in messages])
    stored = [state.to_bytes() for state in states.values()]
    events_per_state = sum(len(state.events) for state in states.values()) / len(states)
    dump_s = _best(args.repeat, lambda: [state.to_bytes() for state in states.values()])
    load_s = _best(args.repeat, lambda: [BookingState.from_bytes(raw) for raw in stored])
    view_s = _best(args.repeat, lambda: [BookingState.from_bytes(raw).view for raw in stored])
    mean_bytes = sum(map(len, stored)) / len(stored)
    worker_s = _best(args.repeat, lambda: _worker_path(batches))

    print(
        f"events: {len(messages):,} over {len(states):,} bookings (seed {args.seed}); "
        f"GC thresholds {gc.get_threshold()}"
    )
    print(
        f"decode+validate+fold+project: {len(messages) / seconds:,.0f} events/s "
        f"({seconds / len(messages) * 1e6:.1f} µs/event, one core)"
    )
    print(
        f"  of which decode+validate alone: {len(messages) / parse_s:,.0f} events/s "
        f"({parse_s / len(messages) * 1e6:.1f} µs/event)"
    )
    print(f"state: {events_per_state:.1f} events, {mean_bytes:,.0f} bytes on average")
    print(f"BookingState.to_bytes:   {dump_s / len(states) * 1e6:.1f} µs/state")
    print(f"BookingState.from_bytes: {load_s / len(states) * 1e6:.1f} µs/state")
    print(f"from_bytes + view:       {view_s / len(states) * 1e6:.1f} µs/state")
    print(
        f"worker path (state through bytes, batches of {args.batch}): "
        f"{backfill_events / worker_s:,.0f} events/s "
        f"({worker_s / backfill_events * 1e6:.1f} µs/event; {backfill_events:,} events "
        f"over {len(table):,} bookings)"
    )


if __name__ == "__main__":
    main()
