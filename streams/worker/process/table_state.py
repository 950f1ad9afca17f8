"""The tables' state on disk (RocksDB under ACTIVITY_SYNC_DATA_DIR), as Faust keeps it.

Faust's RocksDB store keeps one database per table partition,
`<data_dir>/v<app version>/tables/<table>-<partition>.db`, and in each the offset of the
last changelog record it applied (key `__faust\\0offset__`, an ASCII integer): at start
it reads the changelog from the next one. A store whose offset is at or past the end of
its changelog partition belongs to a log the broker no longer has (a broker restarted
without its log, a topic deleted and recreated, a new cluster), and Faust's recovery
stops with ConsistencyError. This module reads those offsets without Faust, compares
them with the broker's end offsets (`ahead_of_log`, pure), remembers which cluster the
state was built on, and sets the state aside (`discard`); the start-up check that uses
it is streams/commands/table_state_check.py, the command `activity-sync reset-state`
streams/commands/reset_state.py.
"""

from __future__ import annotations

import errno
import fcntl
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

# faust.stores.rocksdb.Store.offset_key
OFFSET_KEY = b"__faust\x00offset__"
# The broker cluster's id the state was built on, beside the stores (removed with them).
CLUSTER_FILE = "cluster-id"


def tables_dir(data_dir: Path, app_version: int) -> Path:
    """Faust's `tabledir` for this data dir and app version (`appdir / "tables"`, with
    `appdir = datadir / f"v{version}"`)."""
    return data_dir / f"v{app_version}" / "tables"


@dataclass(frozen=True)
class StoredOffset:
    """The offset of the last changelog record a table partition's store applied."""

    table: str
    changelog: str
    partition: int
    offset: int


@dataclass(frozen=True)
class Ahead:
    """A store ahead of its changelog partition: it applied `stored`, the broker's log
    ends before it (`end`: the offset after the last record, 0 for no topic)."""

    changelog: str
    partition: int
    stored: int
    end: int

    def __str__(self) -> str:
        return (
            f"{self.changelog} partition {self.partition}: stored offset {self.stored}, "
            f"broker's end offset {self.end}"
        )


def ahead_of_log(
    stored: Iterable[StoredOffset], ends: Mapping[tuple[str, int], int]
) -> list[Ahead]:
    """The stores whose applied offset the broker's log does not reach. The log holds the
    offsets below its end, so a store is ahead when its offset is >= the end; a
    changelog partition missing from `ends` (the topic does not exist) ends at 0."""
    found = []
    for item in stored:
        end = ends.get((item.changelog, item.partition), 0)
        if item.offset >= end:
            found.append(Ahead(item.changelog, item.partition, item.offset, end))
    return sorted(found, key=lambda a: (a.changelog, a.partition))


def _store_paths(directory: Path, table: str) -> list[tuple[int, Path]]:
    pattern = re.compile(rf"{re.escape(table)}-(\d+)\.db")
    found = []
    if directory.is_dir():
        for path in directory.iterdir():
            match = pattern.fullmatch(path.name)
            if match and path.is_dir():
                found.append((int(match.group(1)), path))
    return sorted(found)


def read_offset(store: Path) -> int | None:
    """The applied changelog offset of one store (None: none recorded), opened read-only
    as Faust opens it (rocksdict, raw keys): no lock taken, the store left as it is."""
    import rocksdict

    db = rocksdict.Rdict(
        str(store),
        options=rocksdict.Options(raw_mode=True),
        access_type=rocksdict.AccessType.read_only(),
    )
    try:
        raw = db.get(OFFSET_KEY)
    finally:
        db.close()
    return None if raw is None else int(raw)


def stored_offsets(directory: Path, changelogs: Mapping[str, str]) -> list[StoredOffset]:
    """The applied offset of every store in `directory` of the tables in `changelogs`
    (table name -> its changelog topic); stores with none recorded are left out."""
    found = []
    for table, changelog in sorted(changelogs.items()):
        for partition, path in _store_paths(directory, table):
            offset = read_offset(path)
            if offset is not None:
                found.append(StoredOffset(table, changelog, partition, offset))
    return found


def holds_state(directory: Path) -> bool:
    """True when `directory` holds a table store of any table."""
    return directory.is_dir() and any(
        p.is_dir() and p.name.endswith(".db") for p in directory.iterdir()
    )


def recorded_cluster(directory: Path) -> str | None:
    """The id of the cluster the state in `directory` was built on, if recorded."""
    try:
        return (directory / CLUSTER_FILE).read_text().strip() or None
    except FileNotFoundError:
        return None


def record_cluster(directory: Path, cluster_id: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CLUSTER_FILE).write_text(cluster_id + "\n")


def store_in_use(directory: Path) -> Path | None:
    """A store of `directory` whose RocksDB lock another process holds (a worker running
    on it), or None. RocksDB locks `<store>/LOCK` with a POSIX record lock."""
    if not directory.is_dir():
        return None
    for store in sorted(directory.iterdir()):
        lock = store / "LOCK"
        if not (store.is_dir() and lock.is_file()):
            continue
        with open(lock, "r+b") as handle:
            try:
                fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    return store
                raise
            fcntl.lockf(handle, fcntl.LOCK_UN)
    return None


def discard(directory: Path, *, keep: bool) -> Path | None:
    """Remove the table state in `directory`; with `keep`, move it aside instead, to a
    sibling `tables.reset-<UTC time>`, returned. None when there was nothing."""
    if not directory.exists():
        return None
    if not keep:
        shutil.rmtree(directory)
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = directory.with_name(f"{directory.name}.reset-{stamp}")
    suffix = 1
    while target.exists():
        suffix += 1
        target = directory.with_name(f"{directory.name}.reset-{stamp}-{suffix}")
    directory.rename(target)
    return target
