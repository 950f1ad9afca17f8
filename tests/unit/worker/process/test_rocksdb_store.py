"""One RocksDB memory budget per worker (streams/worker/process/rocksdb_store.py): the setting
reaches every store, and the stores' memtables and cache stay within it together."""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path
from typing import Any

import faust
import pytest
from faust import stores
from faust.stores import rocksdb as faust_rocksdb
from faust.types import TP

from streams.worker import app as worker_app
from streams.worker.process import rocksdb_store
from streams.worker.settings import Settings

MIB = 1024 * 1024


def test_rocksdb_urls_open_the_budgeted_store_once_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert worker_app.settings.store.url == "rocksdb://"
    # boot() installs it (streams/worker/process/boot.py); put Faust's alias back afterwards.
    monkeypatch.setitem(stores.STORES.aliases, "rocksdb", stores.STORES.aliases["rocksdb"])
    rocksdb_store.install()
    assert stores.by_url("rocksdb://") is rocksdb_store.Store


def test_the_setting_reaches_every_table() -> None:
    assert Settings(_env_file=None).store.rocksdb_memory_mb == 64  # type: ignore[call-arg]
    for table in (worker_app.bookings, worker_app.synced, worker_app.due_table.table):
        options = table.faust_table.options
        assert options[rocksdb_store.BUDGET_OPTION] == worker_app.settings.store.rocksdb_memory_mb


def store_of(tmp_path: Path, budget_mb: int) -> rocksdb_store.Store:
    options = Settings(store={"rocksdb_memory_mb": budget_mb}).store.rocksdb_options()  # type: ignore[arg-type]
    return store_of_options(tmp_path, options)


def store_of_options(tmp_path: Path, options: dict[str, int]) -> rocksdb_store.Store:
    app = faust.App("store-test", datadir=str(tmp_path), store="rocksdb://")
    table = app.Table("t", key_type=bytes, value_type=bytes)
    return rocksdb_store.Store("rocksdb://", app, table, options=options)


def test_a_store_takes_the_budget_from_its_options(tmp_path: Path) -> None:
    budgeted = store_of(tmp_path / "a", 32)
    assert isinstance(budgeted.rocksdb_options, rocksdb_store.BudgetedOptions)
    assert budgeted.rocksdb_options.budget_mb == 32
    assert budgeted.rocksdb_options.write_buffer_size == 4 * MIB  # the per-store caps stay
    unbudgeted = store_of(tmp_path / "b", 0)
    assert not isinstance(unbudgeted.rocksdb_options, rocksdb_store.BudgetedOptions)


@pytest.mark.parametrize("budget_mb", [0, 32])
def test_every_store_filters_lookups_with_the_configured_bloom_bits(
    tmp_path: Path, budget_mb: int
) -> None:
    # What RocksDB wrote, not what the options say: a filter of ~N bits a key, in the
    # files written before a restart and after it (rocksdict reopened a database with
    # the table options its OPTIONS file kept: no filter, no shared cache).
    for bits in (3, 10):
        options = Settings(
            store={"rocksdb_memory_mb": budget_mb, "rocksdb_bloom_bits": bits}  # type: ignore[arg-type]
        ).store.rocksdb_options()
        store = store_of_options(tmp_path / f"{budget_mb}-{bits}", options)
        path = tmp_path / f"{budget_mb}-{bits}.db"
        for run in range(2):  # a worker, then the same worker restarted
            db = store.rocksdb_options.open(path)
            for i in range(20_000):
                db[b"booking-%d-%08d" % (run, i)] = b"state"
            db.flush()
            properties = db.property_value("rocksdb.aggregated-table-properties")
            db.close()
            filtered = int(properties.split("# entries for filter=")[1].split(";")[0])
            assert filtered == 20_000 * (run + 1), properties
            filter_bytes = int(properties.split("filter block size=")[1].split(";")[0])
            assert bits - 1 <= filter_bytes * 8 / filtered <= bits + 1, properties


