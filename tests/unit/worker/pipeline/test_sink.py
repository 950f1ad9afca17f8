"""The sink agent's reading of a batch (streams/worker/pipeline/sink.py): each record decoded by
streams/core/projection_record.py, an undecodable one set aside in
activity-projections.dlq with its reason, the rest planned and handed to the driver."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from streams.core import projection_record
from streams.core.projection import Projection
from streams.core.sink_plan import Candidate
from streams.worker.pipeline import sink


@dataclass
class Message:
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    key: bytes = b"b-1"
    partition: int = 0
    offset: int = 0


@dataclass
class Event:
    message: Message


class Synced:
    def under(self, event: Any) -> Synced:
        return self

    def get(self, key: bytes) -> int | None:
        return None


class Sinks:
    """The org lanes as `write_batch` uses them: every org served, what was offered."""

    def __init__(self) -> None:
        self.written: list[Candidate[Any]] = []

    def hold(self) -> object:
        return object()

    def serves(self, projection: Projection) -> bool:
        return True

    def takes_work(self, org: str) -> bool:
        return True

    def offer(self, held: object, candidates: Sequence[Candidate[Any]]) -> list[object]:
        self.written.extend(candidates)
        return []

    async def settle(self, lanes: Sequence[object]) -> None:
        pass


def projection(version: int = 1) -> Projection:
    return Projection(
        booking_id="b-1",
        version=version,
        external_id_field="Booking_Id__c",
        fields={"Booking_Id__c": "b-1"},
        lookup_email=None,
        customer_name=None,
        related_type=None,
    )


def record(version: int = 1, *, forced: bool = False) -> Event:
    value, headers = projection_record.encode(
        projection(version), app_version=sink.settings.app.version, forced=forced
    )
    return Event(Message(value, headers, offset=version))


@pytest.fixture
def dead(monkeypatch: pytest.MonkeyPatch) -> list[tuple[object, Event, str, str]]:
    letters: list[tuple[object, Event, str, str]] = []

    async def send_to_dead_letter(dlq: object, event: Event, code: str, message: str) -> None:
        letters.append((dlq, event, code, message))

    monkeypatch.setattr(sink, "send_to_dead_letter", send_to_dead_letter)
    monkeypatch.setattr(sink, "synced", Synced())
    return letters


async def test_an_undecodable_record_goes_to_the_projections_dlq_with_its_reason(
    dead: list[tuple[object, Event, str, str]],
) -> None:
    broken = Event(Message(b"{not a projection", offset=9))
    sinks = Sinks()
    await sink.write_batch(sinks, [broken, record(2)])  # type: ignore[arg-type, list-item]
    assert [(dlq, event, code) for dlq, event, code, _ in dead] == [
        (sink.projections_dlq_topic, broken, "undecodable")
    ]
    assert "JSONDecodeError" in dead[0][3]
    # The rest of the batch is written.
    assert [c.projection.version for c in sinks.written] == [2]


async def test_a_decoded_record_keeps_what_its_headers_say(
    dead: list[tuple[object, Event, str, str]],
) -> None:
    forced = record(3, forced=True)
    candidates = await sink._decode([forced])  # type: ignore[list-item]
    assert candidates == [
        Candidate(projection(3), forced, forced=True, app_version=str(sink.settings.app.version))
    ]
    assert dead == []


def test_a_backlog_counts_until_five_seconds_after_the_fold_and_the_sink_caught_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [100.0]
    backlogs = sink.Backlogs(clock=lambda: now[0])
    policy = sink.fold_policy
    monkeypatch.setattr(policy, "backlog", 0)
    assert not backlogs(), "nothing waits: live traffic never lingers"
    monkeypatch.setattr(policy, "backlog", 50_000)  # the fold catches up
    assert policy.catching_up
    assert backlogs()
    monkeypatch.setattr(policy, "backlog", 0)  # its last catch-up batch is done
    now[0] += 4.9
    assert backlogs(), "its projections are still on their way to the sink"
    now[0] += 0.2
    assert not backlogs()
    backlogs.sink_backlog = sink.settings.sink.batch_size  # a sink batch waits behind
    assert backlogs()
