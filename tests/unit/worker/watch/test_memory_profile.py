"""The opt-in heap profile (streams/worker/watch/memory_profile.py): off by default, and when on
its report names the allocation sites, RocksDB's memory and the process's."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from faust.stores.rocksdb import RocksDBOptions

from streams.worker.settings import Settings
from streams.worker.watch import memory_profile


@pytest.fixture
def tracing() -> Iterator[None]:
    was = tracemalloc.is_tracing()
    yield
    if not was:
        tracemalloc.stop()


@pytest.fixture
def not_tracing() -> Iterator[None]:
    """Tracing off for the test (another test or a plugin may have left it on), restored."""
    was = tracemalloc.is_tracing()
    tracemalloc.stop()
    yield
    if was:
        tracemalloc.start()


def test_profiling_is_off_by_default() -> None:
    assert Settings(_env_file=None).process.memory_profile_frames == 0  # type: ignore[call-arg]
    assert memory_profile.start(0) is tracemalloc.is_tracing()


@pytest.mark.usefixtures("tracing")
def test_the_report_names_the_largest_allocation_site() -> None:
    assert memory_profile.start(4)
    hoard = [bytes(1024) + bytes([i % 256]) for i in range(20_000)]  # ~20 MB on one line
    report = memory_profile.report(top=5)
    sites = report["tracemalloc"]["by_line"]
    assert "test_memory_profile.py" in sites[0]["site"]
    assert sites[0]["mb"] >= 15
    assert report["tracemalloc"]["traced_mb"] >= sites[0]["mb"]
    assert report["process"]["vmrss_mb"] > 0
    assert len(hoard) == 20_000


@pytest.mark.usefixtures("not_tracing")
def test_without_tracing_the_report_still_answers() -> None:
    report = memory_profile.report()
    assert report["tracemalloc"] == {"tracing": False}
    assert set(report["rocksdb"]) >= {"bookings", "synced", "due"}


def test_rocksdb_figures_of_a_store(tmp_path: Path) -> None:
    db = RocksDBOptions(write_buffer_size=1 << 20).open(tmp_path / "p0.db")
    store = SimpleNamespace(_dbs={0: db}, _key_index={b"a": 0}, key_index_size=1000)
    for i in range(1000):
        db[f"k{i}".encode()] = bytes(200)
    figures = memory_profile.store_memory(store)
    assert figures["stores"] == 1
    assert figures["memtables_mb"] > 0.1  # 1000 rows of 200 bytes, not yet flushed
    assert figures["key_index_entries"] == 1
    db.close()
