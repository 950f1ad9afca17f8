"""The memory bounds are settings, and the tables and stores get them."""

from __future__ import annotations

from pathlib import Path

from faust.stores.rocksdb import RocksDBOptions

from streams.worker import app as worker_app
from streams.worker.settings import Settings

MIB = 1024 * 1024


def test_the_rocksdb_caps_reach_faust_s_options() -> None:
    settings = Settings(
        store={
            "rocksdb_block_cache_mb": 16,
            "rocksdb_write_buffer_mb": 2,
            "rocksdb_max_write_buffers": 3,
        }
    )
    options = RocksDBOptions(**settings.store.rocksdb_options())
    assert options.block_cache_size == 16 * MIB
    assert options.write_buffer_size == 2 * MIB
    assert options.max_write_buffer_number == 3


def test_the_defaults_are_far_below_faust_s() -> None:
    faust_default = RocksDBOptions()
    ours = RocksDBOptions(**Settings().store.rocksdb_options())
    assert ours.block_cache_size * 64 <= faust_default.block_cache_size
    assert ours.write_buffer_size * 8 <= faust_default.write_buffer_size


def test_every_table_of_the_app_is_capped() -> None:
    capped = worker_app.settings.store.rocksdb_options()
    tables = (worker_app.bookings, worker_app.synced, worker_app.due_table.table)
    for table in tables:
        assert table.faust_table.options == capped


def test_a_store_opens_with_the_caps(tmp_path: Path) -> None:
    store = Settings(store={"rocksdb_block_cache_mb": 1}).store
    options = RocksDBOptions(**store.rocksdb_options())
    db = options.open(tmp_path / "capped.db")
    db[b"k"] = b"v"
    assert db[b"k"] == b"v"
    db.close()


def test_the_sink_progress_map_is_capped_by_its_setting() -> None:
    assert (
        worker_app.sink_progress._max_entries
        == worker_app.settings.timers.sink_progress_max_entries
    )
