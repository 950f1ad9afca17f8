"""The emulator's SQLite store: a record is found by its 18- or 15-character id, and the
lookup uses the id index (a scan made every reference check cost the whole org)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devkit.salesforce_emulator.schema import CONTACT, USER
from devkit.salesforce_emulator.store import Store, _id_is


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "org.sqlite")
    with store.transaction():
        for _ in range(50):
            seq, record_id = store.new_id(CONTACT)
            store.insert(CONTACT, seq, {"Id": record_id, "LastName": f"c{seq}"})
    return store


def ids(store: Store) -> list[str]:
    return [str(r["Id"]) for r in store.all(CONTACT)]


@pytest.mark.parametrize("length", [18, 15])
def test_a_record_is_found_by_either_form_of_its_id(store: Store, length: int) -> None:
    for record_id in ids(store):
        for found in (store.get_any(record_id[:length]), store.get(CONTACT, record_id[:length])):
            assert found is not None
            assert found["Id"] == record_id


@pytest.mark.parametrize(
    "name",
    [
        "001000000000000",  # 15: no such record
        "003000000000000AAA",  # 18: no such record
    ],
)
def test_an_unknown_id_finds_nothing(store: Store, name: str) -> None:
    assert store.get_any(name) is None
    assert store.get(CONTACT, name) is None


def test_an_id_of_another_object_is_not_read_as_this_one(store: Store) -> None:
    assert store.get(USER, ids(store)[0]) is None


@pytest.mark.parametrize("length", [18, 15])
def test_the_id_lookup_searches_the_index_not_the_table(store: Store, length: int) -> None:
    where, args = _id_is(ids(store)[0][:length])
    plan = " ".join(
        str(row[-1])
        for row in store._db.execute(
            f"EXPLAIN QUERY PLAN SELECT data FROM records WHERE {where}", args
        )
    )
    assert "USING INDEX" in plan, plan
    assert "SCAN" not in plan, plan
