"""Process set-up for a worker (and any `activity-sync` command): `boot(settings)`.

Guarantees, once `boot` has returned:
- `rocksdb://` opens the budgeted store of streams/worker/process/rocksdb_store.py (one memory
  budget per process, `ACTIVITY_SYNC_ROCKSDB_MEMORY_MB`);
- glibc lets threads share at most `ACTIVITY_SYNC_MALLOC_ARENA_MAX` arenas
  (streams/worker/process/allocator.py; a no-op elsewhere than glibc);
- the collector runs with the worker's thresholds (streams/worker/process/gc_tuning.py);
- the log filters (streams/worker/process/log_filters.py) are on the loggers of streams, Faust,
  mode and aiokafka.

Importing the app (streams/worker/app.py) does none of this: `streams.cli.main` calls
`boot` before the worker's checks and before Faust starts, so the arena cap is set
before RocksDB's and Faust's threads exist. Calling it twice is harmless.
"""

from __future__ import annotations

from streams.worker.process import allocator, gc_tuning, log_filters, rocksdb_store
from streams.worker.settings import Settings


def boot(settings: Settings) -> None:
    """Set up this process for the app built from `settings` (see the module's list)."""
    rocksdb_store.install()
    allocator.limit_arenas(settings.process.malloc_arena_max)
    gc_tuning.tune_gc()
    log_filters.install()
