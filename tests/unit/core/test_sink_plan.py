from __future__ import annotations

import pytest

from streams.core.projection import Projection
from streams.core.sink_plan import Candidate, plan_writes


def projection(booking: str, version: int) -> Projection:
    return Projection(
        booking_id=booking,
        version=version,
        external_id_field="Booking_Id__c",
        fields={"Booking_Id__c": booking, "Event_Status__c": "Scheduled"},
        lookup_email=None,
        customer_name=None,
        related_type=None,
    )


# (batch as (booking, version, forced), synced versions, expected writes, superseded, already)
SCENARIOS = [
    pytest.param([("a", 1)], {}, [("a", 1)], 0, 0, id="new booking"),
    pytest.param([("a", 1), ("a", 3), ("a", 2)], {}, [("a", 3)], 2, 0, id="newest wins"),
    pytest.param([("a", 2)], {"a": 2}, [], 0, 1, id="already written"),
    pytest.param([("a", 2)], {"a": 5}, [], 0, 1, id="older than written"),
    pytest.param([("a", 2, True)], {"a": 2}, [("a", 2)], 0, 0, id="forced replay rewrites"),
    pytest.param(
        [("a", 2, True), ("a", 3)], {"a": 3}, [("a", 3)], 1, 0, id="force survives supersede"
    ),
    pytest.param(
        [("a", 1), ("b", 4), ("a", 2), ("c", 1)],
        {"b": 4},
        [("a", 2), ("c", 1)],
        1,
        1,
        id="several bookings",
    ),
]


@pytest.mark.parametrize(("batch", "synced", "expected", "superseded", "already"), SCENARIOS)
def test_plan_writes(
    batch: list[tuple[str, int] | tuple[str, int, bool]],
    synced: dict[str, int],
    expected: list[tuple[str, int]],
    superseded: int,
    already: int,
) -> None:
    candidates = [
        Candidate(projection(item[0], item[1]), meta=index, forced=len(item) > 2)
        for index, item in enumerate(batch)
    ]
    plan = plan_writes(candidates, lambda booking: synced.get(booking, 0))
    written = sorted((c.projection.booking_id, c.projection.version) for c in plan.to_write)
    assert written == sorted(expected)
    assert plan.superseded == superseded
    assert plan.already_synced == already


def test_plan_keeps_the_newest_record_as_meta() -> None:
    candidates = [Candidate(projection("a", v), meta=f"record-{v}") for v in (1, 2)]
    plan = plan_writes(candidates, lambda _: 0)
    assert [c.meta for c in plan.to_write] == ["record-2"]


def test_projections_of_another_app_version_are_skipped() -> None:
    candidates = [
        Candidate(projection("a", 7), meta="old-rules", app_version="1"),
        Candidate(projection("b", 1), meta="new-rules", app_version="2"),
        Candidate(projection("c", 1), meta="no-header"),
    ]
    plan = plan_writes(candidates, lambda _: 0, app_version="2")
    assert sorted(c.meta for c in plan.to_write) == ["new-rules", "no-header"]
    assert plan.other_app_version == 1


def test_a_projection_the_sink_does_not_serve_waits_unwritten() -> None:
    candidates = [
        Candidate(projection("a", 1), meta=0),
        Candidate(projection("b", 2), meta=1),
        Candidate(projection("b", 3), meta=2),
        Candidate(projection("c", 1), meta=3),
    ]
    plan = plan_writes(
        candidates,
        lambda booking: {"c": 1}.get(booking, 0),
        served=lambda p: p.booking_id != "b",
    )
    assert [c.projection.booking_id for c in plan.to_write] == ["a"]
    # Only b's newest waits; c is already written, whatever `served` says.
    assert [(c.projection.booking_id, c.projection.version) for c in plan.waiting] == [("b", 3)]
    assert (plan.superseded, plan.already_synced) == (1, 1)
