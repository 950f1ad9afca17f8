"""SQLite storage for the emulator: records, the external-id index and API-call counters.

One database file in the data directory, so data survives a restart. Every record is a
JSON document plus the columns Salesforce indexes (id, external id); the external id is
unique per sObject, enforced by SQLite itself. Callers group one request's writes in
`transaction()` so a 200-record collection is one commit.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from devkit.salesforce_emulator.schema import SObjectDef, make_id
from devkit.salesforce_emulator.soql import Condition, OrderBy, Scalar

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq     INTEGER PRIMARY KEY,
    sobject TEXT NOT NULL,
    id      TEXT NOT NULL UNIQUE,
    ext_id  TEXT,
    data    TEXT NOT NULL,
    -- The store's change count at the record's last insert, update or delete: a reader
    -- that keeps a copy asks only for what changed since its last read (`changes`).
    changed INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS records_ext_id ON records (sobject, ext_id)
    WHERE ext_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS records_sobject ON records (sobject, seq);
CREATE INDEX IF NOT EXISTS records_changed ON records (sobject, changed);
-- Every write attempt of a tracked field (metadata.py: guarded by a PRIORVALUE rule):
-- written, or refused by that rule. Not Salesforce's: read over /__admin/writes.
CREATE TABLE IF NOT EXISTS writes (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    at        TEXT NOT NULL,
    sobject   TEXT NOT NULL,
    record_id TEXT,
    ext_id    TEXT,
    field     TEXT NOT NULL,
    old_value,
    new_value,
    outcome   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS api_calls (
    day  TEXT NOT NULL,
    kind TEXT NOT NULL,
    n    INTEGER NOT NULL,
    PRIMARY KEY (day, kind)
);
"""

Record = dict[str, object]
# Records in the recycle bin (deleted, or merged away) are left out of reads and queries.
_LIVE = " AND COALESCE(json_extract(data, '$.IsDeleted'), 0) = 0"
# (at, sobject, record id, external id, field, old value, new value, outcome)
WriteEntry = tuple[str, str, object, object, str, object, object, str]


def _id_is(record_id: str) -> tuple[str, tuple[str, ...]]:
    """The WHERE clause naming a record by its 18- or 15-character id, on the id index.

    A 15-character id names the same record as its 18-character form (the stored one),
    whose 3-character suffix (A-Z, 0-5) sorts below "{": a range on the index, where
    `substr(id, 1, 15) = ?` read every record of the org for every lookup."""
    if len(record_id) == 15:
        return "id >= ? AND id < ?", (record_id, record_id + "{")
    return "id = ?", (record_id,)


