"""The worker's start-up check of its table state (streams/commands/table_state_check.py),
with the broker's answers given: a profile whose broker keeps its log refuses stale
state in one line (exit 2) and keeps it; one whose broker forgets it drops it."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from faust.stores import rocksdb as faust_rocksdb

from streams.commands import table_state_check
from streams.commands.base import UsageError
from streams.commands.table_state_check import check_table_state, stale_state_problem
from streams.worker.process import table_state
from streams.worker.process.table_state import Ahead
from streams.worker.settings import Settings

CHANGELOG = "booking-activity-sync-bookings-changelog"
TABLES = {"bookings": CHANGELOG}


def worker(data_dir: Path, profile: str = "kafka", **store: Any) -> Settings:
    return Settings(
        _env_file=None,
        store={"data_dir": data_dir, **store},
        broker={"profile": profile},
    )


def write_store(path: Path, offset: int) -> None:
    db = faust_rocksdb.RocksDBOptions().open(path)
    db.put(faust_rocksdb.Store.offset_key, str(offset).encode())
    db.close()


@pytest.fixture
def broker_answers(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What the broker says: its cluster id and the changelogs' end offsets."""
    answers: dict[str, Any] = {"cluster": "cluster-a", "ends": {}}

    async def view(settings: Settings, stored: Any, deadline: float) -> Any:
        return answers["cluster"], answers["ends"]

    monkeypatch.setattr(table_state_check, "_broker_view", view)
    return answers


def test_no_problem_without_state_or_with_its_own_cluster() -> None:
    assert stale_state_problem(None, "a", []) is None
    assert stale_state_problem("a", "a", []) is None
    assert stale_state_problem("a", None, []) is None


def test_another_cluster_is_named_with_the_offsets() -> None:
    ahead = [Ahead(CHANGELOG, 0, 62, 0)]
    problem = stale_state_problem("old", "new", ahead)
    assert problem is not None
    assert "'old'" in problem
    assert "'new'" in problem
    assert "stored offset 62" in problem
    problem = stale_state_problem("old", "new", [])
    assert problem is not None
    assert "'old'" in problem
    assert "offset" not in problem


def test_the_first_partition_ahead_and_the_count_of_the_others() -> None:
    ahead = [Ahead(CHANGELOG, 0, 62, 0), Ahead(CHANGELOG, 1, 9, 0), Ahead(CHANGELOG, 2, 3, 1)]
    problem = stale_state_problem(None, "a", ahead)
    assert problem is not None
    assert f"{CHANGELOG} partition 0: stored offset 62, broker's end offset 0" in problem
    assert "2 more partition(s)" in problem


async def test_state_ahead_of_a_log_the_broker_keeps_is_refused_and_kept(
    tmp_path: Path, broker_answers: dict[str, Any]
) -> None:
    settings = worker(tmp_path / "worker")
    directory = table_state.tables_dir(settings.store.data_dir, 1)
    write_store(directory / "bookings-0.db", 62)
    broker_answers["ends"] = {(CHANGELOG, 0): 0}
    with pytest.raises(UsageError) as refused:
        await check_table_state(settings, TABLES, deadline=0.0, say=io.StringIO())
    message = str(refused.value)
    assert refused.value.exit_code == 2
    assert "\n" not in message
    for part in (
        f"ACTIVITY_SYNC_DATA_DIR={settings.store.data_dir}",
        f"{CHANGELOG} partition 0",
        "stored offset 62",
        "broker's end offset 0",
        "activity-sync reset-state",
    ):
        assert part in message, message
    assert table_state.stored_offsets(directory, TABLES)[0].offset == 62  # nothing dropped


async def test_state_of_another_cluster_is_refused_even_behind_its_log(
    tmp_path: Path, broker_answers: dict[str, Any]
) -> None:
    # A new cluster whose changelog is longer than the old: offsets alone would let
    # Faust read the new history on top of the old state.
    settings = worker(tmp_path / "worker")
    directory = table_state.tables_dir(settings.store.data_dir, 1)
    write_store(directory / "bookings-0.db", 62)
    table_state.record_cluster(directory, "cluster-old")
    broker_answers["ends"] = {(CHANGELOG, 0): 500}
    with pytest.raises(UsageError, match="cluster 'cluster-old', but the broker is 'cluster-a'"):
        await check_table_state(settings, TABLES, deadline=0.0, say=io.StringIO())
    assert table_state.recorded_cluster(directory) == "cluster-old"


async def test_state_ahead_of_a_forgetful_broker_is_dropped_in_one_line(
    tmp_path: Path, broker_answers: dict[str, Any]
) -> None:
    settings = worker(tmp_path / "worker", profile="embedded")
    directory = table_state.tables_dir(settings.store.data_dir, 1)
    write_store(directory / "bookings-0.db", 62)
    broker_answers["ends"] = {}
    said = io.StringIO()
    await check_table_state(settings, TABLES, deadline=0.0, say=said)
    lines = said.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert "stored offset 62" in lines[0]
    assert "starts with empty tables" in lines[0]
    assert not table_state.holds_state(directory)
    assert table_state.recorded_cluster(directory) == "cluster-a"


async def test_state_within_the_log_starts_and_records_the_cluster(
    tmp_path: Path, broker_answers: dict[str, Any]
) -> None:
    settings = worker(tmp_path / "worker")
    directory = table_state.tables_dir(settings.store.data_dir, 1)
    write_store(directory / "bookings-0.db", 62)
    broker_answers["ends"] = {(CHANGELOG, 0): 63}
    said = io.StringIO()
    await check_table_state(settings, TABLES, deadline=0.0, say=said)
    assert said.getvalue() == ""
    assert table_state.recorded_cluster(directory) == "cluster-a"
    assert table_state.stored_offsets(directory, TABLES)[0].offset == 62


async def test_an_in_memory_store_is_not_checked(
    tmp_path: Path, broker_answers: dict[str, Any]
) -> None:
    settings = worker(tmp_path / "worker", url="memory://")
    directory = table_state.tables_dir(settings.store.data_dir, 1)
    write_store(directory / "bookings-0.db", 62)
    await check_table_state(settings, TABLES, deadline=0.0, say=io.StringIO())
    assert table_state.recorded_cluster(directory) is None
