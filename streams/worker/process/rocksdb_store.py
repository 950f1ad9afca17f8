"""`rocksdb://` with one memory budget per worker, not per store.

Faust opens one RocksDB store per table and partition held (3 tables x 4 partitions: 12
on a lone worker), each with its own block cache and memtables, so RocksDB's share of
the RSS grows with the partitions a worker holds and the data it has touched. With
`ACTIVITY_SYNC_ROCKSDB_MEMORY_MB` > 0 (the default) every store of the process shares
one LRU block cache of that size, index and filter blocks included, and the memtables
of all stores are charged to the same cache by one write-buffer manager (RocksDB flushes
the largest memtable once they reach half of it): RocksDB's memory stays near that one
figure, whatever the partitions held (docs/performance.md, "Scale").

Faust picks a store class by the URL's scheme (`faust.stores.STORES`); importing this
module and calling `install()` (`boot()` does, streams/worker/process/boot.py) points `rocksdb` at
`Store` below. The budget travels in the table's options
(`StoreSection.rocksdb_options`, key `memory_budget_mb`); 0 keeps Faust's per-store caches.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Set
from functools import partial
from pathlib import Path
from typing import Any

from faust import stores
from faust.stores import rocksdb as faust_rocksdb
from faust.types import TP, CollectionT

BUDGET_OPTION = "memory_budget_mb"
LEVEL0_OPTION = "level0_files"
WAL_OPTION = "wal"
MIB = 1024 * 1024

# One cache and write-buffer manager per budget, for the whole process.
_shared: dict[int, tuple[Any, Any]] = {}


def shared_budget(budget_mb: int) -> tuple[Any, Any]:
    """The process's (block cache, write-buffer manager) for a budget of `budget_mb`."""
    if budget_mb not in _shared:
        import rocksdict

        cache = rocksdict.Cache(budget_mb * MIB)
        write_buffers = rocksdict.WriteBufferManager.new_write_buffer_manager_with_cache(
            budget_mb * MIB // 2, False, cache
        )
        _shared[budget_mb] = (cache, write_buffers)
    return _shared[budget_mb]


def shared_budgets() -> dict[int, tuple[Any, Any]]:
    """The budgets opened so far: budget MB -> (block cache, write-buffer manager)."""
    return dict(_shared)


