"""The tables' state on disk (streams/worker/process/table_state.py): where Faust keeps it, the
offsets its stores applied, and which of them the broker's log does not reach."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from faust.stores import rocksdb as faust_rocksdb

from streams.worker.app import create_app
from streams.worker.process import table_state
from streams.worker.process.table_state import Ahead, StoredOffset, ahead_of_log
from streams.worker.settings import Settings

CHANGELOG = "booking-activity-sync-bookings-changelog"


def stored(partition: int, offset: int, changelog: str = CHANGELOG) -> StoredOffset:
    return StoredOffset("bookings", changelog, partition, offset)


def test_a_store_past_the_end_of_an_emptied_log_is_ahead() -> None:
    # The case: offset 62 applied, the restarted broker's changelog is empty.
    assert ahead_of_log([stored(0, 62)], {(CHANGELOG, 0): 0}) == [Ahead(CHANGELOG, 0, 62, 0)]


def test_a_store_at_the_last_record_is_not_ahead() -> None:
    # The store applied the record at offset 62; the log ends after it, at 63.
    assert ahead_of_log([stored(0, 62)], {(CHANGELOG, 0): 63}) == []
    assert ahead_of_log([stored(0, 62)], {(CHANGELOG, 0): 500}) == []


def test_a_store_at_the_end_offset_is_ahead() -> None:
    # End 62: the log's last record is 61, so the store's 62 is not in it.
    assert ahead_of_log([stored(0, 62)], {(CHANGELOG, 0): 62}) == [Ahead(CHANGELOG, 0, 62, 62)]


def test_a_changelog_the_broker_lacks_ends_at_zero() -> None:
    assert ahead_of_log([stored(3, 0)], {}) == [Ahead(CHANGELOG, 3, 0, 0)]


def test_only_the_partitions_ahead_are_named_in_order() -> None:
    other = "booking-activity-sync-synced-changelog"
    found = ahead_of_log(
        [stored(2, 10), stored(0, 5), stored(1, 7, other), stored(3, 1)],
        {(CHANGELOG, 0): 6, (CHANGELOG, 2): 4, (other, 1): 0, (CHANGELOG, 3): 9},
    )
    assert found == [Ahead(CHANGELOG, 2, 10, 4), Ahead(other, 1, 7, 0)]
    assert str(found[0]) == f"{CHANGELOG} partition 2: stored offset 10, broker's end offset 4"


def test_tables_dir_is_fausts_tabledir(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, store={"data_dir": tmp_path / "worker"}, app={"version": 3})
    app = create_app(settings)
    assert table_state.tables_dir(settings.store.data_dir, 3) == Path(app.conf.tabledir)


def write_store(path: Path, offset: int | None) -> None:
    """A store as Faust writes it (its options, its offset key)."""
    db = faust_rocksdb.RocksDBOptions().open(path)
    db.put(b"b-1", b"state")
    if offset is not None:
        db.put(faust_rocksdb.Store.offset_key, str(offset).encode())
    db.close()


def test_stored_offsets_are_read_as_faust_writes_them(tmp_path: Path) -> None:
    assert faust_rocksdb.Store.offset_key == table_state.OFFSET_KEY
    write_store(tmp_path / "bookings-0.db", 62)
    write_store(tmp_path / "bookings-2.db", 7)
    write_store(tmp_path / "bookings-3.db", None)  # nothing applied yet
    write_store(tmp_path / "synced-1.db", 4)
    write_store(tmp_path / "other-0.db", 9)  # not a table of this app
    (tmp_path / "bookings-backups").mkdir()
    found = table_state.stored_offsets(
        tmp_path, {"bookings": CHANGELOG, "synced": "s-changelog", "due": "d-changelog"}
    )
    assert found == [
        StoredOffset("bookings", CHANGELOG, 0, 62),
        StoredOffset("bookings", CHANGELOG, 2, 7),
        StoredOffset("synced", "s-changelog", 1, 4),
    ]
    assert table_state.stored_offsets(tmp_path / "missing", {"bookings": CHANGELOG}) == []
    assert table_state.holds_state(tmp_path)
    assert not table_state.holds_state(tmp_path / "missing")


def test_the_cluster_is_recorded_beside_the_stores(tmp_path: Path) -> None:
    directory = tmp_path / "v1" / "tables"
    assert table_state.recorded_cluster(directory) is None
    table_state.record_cluster(directory, "abc")
    assert table_state.recorded_cluster(directory) == "abc"


def test_discard_moves_the_state_aside_or_deletes_it(tmp_path: Path) -> None:
    directory = tmp_path / "v1" / "tables"
    write_store(directory / "bookings-0.db", 1)
    kept = table_state.discard(directory, keep=True)
    assert kept is not None
    assert kept.parent == directory.parent
    assert kept.name.startswith("tables.reset-")
    assert (kept / "bookings-0.db").is_dir()
    assert not directory.exists()
    write_store(directory / "bookings-0.db", 1)
    assert table_state.discard(directory, keep=False) is None
    assert not directory.exists()
    assert kept.exists()
    assert table_state.discard(directory, keep=True) is None


def test_a_store_locked_by_another_process_is_in_use(tmp_path: Path) -> None:
    write_store(tmp_path / "bookings-0.db", 1)
    assert table_state.store_in_use(tmp_path) is None
    lock = tmp_path / "bookings-0.db" / "LOCK"
    # RocksDB's lock: a POSIX record lock on LOCK, held by the worker's process.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys; f = open(sys.argv[1], 'r+b'); fcntl.lockf(f, fcntl.LOCK_EX); "
            "print('locked', flush=True); sys.stdin.read()",
            str(lock),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        assert table_state.store_in_use(tmp_path) == tmp_path / "bookings-0.db"
    finally:
        holder.communicate("")
    assert table_state.store_in_use(tmp_path) is None
