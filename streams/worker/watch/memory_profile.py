"""Where a worker's resident set goes: a heap report (docs/performance.md, "Scale").

`GET /debug/memory/` answers loopback clients only (whatever the token) with one report;
with `ACTIVITY_SYNC_MEMORY_PROFILE_FRAMES=N` (N > 0) the worker also traces Python
allocations with `tracemalloc` (N frames each) from the moment it starts, and the
report names the top allocation sites:

- `process`: RSS and its high-water mark (`/proc/self/status`);
- `malloc`: glibc's arena figures (`mallinfo2`): in use, free but kept, mmapped;
- `pymalloc`: CPython's small-object arenas (1 MiB each, outside glibc's heap): held,
  in use, free;
- `tracemalloc`: Python memory traced, tracemalloc's own overhead, the top allocation
  sites by size (by line, by file, and by stack);
- `rocksdb`: per table, its stores' memtables, block cache, table readers and the
  entries of Faust's key-to-partition index; the worker's shared cache, if any;
- `python`: live objects the collector tracks, its counts, the sink-progress entries.

Tracing is off by default: it costs CPU on every allocation (a backfill folds about ten
times slower) and memory of its own. `?top=N` sets how many sites each list holds (25).
The bench drives it: `python -m bench.scale_bench --profile [--trace-frames N]`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import linecache
import os
import re
import sys
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

from faust.web import Request, Response, View

from streams.runtime.stores import key_index_entries, partition_dbs
from streams.worker.app import app, settings, sink_progress
from streams.worker.process import rocksdb_store
from streams.worker.process.rocksdb_store import BudgetedOptions
from streams.worker.watch.web import is_loopback

MIB = 1024 * 1024
# RocksDB's own accounting of a store's memory (`Rdict.property_int_value`).
ROCKSDB_PROPERTIES = {
    "memtables_mb": "rocksdb.cur-size-all-mem-tables",
    "block_cache_mb": "rocksdb.block-cache-usage",
    "block_cache_pinned_mb": "rocksdb.block-cache-pinned-usage",
    "table_readers_mb": "rocksdb.estimate-table-readers-mem",
}


def start(frames: int) -> bool:
    """Trace allocations with `frames` frames each (0: off). True when tracing."""
    if frames > 0 and not tracemalloc.is_tracing():
        tracemalloc.start(frames)
    return tracemalloc.is_tracing()


def _mb(n: float) -> float:
    return round(n / MIB, 2)


def process_memory(status: Path = Path("/proc/self/status")) -> dict[str, float]:
    """VmRSS and VmHWM in MB (empty where /proc is missing)."""
    figures: dict[str, float] = {}
    try:
        lines = status.read_text().splitlines()
    except OSError:
        return figures
    for line in lines:
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            figures[f"{key.lower()}_mb"] = round(int(rest.split()[0]) / 1024, 1)
    return figures


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def malloc_memory() -> dict[str, float]:
    """glibc's heap: in use, free but kept by the allocator, mmapped (empty elsewhere)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallinfo2 = libc.mallinfo2
    except (OSError, AttributeError, TypeError):
        return {}
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return {
        "heap_mb": _mb(info.arena),
        "in_use_mb": _mb(info.uordblks),
        "free_kept_mb": _mb(info.fordblks),
        "mmapped_mb": _mb(info.hblkhd),
    }


PYMALLOC_LINES = {
    "arenas": re.compile(r"# arenas allocated current\s*=\s*([\d,]+)"),
    "in_use": re.compile(r"# bytes in allocated blocks\s*=\s*([\d,]+)"),
    "free": re.compile(r"# bytes in available blocks\s*=\s*([\d,]+)"),
}


