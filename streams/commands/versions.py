"""An app version's names on the broker, and `activity-sync delete-version`.

Faust derives an app version's consumer group, and every topic it creates for itself,
from the app id and version (faust/types/settings/settings.py `_prepare_id`): version 1
is the bare app id, a later one `<app_id>-vN`. Its topics are one changelog per table,
`<group>-<table>-changelog` (faust/tables/base.py), and the leader assignor's
`<group>-__assignor-__leader` (faust/assignor/leader_assignor.py). The app's agents read
named topics (no agent channel of its own) and nothing repartitions (no `group_by`), so
that is every topic a version creates; the four app topics (booking-events, the
projections, the DLQs) are shared by all versions and never a version's.

A glob cannot name version 1's topics: `booking-activity-sync-*-changelog` also matches
`booking-activity-sync-v2-bookings-changelog`. `version_topics` lists exact names, and
`delete_version` deletes only those, only with `--yes`, and never while the version's
workers are still in its group.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any

from aiokafka.errors import for_code

from streams.commands.base import UsageError, UserError
from streams.commands.kafka_io import DEFAULT_TIMEOUT_S, admin
from streams.transport.connection import BrokerConnection

LEADER_TOPIC = "__assignor-__leader"


def check_version(version: int) -> int:
    """An app version as an option gives it: 1 or more (a one-line usage error otherwise)."""
    if version < 1:
        raise UsageError(f"app version {version}: versions start at 1")
    return version


def group_id(app_id: str, version: int) -> str:
    """Faust's consumer group (and table prefix) for an app version: `id`, then `id-vN`."""
    return app_id if version <= 1 else f"{app_id}-v{version}"


def version_topics(app_id: str, version: int, tables: Iterable[str]) -> list[str]:
    """Every topic Faust creates for this app version with these tables, exactly."""
    group = group_id(app_id, version)
    return [*(f"{group}-{table}-changelog" for table in sorted(tables)), f"{group}-{LEADER_TOPIC}"]


@dataclass(frozen=True)
class VersionOnBroker:
    """What the broker holds of one app version."""

    group: str
    topics: list[str]  # every topic of the version, existing or not
    existing: set[str]
    members: int  # workers in the version's consumer group now

    def lines(self) -> list[str]:
        found = [topic for topic in self.topics if topic in self.existing]
        lines = [
            f"group {self.group}: {self.members} running member(s); "
            f"{len(found)} of its {len(self.topics)} topics exist"
        ]
        lines += [
            f"  {topic}" + ("" if topic in self.existing else " (absent)") for topic in self.topics
        ]
        return lines


async def group_members(admin_client: Any, group: str) -> int:
    """How many consumers are in `group` now (0 for an empty or unknown group)."""
    answers = await admin_client.describe_consumer_groups([group])
    members = 0
    for answer in answers:
        for error_code, name, _state, _protocol_type, _protocol, found, *_ in answer.groups:
            if name != group:
                continue
            if error_code:
                raise UserError(f"describing group {group}: {for_code(error_code).__name__}")
            members += len(found)
    return members


async def delete_version(
    broker: BrokerConnection,
    *,
    app_id: str,
    version: int,
    running_version: int,
    tables: Iterable[str],
    yes: bool,
    out: IO[str],
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> int:
    """List app version `version`'s topics; with `yes`, delete the existing ones.

    Refused for the version these settings run (`running_version`: the workers'
    ACTIVITY_SYNC_APP_VERSION) and, with `yes`, while the version's group has members."""
    check_version(version)
    if version == running_version:
        raise UserError(
            f"version {version} is the one these settings run (ACTIVITY_SYNC_APP_VERSION); "
            "run this with the new version's settings"
        )
    group = group_id(app_id, version)
    topics = version_topics(app_id, version, tables)
    async with admin(broker, timeout_s) as admin_client:
        on_broker = VersionOnBroker(
            group,
            topics,
            set(await admin_client.list_topics()) & set(topics),
            await group_members(admin_client, group),
        )
        print(f"app version {version}:", file=out)
        for line in on_broker.lines():
            print(line, file=out)
        doomed = [topic for topic in topics if topic in on_broker.existing]
        if not yes:
            print(f"dry run: nothing deleted; add --yes to delete {len(doomed)} topics", file=out)
            return 0
        if on_broker.members:
            raise UserError(
                f"version {version}'s workers are still running ({on_broker.members} in group "
                f"{group}): stop them, then run this again"
            )
        if doomed:
            answer = await admin_client.delete_topics(doomed)
            failed = [
                f"{topic}: {for_code(code).__name__}"
                for topic, code, *_ in answer.topic_error_codes
                if code
            ]
            if failed:
                raise UserError(f"deleting failed for {'; '.join(failed)}")
    print(f"deleted {len(doomed)} topics of app version {version}", file=out, flush=True)
    return 0
