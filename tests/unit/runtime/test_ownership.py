"""Whether this worker owns a partition (streams/runtime/ownership.py): the ack guard's
current record, the sink's owned record, the timers' held partition."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP
from mode import Signal

from streams.runtime.ownership import Ownership, record_is_current

A, B = TP("events", 0), TP("events", 1)


@pytest.mark.parametrize(
    ("message_generation", "current_generation", "flow_active", "current"),
    [
        (3, 3, True, True),  # the normal case
        (None, 3, True, True),  # not from a fetch: Faust's own rules
        (2, 3, True, False),  # fetched before the last rebalance
        (3, 3, False, False),  # during a rebalance: skipped or unfinished records
        (None, 3, False, False),
        (2, 3, False, False),
    ],
)
def test_a_record_is_current(
    message_generation: int | None, current_generation: int, flow_active: bool, current: bool
) -> None:
    assert (
        record_is_current(
            message_generation=message_generation,
            current_generation=current_generation,
            flow_active=flow_active,
        )
        is current
    )


@dataclass
class Flow:
    active: bool = True

    def is_active(self) -> bool:
        return self.active


@dataclass
class Consumer:
    assigned: set[TP] = field(default_factory=lambda: {A, B})

    def assignment(self) -> set[TP]:
        return set(self.assigned)


class App:
    """The parts of a Faust app the rule reads, with mode's own signals."""

    def __init__(self) -> None:
        self.consumer_generation_id = 3
        self.rebalancing_count = 0
        self.flow_control = Flow()
        self.consumer = Consumer()
        self.on_partitions_revoked: Any = Signal().with_default_sender(self)
        self.on_partitions_assigned: Any = Signal().with_default_sender(self)

    async def rebalance_begins(self, revoked: set[TP]) -> None:
        """As Faust runs it: count, suspend the flow, revoke (once the agents are
        awaited); the consumer's assignment changes only after the revoke step."""
        self.rebalancing_count += 1
        self.flow_control.active = False
        await self.on_partitions_revoked.send(revoked)

    async def rebalance_ends(self, assigned: set[TP]) -> None:
        self.consumer_generation_id += 1
        self.consumer.assigned = set(assigned)
        await self.on_partitions_assigned.send(assigned)
        self.flow_control.active = True


def event(tp: TP, generation: int | None = 3) -> Any:
    return SimpleNamespace(message=SimpleNamespace(tp=tp, generation_id=generation))


@pytest.fixture
def app() -> App:
    return App()


@pytest.fixture
def ownership(app: App) -> Ownership:
    owner = Ownership(app)
    owner.follow_rebalances()
    return owner


def test_a_current_record_of_an_assigned_partition_is_owned(ownership: Ownership) -> None:
    assert ownership.current(event(A).message)
    assert ownership.owns(event(A).message)
    assert not ownership.owns(event(TP("events", 7)).message)  # never assigned
    assert not ownership.owns(event(A, generation=2).message)  # an older generation


async def test_a_revoked_partition_is_not_owned_while_the_assignment_lags(
    app: App, ownership: Ownership
) -> None:
    await app.rebalance_begins({A})
    app.flow_control.active = True  # even with the flow resumed early
    assert A in app.consumer.assignment()  # still there: the revoke step is not over
    assert not ownership.owns(event(A).message)
    assert ownership.owns(event(B).message)


async def test_a_partition_assigned_again_is_owned_again(app: App, ownership: Ownership) -> None:
    await app.rebalance_begins({A, B})
    await app.rebalance_ends({A})
    assert ownership.owns(event(A, generation=4).message)
    assert not ownership.owns(event(A, generation=3).message)  # fetched before it
    assert not ownership.owns(event(B, generation=4).message)


async def test_without_following_rebalances_no_revocation_is_seen(
    app: App, ownership: Ownership
) -> None:
    unfollowed = Ownership(app)
    await app.rebalance_begins({A})
    app.flow_control.active = True
    assert not ownership.owns(event(A).message)
    assert unfollowed.owns(event(A).message)  # the lagging assignment alone


class Assignor:
    """Faust's assignor as the rule asks it: a new set per call, a new assignment object
    per rebalance."""

    def __init__(self, tps: set[TP]) -> None:
        self.calls = 0
        self.rebalance(tps)

    def rebalance(self, tps: set[TP]) -> None:
        self._assignment = SimpleNamespace(actives=set(tps))

    def assigned_actives(self) -> set[TP]:
        self.calls += 1
        return set(self._assignment.actives)


def test_a_table_partition_is_held_while_the_assignor_names_it() -> None:
    changelog = TP("app-due-changelog", 1)
    assignor = Assignor({changelog})
    ownership = Ownership(SimpleNamespace(assignor=assignor))
    assert ownership.holds(changelog)
    assert not ownership.holds(TP("app-due-changelog", 0))
    assert assignor.calls == 1  # the same assignment: its set is kept
    assignor.rebalance(set())
    assert not ownership.holds(changelog)
    assert assignor.calls == 2
