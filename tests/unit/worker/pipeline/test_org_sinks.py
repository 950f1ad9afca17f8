"""The sink's lanes (streams/worker/pipeline/org_sinks.py) with scripted writers, no
I/O: one org's pause or slowness never holds another's batch, what an org cannot take
waits, marks complete their projection, lanes follow the registry."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import replace

import pytest
from pydantic import SecretStr

from streams.core.projection import PRESETS, Departure
from streams.core.sink_plan import Candidate
from streams.salesforce.org_registry import DEFAULT_ORG, OrgConnection
from streams.salesforce.settings import SalesforceSettings
from streams.worker.pipeline import org_sinks
from streams.worker.pipeline.org_sinks import OrgSinks
from streams.worker.pipeline.sink_driver import Settled, SinkDriver
from tests.unit.worker.pipeline.scripted_sink import (
    POLL_S,
    FakeConsumer,
    Rec,
    ScriptedWriter,
    backpressure,
    candidate,
    gated,
    until,
    written,
)

BASE = SalesforceSettings(
    _env_file=None,  # type: ignore[call-arg]
    login_url="https://default.my.salesforce.com",
    client_id="default",
    client_secret=SecretStr("default-secret"),
)
ENVIRON = {"ACME_SECRET": "acme-secret", "GLOBEX_SECRET": "globex-secret"}


def org(name: str, **changes: object) -> OrgConnection:
    fields: dict[str, object] = {
        "name": name,
        "login_url": f"https://{name}.my.salesforce.com",
        "client_id": name,
        "client_secret": f"env:{name.upper()}_SECRET",
    }
    return OrgConnection.model_validate({**fields, **changes})


def for_org(
    org_name: str | None, booking: str, version: int = 1, offset: int = 0, **kw: object
) -> Candidate[Rec]:
    plain = candidate(booking, version=version, offset=offset)
    return replace(plain, projection=replace(plain.projection, salesforce_org=org_name, **kw))


class Lanes:
    """`OrgSinks` over one scripted writer per org, applying outcomes as the agent does."""

    def __init__(
        self, *registered: OrgConnection, patience: float = 0.05, linger_s: float = 0.5
    ) -> None:
        self.consumer = FakeConsumer()
        self.registered = {c.name: c for c in registered}
        # What `env:` references resolve to, and the clock of the lanes' secret checks.
        self.environ = dict(ENVIRON)
        self.now = 0.0
        self.client_secrets: list[str] = []
        self.writers: dict[str, ScriptedWriter] = {}
        self.built: list[tuple[str, OrgConnection | None]] = []
        self.synced: dict[str, int] = {}
        self.marks: list[tuple[str, str, str]] = []
        self.handed_back: list[str] = []
        # Whether a backlog waits (the fold's or the sink's): set by each `batch`.
        self.catching_up = False
        self.sinks: OrgSinks[Rec] = OrgSinks(
            self.consumer,
            self._build,
            lambda: self.registered,
            mapping=PRESETS["default"],
            failed=self._failed,
            position=lambda rec: (rec.partition, rec.offset),
            catching_up=lambda: self.catching_up,
            patience=patience,
            max_queued=3,
            full_call=3,
            linger_s=linger_s,
            secrets=lambda connection: connection.secret_digest(self.environ),
            clock=lambda: self.now,
        )

    def script(self, org_name: str, *steps: object) -> ScriptedWriter:
        self.writers[org_name] = ScriptedWriter(*steps)  # type: ignore[arg-type]
        return self.writers[org_name]

    def _build(self, org_name: str, connection: OrgConnection | None) -> SinkDriver[Rec]:
        if connection is not None:
            # Resolves the secret, as the worker does.
            resolved = connection.settings(BASE, self.environ)
            self.client_secrets.append(resolved.client_secret.get_secret_value())
        self.built.append((org_name, connection))
        writer = self.writers.setdefault(org_name, ScriptedWriter())

        async def apply(settled: Sequence[Settled[Rec]]) -> None:
            own, marks = self.sinks.sort_out(org_name, settled)
            for item in marks:
                p = item.candidate.projection
                self.marks.append((org_name, p.booking_id, item.outcome.status))
            for item in own:
                if item.outcome.status != "retryable" and item.owned():
                    self.synced[item.candidate.projection.booking_id] = (
                        item.candidate.projection.version
                    )

        async def hand_back(candidates: Sequence[Candidate[Rec]]) -> None:
            self.handed_back += [c.projection.booking_id for c in candidates]

        return SinkDriver(
            writer,
            self.consumer,
            hand_back=hand_back,
            apply=apply,
            org=org_name,
            rests=lambda: not self.sinks.shared(),
            poll_s=POLL_S,
        )

    async def _failed(self, candidates: Sequence[Candidate[Rec]], exc: Exception) -> None:
        raise AssertionError(f"unexpected failure: {exc}")

    async def batch(self, *candidates: Candidate[Rec], catching_up: bool = False) -> float:
        """Offer a batch as the agent does (only what `serves`), with a backlog waiting
        or not (`catching_up`); seconds it was held."""
        start = time.monotonic()
        self.catching_up = catching_up
        served = [c for c in candidates if self.sinks.serves(c.projection)]
        lanes = self.sinks.offer(self.sinks.hold(), served)
        await self.sinks.settle(lanes)
        return time.monotonic() - start


async def test_one_org_alone_holds_the_stream_through_its_pause_as_before() -> None:
    lanes = Lanes()
    lanes.script(DEFAULT_ORG, backpressure("REQUEST_LIMIT_EXCEEDED", 0.3), written())
    held = await lanes.batch(candidate("a"))
    assert held >= 0.3, "with no registered org the batch waits the pause out"
    assert lanes.handed_back == ["a"]
    assert lanes.sinks.serves(candidate("a").projection), "one org: always served"


async def test_an_org_in_its_limit_pause_never_holds_another_orgs_batch() -> None:
    lanes = Lanes(org("acme"))
    lanes.script("acme", backpressure("REQUEST_LIMIT_EXCEEDED", 30.0))
    # Held for acme's 30 s pause, the batch would time out here.
    await asyncio.wait_for(lanes.batch(for_org("acme", "a-1"), candidate("d-1")), 5)
    await until(lambda: "d-1" in lanes.synced and "a-1" in lanes.sinks.lanes["acme"].queued)
    assert lanes.handed_back == [], "kept by acme's lane for after the pause"
    assert lanes.sinks.paused_orgs() == ["acme"]
    # While acme is paused its lane queues its new projections; the default org's flow.
    await asyncio.wait_for(lanes.batch(for_org("acme", "a-2"), candidate("d-2")), 5)
    await until(lambda: "d-2" in lanes.synced)
    assert lanes.writers["acme"].calls == [["a-1"]]
    assert lanes.writers[DEFAULT_ORG].calls == [["d-1"], ["d-2"]]
    # Once the pause is over, acme writes both in one call.
    lanes.sinks.lanes["acme"].driver.pause_until = 0.0
    await until(lambda: {"a-1", "a-2"} <= set(lanes.synced))
    assert lanes.writers["acme"].calls == [["a-1"], ["a-1", "a-2"]]


async def test_what_a_pause_left_unwritten_is_written_by_the_lane_after_it() -> None:
    lanes = Lanes(org("acme"))
    lanes.script("acme", backpressure("UNAVAILABLE", 0.3, finished=["a-1"]), written())
    start = time.monotonic()
    await lanes.batch(for_org("acme", "a-1"), for_org("acme", "a-2"))
    await until(lambda: lanes.synced == {"a-1": 1, "a-2": 1})
    assert time.monotonic() - start >= 0.3, "not before the pause is over"
    assert lanes.writers["acme"].calls == [["a-1", "a-2"], ["a-2"]]
    assert lanes.handed_back == []


async def test_the_default_org_in_a_pause_holds_nothing_once_orgs_share_the_sink() -> None:
    lanes = Lanes(org("acme"))
    lanes.script(DEFAULT_ORG, backpressure("UNAVAILABLE", 30.0))
    held = await lanes.batch(candidate("d-1"), for_org("acme", "a-1"))
    await until(lambda: "a-1" in lanes.synced)
    assert held < 5
    held = await lanes.batch(candidate("d-2"), for_org("acme", "a-2"))
    await until(lambda: "a-2" in lanes.synced)
    assert held < 5
    assert set(lanes.sinks.lanes[DEFAULT_ORG].queued) == {"d-1", "d-2"}


async def test_no_commit_passes_a_record_a_lane_holds_unwritten() -> None:
    gate = asyncio.Event()
    lanes = Lanes(org("acme"))
    lanes.script("acme", backpressure("UNAVAILABLE", 30.0))
    lanes.script("globex", gated(gate))
    lanes.registered["globex"] = org("globex")
    await lanes.batch(
        for_org("acme", "a-1", offset=7),
        for_org("globex", "g-1", offset=5),
        candidate("d-1", offset=6),
    )
    await until(lambda: "d-1" in lanes.synced and "a-1" in lanes.sinks.lanes["acme"].queued)
    # Partition 0: acme's (queued through its pause) and globex's (in its attempt).
    assert lanes.sinks.held_offsets() == {0: 5}
    gate.set()
    await until(lambda: "g-1" in lanes.synced)
    assert lanes.sinks.held_offsets() == {0: 7}


async def test_a_slow_org_goes_on_in_the_background_and_writes_what_queued_in_one_call() -> None:
    gate = asyncio.Event()
    lanes = Lanes(org("acme"))
    lanes.script("acme", gated(gate), written())
    # Held until acme answers (never, until the gate opens), this would time out.
    await asyncio.wait_for(lanes.batch(for_org("acme", "a-1"), candidate("d-1")), 5)
    assert lanes.synced == {"d-1": 1}
    # The next batches queue behind acme's attempt, newest version per booking.
    await lanes.batch(for_org("acme", "a-2", version=1), candidate("d-2"))
    await lanes.batch(for_org("acme", "a-2", version=2), for_org("acme", "a-3"))
    gate.set()
    await until(lambda: lanes.synced.get("a-3") == 1)
    assert lanes.writers["acme"].calls == [["a-1"], ["a-2", "a-3"]]
    assert lanes.synced["a-2"] == 2


async def test_a_full_lane_takes_no_more_work_until_it_has_written() -> None:
    gate = asyncio.Event()
    lanes = Lanes(org("acme"))
    lanes.script("acme", gated(gate), written())
    await lanes.batch(for_org("acme", "a-0"))
    await lanes.batch(*(for_org("acme", f"a-{i}") for i in range(1, 4)))  # max_queued 3
    assert not lanes.sinks.serves(for_org("acme", "a-4").projection)
    assert lanes.sinks.waits_for(for_org("acme", "a-4").projection) == ["acme"]
    gate.set()
    await until(lambda: len(lanes.synced) == 4)
    assert lanes.sinks.serves(for_org("acme", "a-4").projection)


@pytest.mark.parametrize(
    ("registered", "why"),
    [
        ((), "not registered"),
        ((org("acme", client_secret="env:NOT_SET"),), "its secret does not resolve here"),
    ],
)
async def test_an_org_without_a_lane_is_not_served(
    registered: tuple[OrgConnection, ...], why: str, caplog: pytest.LogCaptureFixture
) -> None:
    lanes = Lanes(*registered)
    with caplog.at_level(logging.ERROR, logger="streams.worker.pipeline.sink"):
        for _ in range(3):
            assert not lanes.sinks.serves(for_org("acme", "a-1").projection), why
    if registered:
        assert caplog.text.count("org acme: cannot connect its sink") == 1, "logged once"
    assert lanes.sinks.serves(candidate("d-1").projection)


async def test_a_changed_record_builds_the_lane_again_and_a_removed_org_gets_no_writes() -> None:
    lanes = Lanes(org("acme"))
    # The old connection's lane keeps what its outage left unwritten...
    lanes.script("acme", backpressure("UNAVAILABLE", 30.0))
    await lanes.batch(for_org("acme", "a-1"))
    await until(lambda: "a-1" in lanes.sinks.lanes["acme"].queued)
    old = lanes.sinks.lanes["acme"]
    rotated = org("acme", client_secret="env:GLOBEX_SECRET")
    lanes.registered["acme"] = rotated
    lanes.writers["acme"] = ScriptedWriter()  # ...and the new connection writes it
    await lanes.batch(for_org("acme", "a-2"))
    await until(lambda: {"a-1", "a-2"} <= set(lanes.synced))
    assert [c for name, c in lanes.built if name == "acme"] == [org("acme"), rotated]
    await until(lambda: not old.busy())
    assert old.retired
    assert old.queued == {}
    del lanes.registered["acme"]
    assert not lanes.sinks.serves(for_org("acme", "a-3").projection)
    assert "acme" not in lanes.sinks.lanes


async def test_a_secret_rotated_behind_the_same_reference_builds_the_lane_again() -> None:
    lanes = Lanes(org("acme"))
    await lanes.batch(for_org("acme", "a-1"))
    await until(lambda: "a-1" in lanes.synced)
    first = lanes.sinks.lanes["acme"]
    lanes.environ["ACME_SECRET"] = "acme-secret-2"  # a new value behind `env:ACME_SECRET`
    await lanes.batch(for_org("acme", "a-2"))
    assert lanes.sinks.lanes["acme"] is first  # not compared again before SECRET_CHECK_S
    lanes.now += org_sinks.SECRET_CHECK_S
    await lanes.batch(for_org("acme", "a-3"))
    await until(lambda: {"a-2", "a-3"} <= set(lanes.synced))
    assert [c for name, c in lanes.built if name == "acme"] == [org("acme"), org("acme")]
    assert lanes.client_secrets == ["acme-secret", "acme-secret-2"]
    assert lanes.sinks.lanes["acme"] is not first
    await until(lambda: not first.busy())
    assert first.retired


async def test_a_secret_that_does_not_resolve_for_a_moment_keeps_the_lane() -> None:
    lanes = Lanes(org("acme"))
    await lanes.batch(for_org("acme", "a-1"))
    first = lanes.sinks.lanes["acme"]
    del lanes.environ["ACME_SECRET"]  # a mounted secret being replaced, say
    lanes.now += org_sinks.SECRET_CHECK_S
    await lanes.batch(for_org("acme", "a-2"))
    await until(lambda: {"a-1", "a-2"} <= set(lanes.synced))
    assert lanes.sinks.lanes["acme"] is first
    assert len(lanes.built) == 1


async def test_a_moved_booking_is_handled_once_its_own_write_and_its_mark_are_done() -> None:
    gate = asyncio.Event()
    lanes = Lanes(org("acme"))
    lanes.script(DEFAULT_ORG, gated(gate))  # the old org's mark is slow
    mark = Departure(None, {"Booking_Id__c": "b-1", "Event_Status__c": "Moved"})
    moved = for_org("acme", "b-1", version=3, departures=(mark,))
    assert not lanes.sinks.serves(replace(moved.projection, salesforce_org="globex"))
    await lanes.batch(moved)
    await until(lambda: lanes.writers["acme"].calls == [["b-1"]])
    assert lanes.synced == {}, "the mark is not written yet: the booking stays behind"
    gate.set()
    await until(lambda: lanes.synced == {"b-1": 3})
    assert lanes.marks == [(DEFAULT_ORG, "b-1", "updated")]


async def test_a_marks_outcome_is_never_taken_for_its_projections_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Only one projection with marks is remembered: b-1's is forgotten when b-2 comes.
    monkeypatch.setattr(org_sinks, "MAX_JOINTS", 1)
    gate = asyncio.Event()
    lanes = Lanes(org("acme"))
    lanes.script(DEFAULT_ORG, gated(gate))  # the old org's marks are slow
    for booking in ("b-1", "b-2"):
        mark = Departure(None, {"Booking_Id__c": booking, "Event_Status__c": "Moved"})
        await lanes.batch(for_org("acme", booking, version=3, departures=(mark,)))
    await until(lambda: lanes.writers["acme"].items != [] and len(lanes.sinks._joints) == 1)
    gate.set()
    await until(lambda: len(lanes.marks) == 2)
    assert sorted(lanes.marks) == [(DEFAULT_ORG, "b-1", "updated"), (DEFAULT_ORG, "b-2", "updated")]
    # b-1's mark did not make it handled: it stays behind, and reconcile re-sends it.
    await until(lambda: "b-2" in lanes.synced)
    assert lanes.synced == {"b-2": 3}


async def test_a_withdrawal_goes_to_its_orgs_lane_and_completes_the_projection_like_a_mark() -> (
    None
):
    gate = asyncio.Event()
    lanes = Lanes(org("acme"), org("globex", field_mapping="oncehub"))
    lanes.script("globex", gated(gate))  # the withdrawal is slow
    # b-1's view names acme, and globex where an earlier projection may have put it.
    undone = for_org("acme", "b-1", version=4, withdrawals=("globex",))
    await lanes.batch(undone)
    await until(lambda: lanes.writers["acme"].calls == [["b-1"]])
    await until(lambda: lanes.writers["globex"].calls == [["b-1"]])
    (gone,) = lanes.writers["globex"].items
    assert gone.withdraw
    assert gone.fields == {"Booking_Id__c": "b-1", "Projection_Version__c": 4}
    assert lanes.synced == {}, "not withdrawn yet: the booking stays behind"
    gate.set()
    await until(lambda: lanes.synced == {"b-1": 4})
    assert lanes.marks == [("globex", "b-1", "updated")]


async def test_a_withdrawal_from_an_org_that_is_not_registered_is_not_waited_for() -> None:
    lanes = Lanes(org("acme"))
    undone = for_org("acme", "b-1", version=2, withdrawals=(None, "removed"))
    assert lanes.sinks.serves(undone.projection)
    assert lanes.sinks.waits_for(undone.projection) == []
    await lanes.batch(undone)
    await until(lambda: lanes.synced == {"b-1": 2})
    # The default org always has a lane: withdrawn there; nothing for "removed".
    assert [p.withdraw for p in lanes.writers[DEFAULT_ORG].items] == [True]
    assert "removed" not in lanes.writers
    assert lanes.marks == [(DEFAULT_ORG, "b-1", "updated")]


async def test_a_registered_org_gets_its_field_presets_names() -> None:
    lanes = Lanes(org("acme", field_mapping="oncehub"))
    status = for_org("acme", "a-1", fields={"Booking_Id__c": "a-1", "Event_Status__c": "x"})
    await lanes.batch(
        status,
        replace(
            status, projection=replace(status.projection, booking_id="d-1", salesforce_org=None)
        ),
    )
    await until(lambda: "a-1" in lanes.synced and "d-1" in lanes.synced)
    assert lanes.writers["acme"].items[0].fields == {
        "Booking_Id__c": "a-1",
        "ScheduleOnce__Event_status__c": "x",
    }
    assert lanes.writers[DEFAULT_ORG].items[0].fields["Event_Status__c"] == "x"


async def test_a_failing_org_is_served_but_not_steady_until_an_attempt_succeeds() -> None:
    gate = asyncio.Event()
    lanes = Lanes(org("acme"))
    lanes.script("acme", backpressure("UNAVAILABLE", 0.1), gated(gate))
    await lanes.batch(for_org("acme", "a-1"))
    acme = for_org("acme", "a-2").projection
    # The pause is over and the lane tries again: new work is taken, but the reconcile
    # timer parks rather than re-sends (and never gives up) while acme fails.
    await until(lambda: len(lanes.writers["acme"].calls) == 2)
    assert lanes.sinks.serves(acme)
    assert not lanes.sinks.writes_steadily(acme)
    gate.set()
    await until(lambda: "a-1" in lanes.synced)
    assert lanes.sinks.writes_steadily(acme)
    # With no registered org, the reconcile timer's rule stays as it always was.
    alone = Lanes()
    alone.script(DEFAULT_ORG, backpressure("UNAVAILABLE", 0.05))
    await alone.batch(candidate("d-1"))
    assert alone.sinks.writes_steadily(candidate("d-1").projection)


async def test_with_registered_orgs_a_batch_returns_while_its_calls_are_in_flight() -> None:
    gate = asyncio.Event()
    lanes = Lanes(org("acme"), patience=org_sinks.PATIENCE_S)
    lanes.script("acme", gated(gate))
    asyncio.get_running_loop().call_later(0.5, gate.set)  # a healthy org's call: 0.5 s
    await lanes.batch(for_org("acme", "a-1"))
    # Waiting for it would have returned once the call was done.
    assert not gate.is_set()
    assert "a-1" not in lanes.synced
    await until(lambda: "a-1" in lanes.synced)


async def test_a_batch_does_not_wait_for_an_org_whose_last_attempt_failed() -> None:
    gate = asyncio.Event()
    lanes = Lanes(org("acme"), org("globex"))
    lanes.script("acme", backpressure("UNAVAILABLE", 0.1), gated(gate))
    await lanes.batch(for_org("acme", "a-1"))  # fails at once
    await until(lambda: len(lanes.writers["acme"].calls) == 2)  # down: its retry hangs
    lanes.sinks.patience = 30.0  # held for it, this batch would time out here
    await asyncio.wait_for(lanes.batch(for_org("acme", "a-2"), for_org("globex", "g-1")), 5)
    await until(lambda: "g-1" in lanes.synced)
    gate.set()
    await until(lambda: {"a-1", "a-2"} <= set(lanes.synced))


async def test_one_org_alone_lets_go_of_a_batch_read_during_its_pause_when_a_rebalance_begins() -> (
    None
):
    lanes = Lanes()
    lanes.script(DEFAULT_ORG, backpressure("REQUEST_LIMIT_EXCEEDED", 30.0))
    first = asyncio.ensure_future(lanes.batch(candidate("a")))
    await until(lambda: lanes.handed_back == ["a"])
    lanes.consumer.rebalance_begins()  # the revoke step must not wait out the pause
    await asyncio.wait_for(first, 2)
    second = asyncio.ensure_future(lanes.batch(candidate("b")))
    await until(lambda: lanes.handed_back == ["a", "b"])  # read during the pause: back
    assert not second.done(), "alone, the stream holds through the pause"
    lanes.consumer.rebalance_begins()
    await asyncio.wait_for(second, 2)
    assert lanes.writers[DEFAULT_ORG].calls == [["a"]]


async def test_catching_up_each_lane_fills_a_call_before_it_writes() -> None:
    lanes = Lanes(org("acme"), org("globex"), linger_s=30.0)
    # Full takes: acme's lane waits for a full call (3 here), globex's lingers. Held
    # for the linger (30 s), the batch would time out here.
    first = lanes.batch(for_org("acme", "a-1"), for_org("globex", "g-1"), catching_up=True)
    await asyncio.wait_for(first, 5)
    await lanes.batch(for_org("acme", "a-2"), catching_up=True)
    assert lanes.writers["acme"].calls == []
    await lanes.batch(for_org("acme", "a-3"), catching_up=True)
    await until(lambda: lanes.writers["acme"].calls == [["a-1", "a-2", "a-3"]])
    assert lanes.sinks.lanes["globex"].lingering()
    assert "g-1" not in lanes.synced
    # The backlog gone (a live batch) ends the wait: globex writes what it holds at once.
    await lanes.batch(for_org("globex", "g-2"))
    await until(lambda: lanes.writers["globex"].calls == [["g-1", "g-2"]])
    # With no registered org nothing lingers: the batch already fills calls.
    alone = Lanes(linger_s=30.0)
    await alone.batch(candidate("d-1"), catching_up=True)
    assert alone.synced == {"d-1": 1}


async def test_a_lingering_lane_writes_once_the_backlog_is_gone_with_no_new_batch() -> None:
    # The fold catches up: a booking folded twice meanwhile is written once, newest.
    lanes = Lanes(org("acme"), linger_s=30.0)
    await lanes.batch(for_org("acme", "a-1", version=1), catching_up=True)
    await lanes.batch(for_org("acme", "a-1", version=2), catching_up=True)
    assert lanes.sinks.lanes["acme"].lingering()
    lanes.catching_up = False  # the fold's last catch-up batch: no sink batch follows
    await until(lambda: lanes.synced == {"a-1": 2})
    assert lanes.writers["acme"].calls == [["a-1"]]


async def test_a_lingering_lane_writes_when_its_linger_is_over() -> None:
    lanes = Lanes(org("acme"), linger_s=0.2)
    await lanes.batch(for_org("acme", "a-1"), catching_up=True)
    await until(lambda: "a-1" in lanes.synced)
    assert lanes.writers["acme"].calls == [["a-1"]]
