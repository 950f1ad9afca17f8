"""The orgs of a chaos run (`make chaos`, bench/chaos.py): which org each booking's
pages live in, which bookings move to another org's page, and which org each
Salesforce-side fault hits. Pure and seeded: the same seed gives the same plan.

The default org keeps the generated pages unchanged (no `page.salesforce_org`), so a
run with one org sends exactly the events it sent before orgs existed. Every other org
has its own copy of each page (`globex-p-sales-1`, "globex Sales 1", with
`salesforce_org: globex`): a page lives in one org.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any

from streams.salesforce.org_registry import DEFAULT_ORG

Event = dict[str, Any]

# The registered orgs a run adds to the default one, in this order.
EXTRA_ORGS = ("globex", "initech")
# The Salesforce-side faults of the script, in the order they run; each hits one org.
SALESFORCE_FAULTS = ("lock-rows", "expire-tokens", "limit", "down-503", "down-close", "lock-rows-2")
# The event types that carry a page (and so an org).
_PAGED = ("booking.scheduled", "booking.requested", "booking.reassigned")


def chaos_orgs(count: int) -> tuple[str, ...]:
    """The default org and the first `count - 1` of EXTRA_ORGS."""
    if not 1 <= count <= 1 + len(EXTRA_ORGS):
        raise ValueError(f"a chaos run has 1 to {1 + len(EXTRA_ORGS)} orgs, not {count}")
    return (DEFAULT_ORG, *EXTRA_ORGS[: count - 1])


def org_page(page: Event, org: str) -> Event:
    """Org `org`'s copy of a generated page (the default org's is the page itself)."""
    if org == DEFAULT_ORG:
        return page
    return {
        **page,
        "id": f"{org}-{page['id']}",
        "name": f"{org} {page['name']}",
        "salesforce_org": org,
    }


def spread_over_orgs(
    events: Iterable[Event], orgs: Sequence[str], seed: int, move_share: float = 0.5
) -> tuple[list[Event], set[str]]:
    """The events with each booking on pages of one org (picked per booking), and
    `move_share` of the bookings that have a reassignment moved by it (each of its
    reassignments) to a page of another org; the set of bookings moved. Copies of one
    event (same `source` and `id`) stay identical copies, and the stream keeps its order."""
    stream = list(events)
    if len(orgs) < 2:
        return stream, set()
    by_booking: dict[str, dict[tuple[str, str], Event]] = {}
    for event in stream:
        by_booking.setdefault(str(event["subject"]), {})[(event["source"], event["id"])] = event
    changed: dict[tuple[str, str], Event] = {}
    moved: set[str] = set()
    for booking, unique in by_booking.items():
        # One generator per booking: a booking's plan does not depend on the others.
        rng = random.Random(f"{seed}/{booking}")
        current = rng.choice(orgs)
        mover = rng.random() < move_share
        for key, event in sorted(unique.items(), key=lambda item: int(item[1]["sequence"])):
            if event["type"] not in _PAGED:
                continue
            if event["type"] == "booking.reassigned" and mover:
                current = rng.choice([org for org in orgs if org != current])
                moved.add(booking)
            data = dict(event["data"])
            data["page"] = org_page(data["page"], current)
            changed[key] = {**event, "data": data}
    return [changed.get((e["source"], e["id"]), e) for e in stream], moved


def fault_targets(orgs: Sequence[str], seed: int) -> dict[str, str]:
    """The org each of SALESFORCE_FAULTS hits: round the orgs from one the seed picks,
    so every org gets its share and each seed puts the faults elsewhere."""
    first = random.Random(seed).randrange(len(orgs))
    return {fault: orgs[(first + n) % len(orgs)] for n, fault in enumerate(SALESFORCE_FAULTS)}