@pytest.mark.parametrize("budget_mb", [0, 32])
def test_level_0_gathers_the_configured_files_before_a_compaction(
    tmp_path: Path, budget_mb: int
) -> None:
    # What RocksDB runs with (its OPTIONS file, rewritten at each open), before and after
    # a restart, and what it does: the files flushed stay in level 0 below the trigger.
    options = Settings(
        store={"rocksdb_memory_mb": budget_mb, "rocksdb_level0_files": 8}  # type: ignore[arg-type]
    ).store.rocksdb_options()
    store = store_of_options(tmp_path, options)
    path = tmp_path / "level0.db"
    for run in range(2):  # a worker, then the same worker restarted
        db = store.rocksdb_options.open(path)
        newest = max(path.glob("OPTIONS-*"), key=lambda p: int(p.name.split("-")[1]))
        running = newest.read_text()
        assert "level0_file_num_compaction_trigger=8\n" in running
        assert "level0_slowdown_writes_trigger=24\n" in running
        assert "level0_stop_writes_trigger=40\n" in running
        for flush in range(3):
            db[b"booking-%d-%d" % (run, flush)] = b"state"
            db.flush()
        assert db.property_int_value("rocksdb.num-files-at-level0") == 3 * (run + 1)
        db.close()


def flushed(db: Any) -> None:
    """Return once the flushes RocksDB scheduled for `db` are over: no immutable memtable
    left and no flush job running (a job counts as running until it has freed the
    memtables it wrote out, and with them their charge to the write-buffer manager and
    the cache). No deadline of its own: on a busy machine the flush threads run late,
    not wrong, and pytest's timeout (pyproject.toml) ends a hang."""
    while db.property_int_value("rocksdb.num-immutable-mem-table") or db.property_int_value(
        "rocksdb.num-running-flushes"
    ):
        time.sleep(0.001)


def memtables(dbs: list[Any]) -> int:
    return sum(db.property_int_value("rocksdb.cur-size-all-mem-tables") for db in dbs)


def fill(dbs: list[Any], megabytes: int) -> int:
    """Write `megabytes` MB of 1 kB values into each store, a row to each in turn; return
    the most the memtables of all stores held, measured after each turn.

    What RocksDB promises: a write that finds the memtables of all stores past the
    write-buffer manager's limit switches the written store's memtable to be flushed in
    the background; but it skips a store whose last memtable is still being flushed, so
    when the flush threads run behind (a busy machine) the memtables grow past the limit
    by however far the scheduler lets them. Each flush a write triggers is awaited
    before the next write: the same writes trigger the same flushes on any machine."""
    value = os.urandom(1000)
    held = 0
    for i in range(megabytes * 1000):
        for n, db in enumerate(dbs):
            db[b"%d-%08d" % (n, i)] = value
            if db.property_int_value("rocksdb.num-immutable-mem-table"):
                flushed(db)
        held = max(held, memtables(dbs))
    return held


@pytest.mark.parametrize("budget_mb", [0, 8])
def test_memtables_of_all_stores_stay_within_the_budget(tmp_path: Path, budget_mb: int) -> None:
    # Large per-store write buffers (Faust's 64 MiB): only the shared budget holds them.
    # Three stores, not four: a written store's memtable holds at least one arena block
    # (1 MiB with these buffers), and four of them would already be past the manager's
    # limit (7/8 of half of 8 MiB), so every write would switch a memtable.
    kwargs: dict[str, Any] = {"write_buffer_size": 64 * MIB, "max_write_buffer_number": 3}
    options = (
        rocksdb_store.BudgetedOptions(budget_mb, **kwargs)
        if budget_mb
        else rocksdb_store.faust_rocksdb.RocksDBOptions(**kwargs)
    )
    dbs = [options.open(tmp_path / f"p{n}.db") for n in range(3)]
    try:
        held = fill(dbs, 8)  # 24 MB written, 8 MB a store
        if not budget_mb:
            assert held > 16 * MIB, held / MIB  # nothing flushed: 8 MB a store in memory
            return
        cache, write_buffers = rocksdb_store.shared_budget(budget_mb)
        assert write_buffers.get_buffer_size() == budget_mb * MIB // 2  # flush at half
        # Under the manager's limit before each write, a write adds one arena block at most.
        assert held <= write_buffers.get_buffer_size() + MIB, held / MIB
        # The manager's own count, charged to the cache (entries held there, not evicted).
        assert write_buffers.get_usage() <= budget_mb * MIB, write_buffers.get_usage() / MIB
        assert cache.get_pinned_usage() >= write_buffers.get_usage()
        for db in dbs:  # read everything back through the shared cache
            for _key, _value in db.items():
                pass
        # Pinned L0 index and filter blocks may take it a little past its capacity.
        usage = cache.get_usage()
        assert usage <= budget_mb * MIB * 1.5, usage / MIB
    finally:
        for db in dbs:
            db.close()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def offsets_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Clock, list[int]]:
    """A store on a stepped clock, and the offsets it wrote to RocksDB (in order)."""
    store = store_of(tmp_path, 0)
    clock = Clock()
    monkeypatch.setattr(store, "clock", clock)
    written: list[int] = []
    base = faust_rocksdb.Store.set_persisted_offset

    def counting(self: Any, tp: TP, offset: int) -> None:
        written.append(offset)
        base(self, tp, offset)

    monkeypatch.setattr(faust_rocksdb.Store, "set_persisted_offset", counting)
    return store, clock, written


