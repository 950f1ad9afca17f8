"""`activity-sync reset-state` (streams/commands/reset_state.py): this app version's
tables set aside (or deleted), nothing else; refused while a worker holds them."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from faust.stores import rocksdb as faust_rocksdb

from streams.commands.base import UserError
from streams.commands.reset_state import reset_state
from streams.worker.process import table_state
from streams.worker.settings import Settings


def settings_for(data_dir: Path, version: int = 1) -> Settings:
    return Settings(_env_file=None, store={"data_dir": data_dir}, app={"version": version})


def write_store(path: Path) -> None:
    faust_rocksdb.RocksDBOptions().open(path).close()


def test_the_state_is_moved_aside_by_default(tmp_path: Path) -> None:
    tables = table_state.tables_dir(tmp_path, 2)
    write_store(tables / "bookings-0.db")
    write_store(table_state.tables_dir(tmp_path, 1) / "bookings-0.db")  # another version
    out = io.StringIO()
    assert reset_state(settings_for(tmp_path, 2), delete=False, out=out) == 0
    moved = [p for p in (tmp_path / "v2").iterdir() if p.name.startswith("tables.reset-")]
    assert len(moved) == 1
    assert (moved[0] / "bookings-0.db").is_dir()
    assert not tables.exists()
    assert table_state.holds_state(table_state.tables_dir(tmp_path, 1))
    assert str(moved[0]) in out.getvalue()


def test_delete_removes_it(tmp_path: Path) -> None:
    tables = table_state.tables_dir(tmp_path, 1)
    write_store(tables / "bookings-0.db")
    out = io.StringIO()
    assert reset_state(settings_for(tmp_path), delete=True, out=out) == 0
    assert not tables.exists()
    assert list((tmp_path / "v1").iterdir()) == []
    assert "deleted" in out.getvalue()


def test_nothing_to_reset(tmp_path: Path) -> None:
    out = io.StringIO()
    assert reset_state(settings_for(tmp_path), delete=False, out=out) == 0
    assert "nothing to reset" in out.getvalue()


def test_refused_while_a_worker_holds_a_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables = table_state.tables_dir(tmp_path, 1)
    write_store(tables / "bookings-0.db")
    monkeypatch.setattr(table_state, "store_in_use", lambda directory: tables / "bookings-0.db")
    with pytest.raises(UserError, match=r"a worker is running on .*bookings-0\.db"):
        reset_state(settings_for(tmp_path), delete=False, out=io.StringIO())
    assert table_state.holds_state(tables)