def pymalloc_memory() -> dict[str, float]:
    """CPython's small-object allocator: arenas held, bytes in use and free in them.

    `sys._debugmallocstats` writes to the C stderr, so fd 2 points at a file meanwhile
    (a log line written at that moment lands in the report's file, not the log)."""
    with tempfile.TemporaryFile() as out:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(out.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read().decode(errors="replace")
    found = {k: p.search(text) for k, p in PYMALLOC_LINES.items()}
    values = {k: int(m.group(1).replace(",", "")) for k, m in found.items() if m}
    if len(values) < len(PYMALLOC_LINES):
        return {}
    return {
        "arenas_mb": _mb(values["arenas"] * MIB),
        "in_use_mb": _mb(values["in_use"]),
        "free_mb": _mb(values["free"]),
    }


def _site(frame: tracemalloc.Frame) -> str:
    line = linecache.getline(frame.filename, frame.lineno).strip()
    return f"{_short(frame.filename)}:{frame.lineno} {line[:80]}"


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/lib/python3", "/work/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def traced_memory(top: int) -> dict[str, Any]:
    """Python memory tracemalloc sees, and its largest allocation sites."""
    if not tracemalloc.is_tracing():
        return {"tracing": False}
    current, peak = tracemalloc.get_traced_memory()
    snapshot = tracemalloc.take_snapshot().filter_traces(
        (tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<unknown>"))
    )
    by_line = [
        {"mb": _mb(s.size), "count": s.count, "site": _site(s.traceback[0])}
        for s in snapshot.statistics("lineno")[:top]
    ]
    by_file = [
        {"mb": _mb(s.size), "count": s.count, "file": _short(s.traceback[0].filename)}
        for s in snapshot.statistics("filename")[:top]
    ]
    by_stack = [
        {
            "mb": _mb(s.size),
            "count": s.count,
            # Innermost frame first, as tracemalloc keeps them.
            "stack": [_site(frame) for frame in s.traceback],
        }
        for s in snapshot.statistics("traceback")[: max(1, top // 2)]
    ]
    return {
        "tracing": True,
        "frames": tracemalloc.get_traceback_limit(),
        "traced_mb": _mb(current),
        "traced_peak_mb": _mb(peak),
        "overhead_mb": _mb(tracemalloc.get_tracemalloc_memory()),
        "by_line": by_line,
        "by_file": by_file,
        "by_stack": by_stack,
    }


def store_memory(store: Any) -> dict[str, float]:
    """One table's RocksDB stores (one per partition held): RocksDB's own figures, MB."""
    dbs = partition_dbs(store)
    if dbs is None:  # memory://: the table is a dict, traced by tracemalloc
        return {"stores": 0, "rows_in_memory": len(store) if hasattr(store, "__len__") else 0}
    properties = dict(ROCKSDB_PROPERTIES)
    if isinstance(getattr(store, "rocksdb_options", None), BudgetedOptions):
        # The worker's shared cache: reported once, by `report` (memtables charged to it).
        del properties["block_cache_mb"], properties["block_cache_pinned_mb"]
    totals = dict.fromkeys(properties, 0.0)
    for db in list(dbs.values()):
        for key, prop in properties.items():
            try:
                totals[key] += db.property_int_value(prop) or 0
            except Exception:  # a store closing under us: skip it
                continue
    figures: dict[str, float] = {key: _mb(value) for key, value in totals.items()}
    figures["stores"] = len(dbs)
    figures["key_index_entries"] = key_index_entries(store)
    figures["key_index_limit"] = getattr(store, "key_index_size", 0)
    return figures


def report(top: int = 25) -> dict[str, Any]:
    """The whole report (see the module's docstring)."""
    tables = {name: store_memory(table.data) for name, table in app.tables.items()}
    shared = {
        f"{budget_mb} MB": {
            "usage_mb": _mb(cache.get_usage()),
            "pinned_mb": _mb(cache.get_pinned_usage()),
            "memtables_charged_mb": _mb(write_buffers.get_usage()),
        }
        for budget_mb, (cache, write_buffers) in rocksdb_store.shared_budgets().items()
    }
    return {
        "process": process_memory(),
        "malloc": malloc_memory(),
        "pymalloc": pymalloc_memory(),
        "tracemalloc": traced_memory(top),
        "rocksdb": tables,
        "rocksdb_shared_cache": shared,
        # Memtables and per-store caches, or the shared cache (memtables charged to it).
        "rocksdb_total_mb": round(
            sum(
                t.get(key, 0.0)
                for t in tables.values()
                for key in ("block_cache_mb", "table_readers_mb")
                + (() if shared else ("memtables_mb",))
            )
            + sum(c["usage_mb"] for c in shared.values()),
            2,
        ),
        "python": {
            "gc_objects": len(gc.get_objects()),
            "gc_counts": gc.get_count(),
            "gc_thresholds": gc.get_threshold(),
            "sink_progress_entries": len(sink_progress),
        },
    }


TRACING = start(settings.process.memory_profile_frames)


@app.page("/debug/memory/")
class MemoryPage(View):
    async def get(self, request: Request) -> Response:
        if not is_loopback(request.remote):  # type: ignore[attr-defined]  # aiohttp's Request
            return self.json({"error": "/debug/memory/ answers loopback clients only"}, status=403)
        top = int(request.query.get("top", "25"))
        return self.json(report(max(1, min(top, 200))))
