"""A Faust table's storage: RocksDB's per-partition databases behind its `data`.

Faust's RocksDB store (`faust.stores.rocksdb.Store`) opens one database per partition it
holds, active or standby, in its private `_dbs` (partition -> database), and keeps a
private `_key_index` (key -> partition) for reads without a current event. The memory
store (`memory://`) has neither: it is one dict for every partition.

    dbs = partition_dbs(table.data)
    if dbs is None:          # memory://
        rows = table.data.items()
    else:
        rows = dbs[partition].items(from_key=start)   # sorted by key
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def partition_dbs(store: Any) -> Mapping[int, Any] | None:
    """The store's open databases by partition (the live mapping: read it, never keep
    it across an `await`), or None for a store without them (the memory store)."""
    dbs: Mapping[int, Any] | None = getattr(store, "_dbs", None)
    return dbs


def key_index_entries(store: Any) -> int:
    """How many keys the RocksDB store's key -> partition index holds (0 without one)."""
    return len(getattr(store, "_key_index", ()))
