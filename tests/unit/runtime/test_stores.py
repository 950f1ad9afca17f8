"""A Faust table's storage (streams/runtime/stores.py), read from the installed Faust's
stores: RocksDB's per-partition databases, and none for the memory store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import faust
import pytest

from streams.runtime.stores import key_index_entries, partition_dbs


@pytest.fixture
def table_data(tmp_path: Path) -> Callable[[str], object]:
    """A table's store of a Faust app with `store` (a URL). Asked in a running loop, as
    in the worker: the app takes it rather than making one."""

    def data(store: str) -> object:
        app = faust.App("runtime-test", broker="kafka://localhost:1", store=store, datadir=tmp_path)
        return app.Table("rows", partitions=2, key_type=bytes, value_type=bytes).data

    return data


async def test_a_memory_store_has_no_partition_databases(
    table_data: Callable[[str], object],
) -> None:
    store = table_data("memory://")
    assert partition_dbs(store) is None
    assert key_index_entries(store) == 0


async def test_a_rocksdb_store_s_databases_by_partition(
    table_data: Callable[[str], object],
) -> None:
    store = table_data("rocksdb://")
    assert partition_dbs(store) == {}
    db = store._db_for_partition(1)  # type: ignore[attr-defined]  # as Faust opens one
    db[b"a"] = b"1"
    dbs = partition_dbs(store)
    assert dbs is not None
    assert list(dbs) == [1]
    assert dbs[1][b"a"] == b"1"
    assert key_index_entries(store) == 0
    store._key_index[b"a"] = 1  # type: ignore[attr-defined]  # what a read fills in
    assert key_index_entries(store) == 1
    db.close()