def test_changelog_offsets_are_written_at_most_once_a_second_and_read_back_newest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, clock, written = offsets_store(tmp_path, monkeypatch)
    tp, other = TP("t-changelog", 0), TP("t-changelog", 1)
    for offset in range(10):  # ten acknowledgements within a second: one put
        store.set_persisted_offset(tp, offset)
    store.set_persisted_offset(other, 3)  # another partition has its own second
    assert written == [0, 3]
    assert store.persisted_offset(tp) == 9  # the newest, held
    assert faust_rocksdb.Store.persisted_offset(store, tp) == 0  # what RocksDB has
    clock.now += rocksdb_store.OFFSET_WRITE_INTERVAL_S
    store.set_persisted_offset(tp, 10)  # a second on: written, and nothing held
    assert written == [0, 3, 10]
    assert faust_rocksdb.Store.persisted_offset(store, tp) == store.persisted_offset(tp) == 10


def test_held_offsets_are_written_when_their_partition_goes_and_dropped_with_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _, written = offsets_store(tmp_path, monkeypatch)
    topic = store.table.changelog_topic.get_topic_name()
    kept, revoked = TP(topic, 0), TP(topic, 1)
    for tp in (kept, revoked):
        store.set_persisted_offset(tp, 1)
        store.set_persisted_offset(tp, 5)
    store.revoke_partitions(store.table, {revoked})
    assert written == [1, 1, 5]  # the revoked partition's held 5
    store.reset_state()
    assert store.persisted_offset(kept) is None  # its held 5 went with the data


@pytest.mark.parametrize("wal", [False, True])
@pytest.mark.parametrize("budget_mb", [0, 32])
def test_writes_skip_the_write_ahead_log_unless_asked_and_a_clean_stop_keeps_them(
    tmp_path: Path, budget_mb: int, wal: bool
) -> None:
    # The changelog topic restores what a crash loses; a clean stop (Faust drops its
    # handles on stop and on a revoke) flushes the memtables, so nothing needs replaying.
    options = Settings(
        store={"rocksdb_memory_mb": budget_mb, "rocksdb_wal": wal}  # type: ignore[arg-type]
    ).store.rocksdb_options()
    store = store_of_options(tmp_path, options)
    path = tmp_path / "wal.db"
    db = store.rocksdb_options.open(path)
    for i in range(1_000):
        db[b"booking-%04d" % i] = b"state-%04d" % i
    logged = sum(log.stat().st_size for log in path.glob("*.log"))
    assert (logged > 1_000 * len(b"state-0000")) is wal
    # As Faust lets go of a store on stop and on a revoke: no close, the handle dropped.
    del db
    gc.collect()
    db = store.rocksdb_options.open(path)
    assert [db[b"booking-%04d" % i] for i in (0, 999)] == [b"state-0000", b"state-0999"]
    db.close()
