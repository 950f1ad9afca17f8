"""Generated bookings (streams/commands/generate.py): ids that never collide across seeds,
and the docs' examples name bookings that get an Event."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devkit.verification import expected_events
from streams.commands.base import UsageError
from streams.commands.generate import generate_events, seed_id_prefix
from streams.commands.produce import check_id_prefix, generated_lines

REPO = Path(__file__).resolve().parents[3]


def booking_ids(n: int, seed: int, id_prefix: str | None = None) -> set[str]:
    return {str(e["subject"]) for e in generate_events(n, seed, id_prefix=id_prefix)}


@pytest.mark.parametrize(
    ("seed", "id_prefix", "first"),
    [
        (0, None, "b-s0-000000"),
        (7, None, "b-s7-000000"),
        (7, "mine-", "mine-000000"),
        (7, "", "000000"),
    ],
)
def test_booking_ids_carry_the_seed_unless_a_prefix_is_given(
    seed: int, id_prefix: str | None, first: str
) -> None:
    assert min(booking_ids(5, seed, id_prefix)) == first


def test_two_seeds_never_share_a_booking_id() -> None:
    # Both used to start at b-000000: a second seed's events were conflicting duplicates.
    assert not booking_ids(50, 1) & booking_ids(50, 2)
    assert seed_id_prefix(1) != seed_id_prefix(11)  # b-s1- is no prefix of b-s11-'s ids
    assert not booking_ids(20, 1) & booking_ids(20, 11)


def test_the_same_seed_sends_the_same_events() -> None:
    assert list(generate_events(30, 5)) == list(generate_events(30, 5))
    assert [line for _, line in generated_lines(3, 5)] == [
        line for _, line in generated_lines(3, 5, seed_id_prefix(5))
    ]


def test_an_id_prefix_the_contract_refuses_is_a_usage_error() -> None:
    check_id_prefix("mine-")
    with pytest.raises(UsageError) as refused:
        check_id_prefix("x" * 300)  # subject: at most 255 characters
    assert refused.value.exit_code == 2
    assert "--id-prefix" in str(refused.value)


# The docs' walk-throughs: `produce --generate N [--seed S]`, then a booking looked at.
# Each must name a booking the fold gives a Salesforce Event.
PRODUCED = r"produce --generate (\d+)(?: --seed (\d+))?"
EXAMPLES = {
    "README.md": PRODUCED + r" && activity-sync status (\S+)",
    "docker-compose.yml": PRODUCED + r"[^\n]*\n.*/bookings/([^/\s]+)/",
}


@pytest.mark.parametrize("doc", sorted(EXAMPLES))
def test_the_docs_examples_name_a_generated_booking_with_an_event(doc: str) -> None:
    example = re.search(EXAMPLES[doc], (REPO / doc).read_text())
    assert example, f"{doc}: the example is gone"
    count, seed, booking = int(example.group(1)), int(example.group(2) or 0), example.group(3)
    events = list(generate_events(count, seed))
    assert booking in expected_events(events), (
        f"{doc}: {booking} gets no Salesforce Event from produce --generate {count}"
    )