class Store:
    def __init__(
        self, path: Path | str, id_offset: int = 0, *, copy_of: Store | None = None
    ) -> None:
        # Ids are made from `seq`: each org's store starts its own block (orgs.py), so
        # an id of one org names nothing in another, as Salesforce ids are unique.
        self._id_offset = id_offset
        # isolation_level=None: transactions are explicit (BEGIN/COMMIT in transaction()).
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        # OFF while a new file is filled and switched to WAL: no fsync then (nothing in
        # it to lose yet), 2 ms instead of 30 (200 orgs are 200 new files).
        self._db.execute("PRAGMA synchronous=OFF")
        if copy_of is not None:
            # A new org starts as a page copy of a seeded store (orgs.py): far cheaper
            # than its few hundred validated seed writes.
            copy_of._db.backup(self._db)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a process crash (only an OS crash can lose the
        # last commits): enough for an emulator and far faster than FULL.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        row = self._db.execute(
            "SELECT COALESCE(MAX(seq), 0), COALESCE(MAX(changed), 0) FROM records"
        ).fetchone()
        self._seq = max(int(row[0]), id_offset)
        self._changed = int(row[1])
        self._depth = 0

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")
        finally:
            self._depth = 0

    # Records -----------------------------------------------------------------

    def new_id(self, sobject: SObjectDef) -> tuple[int, str]:
        self._seq += 1
        return self._seq, make_id(sobject.prefix, self._seq)

    def ordinal(self, seq: int) -> int:
        """The org's own count for `seq` (auto-numbers such as CaseNumber start at 1
        in every org, whatever its id block)."""
        return seq - self._id_offset

    def _change(self) -> int:
        self._changed += 1
        return self._changed

    def purge(self, record_id: str) -> None:
        """Remove a record entirely (no recycle bin): a copied store's stand-in user."""
        self._db.execute("DELETE FROM records WHERE id = ?", (record_id,))

    def replace_id(self, old: str, new: str) -> None:
        """Every record naming the id `old` names `new` instead (CreatedById, ...)."""
        naming = [
            row_id
            for (row_id,) in self._db.execute(
                "SELECT id FROM records WHERE instr(data, ?) > 0", (json.dumps(old),)
            ).fetchall()
        ]
        for row_id in naming:
            self._db.execute(
                "UPDATE records SET data = replace(data, ?, ?), changed = ? WHERE id = ?",
                (json.dumps(old), json.dumps(new), self._change(), row_id),
            )

    def insert(self, sobject: SObjectDef, seq: int, record: Record) -> None:
        ext_field = sobject.external_id_field
        ext = record.get(ext_field) if ext_field else None
        self._db.execute(
            "INSERT INTO records (seq, sobject, id, ext_id, data, changed)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (seq, sobject.name, record["Id"], ext, json.dumps(record), self._change()),
        )

    def update(self, sobject: SObjectDef, record: Record) -> None:
        ext_field = sobject.external_id_field
        ext = record.get(ext_field) if ext_field else None
        self._db.execute(
            "UPDATE records SET ext_id = ?, data = ?, changed = ? WHERE id = ? AND sobject = ?",
            (ext, json.dumps(record), self._change(), record["Id"], sobject.name),
        )

    def delete(self, sobject: SObjectDef, record_id: str, **marks: object) -> bool:
        """Into the recycle bin: IsDeleted (plus `marks`, e.g. MasterRecordId of a
        merge), its external id freed; reads and queries no longer see it, but a
        reference to it answers ENTITY_IS_DELETED."""
        record = self.get(sobject, record_id)
        if record is None:
            return False
        record.update(marks, IsDeleted=True)
        self._db.execute(
            "UPDATE records SET ext_id = NULL, data = ?, changed = ? WHERE id = ?",
            (json.dumps(record), self._change(), record["Id"]),
        )
        return True

    def get(self, sobject: SObjectDef, record_id: str, *, deleted: bool = False) -> Record | None:
        where, args = _id_is(record_id)
        row = self._db.execute(
            f"SELECT data FROM records WHERE sobject = ? AND {where}" + ("" if deleted else _LIVE),
            (sobject.name, *args),
        ).fetchone()
        return _load(row[0]) if row else None

    def get_any(self, record_id: str) -> Record | None:
        """The record with this id whatever its object, deleted ones included."""
        where, args = _id_is(record_id)
        row = self._db.execute(f"SELECT data FROM records WHERE {where}", args).fetchone()
        return _load(row[0]) if row else None

    def present(self, record_ids: Sequence[str]) -> set[str]:
        """Which of these 18-character ids name a record (deleted ones included)."""
        found: set[str] = set()
        for start in range(0, len(record_ids), 500):
            chunk = list(record_ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT id FROM records WHERE id IN ({marks})", chunk)
            found.update(str(rid) for (rid,) in rows)
        return found

    def get_by_external_ids(self, sobject: SObjectDef, values: Sequence[str]) -> dict[str, Record]:
        found: dict[str, Record] = {}
        unique = list(dict.fromkeys(values))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT ext_id, data FROM records WHERE sobject = ? AND ext_id IN ({marks})"
                + _LIVE,
                (sobject.name, *chunk),
            )
            for ext, data in rows:
                found[ext] = _load(data)
        return found

    def all(self, sobject: SObjectDef) -> list[Record]:
        rows = self._db.execute(
            f"SELECT data FROM records WHERE sobject = ? {_LIVE} ORDER BY seq", (sobject.name,)
        )
        return [_load(data) for (data,) in rows]

    def changes(self, sobject: SObjectDef, after: int, limit: int) -> list[tuple[int, Record]]:
        """Up to `limit` records of the object changed (inserted, updated, deleted) after
        change `after`, oldest change first, each with its change number; a deleted
        record comes with `IsDeleted`. A reader's next `after` is the last number it got."""
        rows = self._db.execute(
            "SELECT changed, data FROM records WHERE sobject = ? AND changed > ?"
            " ORDER BY changed LIMIT ?",
            (sobject.name, after, limit),
        )
        return [(int(changed), _load(data)) for changed, data in rows]

    def query(
        self,
        sobject: SObjectDef,
        where: Sequence[Condition],
        order_by: Sequence[OrderBy],
        limit: int | None,
    ) -> list[Record]:
        """Run parsed SOQL conditions as SQL. Field names must already be canonical."""
        # The default seed (seed.py) stays out of SOQL: queries see what was written.
        clauses = [
            "sobject = ?",
            _LIVE.removeprefix(" AND "),
            "json_extract(data, '$.__seed') IS NULL",
        ]
        params: list[object] = [sobject.name]
        for cond in where:
            clause, args = _condition_sql(sobject, cond)
            clauses.append(clause)
            params.extend(args)
        sql = f"SELECT data FROM records WHERE {' AND '.join(clauses)}"
        orders = []
        for item in order_by:
            column = _column(item.field)
            orders.append(f"({column} IS NULL) {'DESC' if not item.nulls_last else 'ASC'}")
            orders.append(f"{column} {'DESC' if item.descending else 'ASC'}")
        orders.append("seq ASC")
        sql += " ORDER BY " + ", ".join(orders)
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_load(data) for (data,) in self._db.execute(sql, params)]

    def count(self, sobject: SObjectDef) -> int:
        row = self._db.execute(
            f"SELECT COUNT(*) FROM records WHERE sobject = ? {_LIVE}", (sobject.name,)
        ).fetchone()
        return int(row[0])

    # The write log ---------------------------------------------------------------

    def log_write(self, entry: WriteEntry) -> None:
        self._db.execute(
            "INSERT INTO writes (at, sobject, record_id, ext_id, field, old_value, new_value, "
            "outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            entry,
        )

    def writes(self, sobject: str, after: int = 0) -> list[dict[str, object]]:
        rows = self._db.execute(
            "SELECT seq, at, sobject, record_id, ext_id, field, old_value, new_value, outcome "
            "FROM writes WHERE sobject = ? AND seq > ? ORDER BY seq",
            (sobject, after),
        )
        names = ("seq", "at", "sobject", "id", "external_id", "field", "old", "new", "outcome")
        return [dict(zip(names, row, strict=True)) for row in rows]

    # API-call counters -----------------------------------------------------------

    def count_call(self, day: str, kind: str) -> None:
        self._db.execute(
            "INSERT INTO api_calls (day, kind, n) VALUES (?, ?, 1) "
            "ON CONFLICT (day, kind) DO UPDATE SET n = n + 1",
            (day, kind),
        )

    def calls(self, day: str) -> dict[str, int]:
        rows = self._db.execute("SELECT kind, n FROM api_calls WHERE day = ?", (day,))
        return {kind: int(n) for kind, n in rows}

    def reset(self) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM records")
            self._db.execute("DELETE FROM api_calls")
            self._db.execute("DELETE FROM writes")
        self._seq = self._id_offset