class StoreOptions(faust_rocksdb.RocksDBOptions):
    """Faust's options, opened so that a store reopened after a restart keeps them.

    rocksdict opens an existing database with its column families' options read back
    from the database's OPTIONS file, and RocksDB cannot write a table factory's bloom
    filter or block cache there: a restarted worker's stores wrote their SST files
    without bloom filters and read through a cache of their own, not the worker's
    budget (docs/performance.md, "Scale"). The default column family is given these
    options again.

    `level0_files` (0: RocksDB's 4) is how many files level 0 gathers before they are
    compacted; writes slow down and stop at 16 and 32 more, as RocksDB's defaults do.
    Without `wal`, writes skip RocksDB's write-ahead log: a crash loses what the
    memtables held, the store's changelog offset with it, and Faust replays the
    changelog from the older offset (a clean close flushes the memtables first)."""

    def __init__(self, level0_files: int = 0, wal: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.level0_files = level0_files
        self.wal = wal

    def as_options(self) -> Any:
        options = super().as_options()
        if self.use_rocksdict and self.level0_files > 0:
            options.set_level_zero_file_num_compaction_trigger(self.level0_files)
            options.set_level_zero_slowdown_writes_trigger(self.level0_files + 16)
            options.set_level_zero_stop_writes_trigger(self.level0_files + 32)
        return options

    def open(self, path: Path, *, read_only: bool = False) -> Any:
        if not self.use_rocksdict:  # python-rocksdb takes the options as given
            return super().open(path, read_only=read_only)
        import rocksdict

        access = (
            rocksdict.AccessType.read_write()
            if self.ttl is None
            else rocksdict.AccessType.with_ttl(self.ttl)
        )
        # As Faust opens it, plus the default column family's options.
        db = rocksdict.Rdict(
            str(path),
            options=self.as_options(),
            column_families={"default": self.as_options()},
            access_type=access,
        )
        db.set_read_options(rocksdict.ReadOptions())
        if not self.wal:
            writes = rocksdict.WriteOptions()
            # A property at runtime; rocksdict's stub declares it a method.
            writes.disable_wal = True  # type: ignore[method-assign,assignment]
            db.set_write_options(writes)
        return db


class BudgetedOptions(StoreOptions):
    """Faust's options, with the process's shared cache and write-buffer manager."""

    def __init__(self, budget_mb: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.budget_mb = budget_mb

    def as_options(self) -> Any:
        options = super().as_options()
        if not self.use_rocksdict:  # python-rocksdb: Faust's per-store caches
            return options
        import rocksdict

        cache, write_buffers = shared_budget(self.budget_mb)
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(self.bloom_filter_size, True)
        table.set_block_cache(cache)
        # Index and filter blocks live in the cache too, not beside it per open file.
        table.set_cache_index_and_filter_blocks(True)
        table.set_pin_l0_filter_and_index_blocks_in_cache(True)
        table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        options.set_block_based_table_factory(table)
        options.set_write_buffer_manager(write_buffers)
        return options


# Faust writes a table's changelog offset into the partition's RocksDB on every
# acknowledged changelog record (`set_persisted_offset`): a put per record the table
# writes, ~2 % of a live worker's CPU. The store writes it at most this often per
# partition and holds the newest in memory meanwhile. An offset written late is never
# ahead of the data (a record's put precedes its acknowledgement), so a worker killed
# meanwhile replays up to this much more of the changelog on restart, and loses nothing.
OFFSET_WRITE_INTERVAL_S = 1.0


class Store(faust_rocksdb.Store):
    """Faust's RocksDB store, opened with the worker's shared memory budget, writing
    its changelog offsets at most once a second per partition."""

    # Replaced by the tests: the clock the offset writes are spaced by.
    clock: Callable[[], float] = staticmethod(time.monotonic)

    def __init__(self, *args: Any, options: dict[str, Any] | None = None, **kwargs: Any) -> None:
        own = dict(options or {})
        budget_mb = int(own.pop(BUDGET_OPTION, 0))
        level0_files = int(own.pop(LEVEL0_OPTION, 0))
        wal = bool(own.pop(WAL_OPTION, True))
        super().__init__(*args, options=own, **kwargs)
        ours = StoreOptions if budget_mb <= 0 else partial(BudgetedOptions, budget_mb)
        self.rocksdb_options = ours(
            level0_files=level0_files, wal=wal, use_rocksdict=self.use_rocksdict, **own
        )
        # partition -> the newest offset acknowledged and not written yet
        self._held_offsets: dict[int, tuple[TP, int]] = {}
        self._offset_written_at: dict[int, float] = {}

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        # The last offset given wins, as in Faust (a partition's acks come in order).
        now = self.clock()
        written_at = self._offset_written_at.get(tp.partition)
        if written_at is not None and now - written_at < OFFSET_WRITE_INTERVAL_S:
            self._held_offsets[tp.partition] = (tp, offset)
            return
        self._held_offsets.pop(tp.partition, None)
        super().set_persisted_offset(tp, offset)
        self._offset_written_at[tp.partition] = now

    def persisted_offset(self, tp: TP) -> int | None:
        held = self._held_offsets.get(tp.partition)
        if held is not None:
            return held[1]
        offset: int | None = super().persisted_offset(tp)
        return offset

    def write_held_offsets(self, partitions: Set[int] | None = None) -> None:
        """Write the offsets held for `partitions` (all when None) now."""
        for partition, (tp, offset) in list(self._held_offsets.items()):
            if partitions is None or partition in partitions:
                del self._held_offsets[partition]
                super().set_persisted_offset(tp, offset)
                self._offset_written_at[partition] = self.clock()

    def revoke_partitions(self, table: CollectionT, tps: set[TP]) -> None:
        # Before Faust lets go of the partitions' databases.
        mine = {tp.partition for tp in tps if tp.topic in table.changelog_topic.topics}
        self.write_held_offsets(mine)
        super().revoke_partitions(table, tps)

    async def stop(self) -> None:
        self.write_held_offsets()
        await super().stop()

    def reset_state(self) -> None:
        # The data goes: an offset held for it must not outlive it.
        self._held_offsets.clear()
        self._offset_written_at.clear()
        super().reset_state()


def install() -> None:
    """`rocksdb://` opens `Store` above (Faust resolves the scheme at each table's start)."""
    stores.STORES.aliases["rocksdb"] = f"{__name__}:Store"
