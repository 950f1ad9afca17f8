"""One RocksDB memory budget per worker (streams/worker/rocksdb_store.py): the setting
reaches every store, and the stores' memtables and cache stay within it together."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faust
import pytest
from faust import stores

from streams.worker import app as worker_app
from streams.worker import rocksdb_store
from streams.worker.settings import Settings

MIB = 1024 * 1024


def test_rocksdb_urls_open_the_budgeted_store() -> None:
    assert worker_app.settings.store == "rocksdb://"
    assert stores.by_url("rocksdb://") is rocksdb_store.Store


def test_the_setting_reaches_every_table() -> None:
    assert Settings(_env_file=None).rocksdb_memory_mb == 64  # type: ignore[call-arg]
    for table in (worker_app.bookings, worker_app.synced, worker_app.due_index.table):
        options = table.faust_table.options
        assert options[rocksdb_store.BUDGET_OPTION] == worker_app.settings.rocksdb_memory_mb


def store_of(tmp_path: Path, budget_mb: int) -> rocksdb_store.Store:
    app = faust.App("budget-test", datadir=str(tmp_path), store="rocksdb://")
    table = app.Table("t", key_type=bytes, value_type=bytes)
    options = Settings(rocksdb_memory_mb=budget_mb).rocksdb_options()  # type: ignore[call-arg]
    return rocksdb_store.Store("rocksdb://", app, table, options=options)


def test_a_store_takes_the_budget_from_its_options(tmp_path: Path) -> None:
    budgeted = store_of(tmp_path / "a", 32)
    assert isinstance(budgeted.rocksdb_options, rocksdb_store.BudgetedOptions)
    assert budgeted.rocksdb_options.budget_mb == 32
    assert budgeted.rocksdb_options.write_buffer_size == 4 * MIB  # the per-store caps stay
    unbudgeted = store_of(tmp_path / "b", 0)
    assert not isinstance(unbudgeted.rocksdb_options, rocksdb_store.BudgetedOptions)


def fill(dbs: list[Any], megabytes: int) -> None:
    value = os.urandom(1000)
    for i in range(megabytes * 1000):
        for n, db in enumerate(dbs):
            db[b"%d-%08d" % (n, i)] = value


def memtables(dbs: list[Any]) -> int:
    return sum(db.property_int_value("rocksdb.cur-size-all-mem-tables") for db in dbs)


def settled(measure: Callable[[], int], limit: int, wait_s: float = 30.0) -> int:
    """`measure()` once RocksDB's background flushes caught up with it (they run behind
    on a busy machine), or after `wait_s`."""
    deadline = time.monotonic() + wait_s
    value = measure()
    while value > limit and time.monotonic() < deadline:
        time.sleep(0.2)
        value = measure()
    return value


@pytest.mark.parametrize("budget_mb", [0, 8])
def test_memtables_of_all_stores_stay_within_the_budget(tmp_path: Path, budget_mb: int) -> None:
    # Large per-store write buffers (Faust's 64 MiB): only the shared budget holds them.
    kwargs: dict[str, Any] = {"write_buffer_size": 64 * MIB, "max_write_buffer_number": 3}
    options = (
        rocksdb_store.BudgetedOptions(budget_mb, **kwargs)
        if budget_mb
        else rocksdb_store.faust_rocksdb.RocksDBOptions(**kwargs)
    )
    dbs = [options.open(tmp_path / f"p{n}.db") for n in range(4)]
    try:
        fill(dbs, 6)  # 24 MB written, 6 MB a store
        if budget_mb:
            held = settled(lambda: memtables(dbs), budget_mb * MIB)
        else:
            held = settled(lambda: memtables(dbs), 16 * MIB, wait_s=2.0)
        if budget_mb:
            assert held <= budget_mb * MIB, held / MIB
            cache, _ = rocksdb_store.shared_budget(budget_mb)
            for db in dbs:  # read everything back through the shared cache
                for _key, _value in db.items():
                    pass
            # Pinned L0 index and filter blocks may take it a little past its capacity.
            usage = settled(cache.get_usage, int(budget_mb * MIB * 1.5))
            assert usage <= budget_mb * MIB * 1.5, usage / MIB
        else:
            assert held > 16 * MIB, held / MIB  # nothing flushed: 6 MB a store in memory
    finally:
        for db in dbs:
            db.close()
