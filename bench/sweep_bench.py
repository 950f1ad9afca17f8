"""A timer's sweep with 1 % of the bookings due, against the full sweep it replaced:
`make bench-sweep` (also run by `make bench-scale` at its largest stage).

Both sweeps read the same RocksDB stores in this process (rocksdict, as Faust's
`rocksdb://` does), so their ratio holds however busy the machine is:

- full (before issue 14): copy every (booking, state) pair of `bookings`, load each
  state and test `view.completion_due`; for reconcile, read every booking's version and
  its `synced` value. That is what the completion and reconcile timers did on every
  sweep.
- due (now, streams/worker/due_table.py): read the `due` store from the kind's first
  key up to `slice_end(kind, until)`; for each completion entry load its booking, for
  each reconcile entry read `synced` (and the booking only if that does not settle it).

The workload: `--bookings` generated bookings folded by the core; `until` is set so
that `--due-percent` of them are due for completion, and the same share has a reconcile
entry in the reconcile slice. The bench checks that both sweeps find the same bookings.
Prints the CPU seconds of each (best of `--repeat`) and the ratio; writes
bench/sweep.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import orjson
import rocksdict

from bench import harness as h
from schemas import parse_event
from streams.commands.generate import generate_events
from streams.core.due_index import (
    entry_key,
    entry_value,
    epoch_ms,
    parse_key,
    parse_value,
    settled,
    slice_end,
    slice_start,
    standing_entries,
)
from streams.core.fold import BookingState, fold

RESULTS = Path(__file__).with_name("sweep.json")
T = TypeVar("T")
GRACE = timedelta(minutes=15)  # completion_grace's default is irrelevant: both use this


class Stores:
    """`bookings`, `synced` and `due` of one partition, as RocksDB stores."""

    def __init__(self, directory: Path) -> None:
        # raw_mode: keys and values are bytes, as in Faust's stores (Any: rocksdict's
        # stubs type them as any value it can encode).
        options = rocksdict.Options(raw_mode=True)
        self.bookings: Any = rocksdict.Rdict(str(directory / "bookings"), options)
        self.synced: Any = rocksdict.Rdict(str(directory / "synced"), options)
        self.due: Any = rocksdict.Rdict(str(directory / "due"), options)

    def close(self) -> None:
        for db in (self.bookings, self.synced, self.due):
            db.close()


def load(stores: Stores, bookings: int, seed: int, due_share: float) -> tuple[int, int]:
    """Fold the generated bookings into the stores; return (until_ms, reconcile_from_ms):
    the completion slice's end that makes `due_share` of the bookings due, and the start
    of the reconcile entries written for the same share."""
    states: dict[str, BookingState] = {}
    for event in generate_events(bookings, seed):
        parsed = parse_event(orjson.dumps(event), event["subject"].encode())
        states[parsed.subject] = fold(states.get(parsed.subject), parsed).state
    completion_at: list[int] = []
    for booking, state in states.items():
        key = booking.encode()
        stores.bookings[key] = state.to_bytes()
        stores.synced[key] = b"%d" % state.version  # in step: nothing to resend
        for entry in standing_entries(state):
            stores.due[entry] = entry_value(0)
            if entry.startswith(slice_start("completion")):
                completion_at.append(parse_key(entry).at_ms)
    completion_at.sort()
    due = int(len(states) * due_share)
    if due > len(completion_at):
        raise SystemExit(f"only {len(completion_at)} completion entries for {due} due")
    until_ms = completion_at[due - 1]
    # Reconcile: the same share of bookings changed "recently", one entry each.
    recent_ms = 10**12
    for changed in random.Random(seed).sample(sorted(states), due):
        version = states[changed].version
        stores.due[entry_key("reconcile", recent_ms, changed.encode())] = entry_value(
            0, version=version
        )
    return until_ms, recent_ms


def full_completion(stores: Stores, now: datetime) -> set[bytes]:
    found = set()
    for key, raw in list(stores.bookings.items()):  # the old sweep copied the table first
        state = BookingState.from_bytes(raw)
        if not state.full and state.view.completion_due(now, GRACE):
            found.add(key)
    return found


def due_completion(stores: Stores, now: datetime) -> set[bytes]:
    found = set()
    end = slice_end("completion", epoch_ms(now - GRACE))
    for key, _ in stores.due.items(from_key=slice_start("completion")):
        if key >= end:
            break
        booking = parse_key(key).booking
        state = BookingState.from_bytes(stores.bookings[booking])
        if key in standing_entries(state) and state.view.completion_due(now, GRACE):
            found.add(booking)
    return found


def behind(stores: Stores, booking: bytes, raw: bytes) -> bool:
    """Whether Salesforce is behind this booking's state (its `synced` is older)."""
    return int(stores.synced.get(booking) or b"0") < BookingState.version_of(raw)


