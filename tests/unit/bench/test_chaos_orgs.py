"""The orgs of a chaos run (bench/chaos_orgs.py): bookings spread over the orgs, some
moved across them by a reassignment, copies kept identical, one org the identity, and
the Salesforce-side faults spread over every org."""

from __future__ import annotations

from collections import Counter

import pytest

from bench.chaos_orgs import (
    EXTRA_ORGS,
    SALESFORCE_FAULTS,
    chaos_orgs,
    fault_targets,
    org_page,
    spread_over_orgs,
)
from devkit.verification import expected_by_org
from schemas import event_from_dict
from streams.commands.generate import generate_events
from streams.salesforce.org_registry import DEFAULT_ORG

ORGS = chaos_orgs(3)


def _org_of(event: dict[str, object]) -> str:
    page = event["data"]["page"]  # type: ignore[index]
    return str(page.get("salesforce_org") or DEFAULT_ORG)


def test_the_orgs_of_a_run_are_the_default_one_and_the_registered_ones() -> None:
    assert chaos_orgs(1) == (DEFAULT_ORG,)
    assert chaos_orgs(3) == (DEFAULT_ORG, *EXTRA_ORGS)
    with pytest.raises(ValueError, match="1 to 3 orgs"):
        chaos_orgs(4)


def test_one_org_sends_the_generated_events_unchanged() -> None:
    events = list(generate_events(200, 5))
    spread, moved = spread_over_orgs(events, chaos_orgs(1), 5)
    assert spread == events
    assert moved == set()


def test_bookings_are_spread_over_every_org_and_valid() -> None:
    events = list(generate_events(600, 11))
    spread, _ = spread_over_orgs(events, ORGS, 11)
    assert len(spread) == len(events)
    for event in spread:
        event_from_dict(dict(event))  # the contract accepts every one
    first_org: dict[str, str] = {}
    for event in spread:
        if event["type"] in ("booking.scheduled", "booking.requested"):
            first_org.setdefault(event["subject"], _org_of(event))
    spread_count = Counter(first_org.values())
    assert set(spread_count) == set(ORGS)
    assert min(spread_count.values()) > len(first_org) / 6


def test_copies_of_an_event_stay_identical_copies_in_the_stream_s_order() -> None:
    events = list(generate_events(400, 3))
    spread, _ = spread_over_orgs(events, ORGS, 3)
    copies: dict[tuple[str, str], dict[str, object]] = {}
    for before, after in zip(events, spread, strict=True):
        assert (before["source"], before["id"]) == (after["source"], after["id"])
        key = (after["source"], after["id"])
        assert copies.setdefault(key, after) == after
    assert len(copies) < len(spread)  # the generator did re-send some


def test_a_page_lives_in_one_org() -> None:
    page = {"id": "p-sales-1", "name": "Sales 1", "salesforce_connected": True}
    assert org_page(page, DEFAULT_ORG) is page
    assert org_page(page, "globex") == {
        "id": "globex-p-sales-1",
        "name": "globex Sales 1",
        "salesforce_connected": True,
        "salesforce_org": "globex",
    }


def test_moved_bookings_change_org_and_leave_a_mark_in_the_old_one() -> None:
    events = list(generate_events(800, 2026))
    spread, moved = spread_over_orgs(events, ORGS, 2026)
    assert moved
    for booking in moved:
        unique = {(e["source"], e["id"]): e for e in spread if e["subject"] == booking}
        paged = [
            e
            for e in sorted(unique.values(), key=lambda e: int(e["sequence"]))
            if "page" in (e.get("data") or {})
        ]
        orgs = [_org_of(e) for e in paged]
        # Each reassignment of a moved booking goes to another org than the page before.
        for before, event in zip(orgs, paged[1:], strict=False):
            if event["type"] == "booking.reassigned":
                assert _org_of(event) != before
    expected = expected_by_org(spread)
    assert set(expected) == set(ORGS)
    marks = [
        (org, booking)
        for org, events_of in expected.items()
        for booking, fields in events_of.items()
        if "OwnerId" not in fields
    ]
    assert marks
    assert {booking for _, booking in marks} <= moved


def test_the_same_seed_gives_the_same_plan_and_another_seed_another() -> None:
    events = list(generate_events(300, 8))
    assert spread_over_orgs(events, ORGS, 8) == spread_over_orgs(events, ORGS, 8)
    assert spread_over_orgs(events, ORGS, 8)[0] != spread_over_orgs(events, ORGS, 9)[0]


def test_the_salesforce_faults_hit_every_org_in_turn() -> None:
    targets = fault_targets(ORGS, 2026)
    assert list(targets) == list(SALESFORCE_FAULTS)
    assert Counter(targets.values()) == {org: 2 for org in ORGS}
    assert len({tuple(fault_targets(ORGS, seed).values()) for seed in range(10)}) == 3
    assert set(fault_targets(chaos_orgs(1), 4).values()) == {DEFAULT_ORG}
