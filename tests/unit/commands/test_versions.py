"""An app version's names and `delete-version` (streams/commands/versions.py)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from fnmatch import fnmatch
from typing import Any

import faust
import pytest

from streams.commands import versions
from streams.commands.base import UsageError, UserError
from streams.commands.versions import (
    VersionOnBroker,
    check_version,
    delete_version,
    group_id,
    version_topics,
)
from streams.transport.connection import BrokerConnection
from streams.worker.app import app

APP_ID = "booking-activity-sync"
TABLES = sorted(app.tables)
SHARED = [
    "booking-events",
    "booking-events.dlq",
    "activity-projections",
    "activity-projections.dlq",
]


def test_version_1_topics_are_exact() -> None:
    assert TABLES == ["bookings", "due", "synced"]
    assert version_topics(APP_ID, 1, TABLES) == [
        "booking-activity-sync-bookings-changelog",
        "booking-activity-sync-due-changelog",
        "booking-activity-sync-synced-changelog",
        "booking-activity-sync-__assignor-__leader",
    ]


@pytest.mark.parametrize("version", [1, 2, 3, 10])
def test_the_names_are_fausts(version: int) -> None:
    # Faust names them from conf.id (the app id and version): ask Faust itself.
    faust_app = faust.App(APP_ID, version=version)
    for name in TABLES:
        faust_app.Table(name)
    fausts = [table.changelog_topic.get_topic_name() for table in faust_app.tables.values()]
    leader: Any = faust_app._leader_assignor  # its topic name is not in Faust's types
    fausts.append(leader._leader_topic_name)
    assert faust_app.conf.id == group_id(APP_ID, version)
    assert sorted(version_topics(APP_ID, version, TABLES)) == sorted(fausts)


def test_version_1_lists_no_topic_of_another_version_where_the_old_glob_did() -> None:
    v1 = version_topics(APP_ID, 1, TABLES)
    others = [topic for n in range(2, 13) for topic in version_topics(APP_ID, n, TABLES)]
    # docs/operations.md's old cleanup step: delete `booking-activity-sync-*-changelog`.
    glob = "booking-activity-sync-*-changelog"
    assert [t for t in v1 if t.endswith("-changelog")] == [t for t in v1 if fnmatch(t, glob)]
    assert "booking-activity-sync-v2-bookings-changelog" in [t for t in others if fnmatch(t, glob)]
    assert not set(v1) & set(others)
    assert not set(v1) & set(SHARED)
    # No two versions share a name either (v1 vs v10, v2 vs v20 ...).
    all_versions = [version_topics(APP_ID, n, TABLES) for n in range(1, 25)]
    flat = [topic for topics in all_versions for topic in topics]
    assert len(flat) == len(set(flat))


def test_check_version() -> None:
    assert check_version(1) == 1
    with pytest.raises(UsageError, match="versions start at 1"):
        check_version(0)


def test_lines_name_every_topic_and_the_absent_ones() -> None:
    topics = version_topics(APP_ID, 1, TABLES)
    lines = VersionOnBroker(APP_ID, topics, set(topics[:2]), 0).lines()
    assert lines[0] == f"group {APP_ID}: 0 running member(s); 2 of its 4 topics exist"
    assert lines[1:] == [
        "  booking-activity-sync-bookings-changelog",
        "  booking-activity-sync-due-changelog",
        "  booking-activity-sync-synced-changelog (absent)",
        "  booking-activity-sync-__assignor-__leader (absent)",
    ]


@dataclass
class Answer:
    groups: list[tuple[Any, ...]] = field(default_factory=list)
    topic_error_codes: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class FakeAdmin:
    """A broker holding the shared topics and versions 1 and 2's topics."""

    members: dict[str, int]
    topics: set[str] = field(
        default_factory=lambda: {
            *SHARED,
            *version_topics(APP_ID, 1, TABLES),
            *version_topics(APP_ID, 2, TABLES),
        }
    )
    deleted: list[list[str]] = field(default_factory=list)

    async def list_topics(self) -> list[str]:
        return sorted(self.topics)

    async def describe_consumer_groups(self, groups: list[str]) -> list[Answer]:
        found = [
            (0, g, "Stable", "consumer", "faust", [("m", "c", "h", b"", b"")] * self.members[g])
            for g in groups
        ]
        return [Answer(groups=found)]

    async def delete_topics(self, topics: list[str]) -> Answer:
        self.deleted.append(list(topics))
        self.topics -= set(topics)
        return Answer(topic_error_codes=[(topic, 0) for topic in topics])


def with_admin(monkeypatch: pytest.MonkeyPatch, fake: FakeAdmin) -> None:
    @asynccontextmanager
    async def admin(broker: BrokerConnection, timeout_s: float) -> AsyncIterator[FakeAdmin]:
        yield fake

    monkeypatch.setattr(versions, "admin", admin)


async def run(version: int, *, yes: bool, running: int = 2) -> str:
    out = io.StringIO()
    code = await delete_version(
        BrokerConnection.named("kafka://127.0.0.1:9", "kafka"),
        app_id=APP_ID,
        version=version,
        running_version=running,
        tables=TABLES,
        yes=yes,
        out=out,
    )
    assert code == 0
    return out.getvalue()


async def test_without_yes_it_lists_and_deletes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeAdmin({APP_ID: 2})
    with_admin(monkeypatch, fake)
    text = await run(1, yes=False)
    assert f"group {APP_ID}: 2 running member(s); 4 of its 4 topics exist" in text
    assert "dry run: nothing deleted; add --yes to delete 4 topics" in text
    assert "v2" not in text
    assert fake.deleted == []


async def test_yes_deletes_exactly_the_old_versions_topics(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeAdmin({APP_ID: 0})
    with_admin(monkeypatch, fake)
    text = await run(1, yes=True)
    assert fake.deleted == [version_topics(APP_ID, 1, TABLES)]
    assert fake.topics == {*SHARED, *version_topics(APP_ID, 2, TABLES)}
    assert text.endswith("deleted 4 topics of app version 1\n")
    # Again: nothing left to delete, and no delete request for absent topics.
    again = await run(1, yes=True)
    assert fake.deleted == [version_topics(APP_ID, 1, TABLES)]
    assert "0 of its 4 topics exist" in again


async def test_yes_is_refused_while_the_versions_workers_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeAdmin({APP_ID: 1})
    with_admin(monkeypatch, fake)
    with pytest.raises(UserError, match="still running"):
        await run(1, yes=True)
    assert fake.deleted == []


async def test_the_running_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeAdmin({f"{APP_ID}-v2": 0})
    with_admin(monkeypatch, fake)
    with pytest.raises(UserError, match="version 2 is the one these settings run"):
        await run(2, yes=True, running=2)
    assert fake.deleted == []