def full_reconcile(stores: Stores) -> int:
    """Every booking's version against its `synced`: how many are behind."""
    return sum(behind(stores, key, raw) for key, raw in list(stores.bookings.items()))


def due_reconcile(stores: Stores, until_ms: int) -> tuple[int, int]:
    """The reconcile slice's bookings against their `synced`, as the worker reads them
    (an entry settled by `synced` needs no read of the booking): (entries read, behind)."""
    read, late = 0, 0
    end = slice_end("reconcile", until_ms)
    for key, raw in stores.due.items(from_key=slice_start("reconcile")):
        if key >= end:
            break
        read += 1
        booking = parse_key(key).booking
        if settled(parse_value(raw), int(stores.synced.get(booking) or b"0")):
            continue
        late += behind(stores, booking, stores.bookings[booking])
    return read, late


def best_cpu(repeat: int, work: Callable[[], T]) -> tuple[float, T]:
    """The least CPU seconds of `repeat` runs of `work`, and its result."""
    best = float("inf")
    for _ in range(repeat):
        began = time.process_time()
        result = work()
        best = min(best, time.process_time() - began)
    return best, result


def measure(bookings: int, seed: int, due_percent: float, repeat: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as directory:
        stores = Stores(Path(directory))
        try:
            until_ms, recent_ms = load(stores, bookings, seed, due_percent / 100)
            # now - grace lands on the last due booking's end, 1 ms past (ms rounding).
            now = datetime.fromtimestamp(until_ms / 1000, UTC) + GRACE + timedelta(microseconds=1)
            full_c_s, full_found = best_cpu(repeat, lambda: full_completion(stores, now))
            due_c_s, due_found = best_cpu(repeat, lambda: due_completion(stores, now))
            if full_found != due_found:
                raise SystemExit(
                    f"the sweeps disagree: {len(full_found)} due by the full sweep, "
                    f"{len(due_found)} by the due slice"
                )
            full_r_s, full_late = best_cpu(repeat, lambda: full_reconcile(stores))
            due_r_s, (read, due_late) = best_cpu(repeat, lambda: due_reconcile(stores, recent_ms))
            if full_late != 0 or due_late != 0:
                raise SystemExit("Salesforce is in step in this workload: nothing is behind")
        finally:
            stores.close()
    return {
        "bookings": bookings,
        "due_percent": due_percent,
        "completion_due": len(full_found),
        "completion_full_cpu_s": round(full_c_s, 4),
        "completion_due_cpu_s": round(due_c_s, 4),
        "completion_ratio": round(due_c_s / full_c_s, 4),
        "reconcile_entries_read": read,
        "reconcile_full_cpu_s": round(full_r_s, 4),
        "reconcile_due_cpu_s": round(due_r_s, 4),
        "reconcile_ratio": round(due_r_s / full_r_s, 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bookings", type=int, default=200_000)
    parser.add_argument("--due-percent", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = {
        "machine": h.machine(),
        **measure(args.bookings, args.seed, args.due_percent, args.repeat),
    }
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{result['bookings']:,} bookings, {result['completion_due']:,} due "
        f"({args.due_percent:g} %):\n"
        f"  completion sweep: full {result['completion_full_cpu_s']:.3f} s CPU, "
        f"due slice {result['completion_due_cpu_s']:.4f} s: "
        f"ratio {result['completion_ratio']:.2%}\n"
        f"  reconcile sweep:  full {result['reconcile_full_cpu_s']:.3f} s CPU, "
        f"due slice {result['reconcile_due_cpu_s']:.4f} s "
        f"({result['reconcile_entries_read']:,} entries): "
        f"ratio {result['reconcile_ratio']:.2%}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