def _load(data: str) -> Record:
    loaded = json.loads(data)
    assert isinstance(loaded, dict)
    return loaded


def _column(field: str) -> str:
    # Field names are validated against the schema before they reach SQL.
    return f"json_extract(data, '$.\"{field}\"')"


def _condition_sql(sobject: SObjectDef, cond: Condition) -> tuple[str, list[object]]:
    column = _column(cond.field)
    # SOQL compares text case-insensitively; ids and numbers compare exactly.
    fold = sobject.fields[cond.field].kind not in ("id", "reference", "int", "datetime")

    def arg(value: Scalar) -> object:
        if isinstance(value, bool):
            return 1 if value else 0
        if isinstance(value, str) and fold:
            return value.lower()
        return value

    col = f"lower({column})" if fold else column
    if cond.op in ("IN", "NOT IN"):
        assert isinstance(cond.value, tuple)
        values = [v for v in cond.value if v is not None]
        has_null = len(values) != len(cond.value)
        marks = ",".join("?" * len(values)) or "NULL"
        if cond.op == "IN":
            clause = f"({col} IN ({marks})" + (f" OR {column} IS NULL)" if has_null else ")")
        else:
            clause = f"({column} IS NOT NULL AND {col} NOT IN ({marks}))"
            if not has_null:
                clause = f"({column} IS NULL OR {col} NOT IN ({marks}))"
        return clause, [arg(v) for v in values]
    assert not isinstance(cond.value, tuple)
    if cond.value is None:
        if cond.op == "=":
            return f"{column} IS NULL", []
        if cond.op == "!=":
            return f"{column} IS NOT NULL", []
    if cond.op == "LIKE":
        return f"{column} LIKE ? ESCAPE '\\'", [cond.value]
    if cond.op == "!=":
        return f"({column} IS NULL OR {col} != ?)", [arg(cond.value)]
    return f"{col} {cond.op} ?", [arg(cond.value)]
