"""Rejections that heal: when Salesforce refuses an Event because of a reference, the
best record it can take instead (docs/architecture.md, "The sink's failure paths").

- OwnerId refused (INACTIVE_OWNER_OR_USER, INVALID_CROSS_REFERENCE_KEY, ENTITY_IS_DELETED,
  FIELD_INTEGRITY_EXCEPTION on OwnerId): the owner already on the Event, else
  `fallback_owner_id`, else the integration user;
- WhoId refused (deleted, merged, a converted Lead, ...): the customer's email looked
  up again, bypassing the cache (Contact, then Lead: a merge's surviving Contact or a
  conversion's Contact is what it finds), else no WhoId;
- WhatId refused (deleted, wrong object, or a Lead as WhoId forbids it): dropped.

`refused_references` and `heal_record` are pure; the client supplies the Event's
current owner, the lookup and the integration user.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from streams.salesforce.session import RecordError

REFERENCE_CODES = frozenset(
    {
        "INVALID_CROSS_REFERENCE_KEY",
        "ENTITY_IS_DELETED",
        "INACTIVE_OWNER_OR_USER",
        "FIELD_INTEGRITY_EXCEPTION",
    }
)
REFERENCE_FIELDS = ("OwnerId", "WhoId", "WhatId")


def refused_references(errors: Sequence[RecordError]) -> set[str] | None:
    """The reference fields `errors` refuse, or None when some error is of another kind
    (then nothing heals the record: it goes to the dead-letter topic)."""
    refused: set[str] = set()
    for error in errors:
        if error.status_code not in REFERENCE_CODES:
            return None
        fields = set(error.fields) & set(REFERENCE_FIELDS)
        if not fields and error.status_code == "INACTIVE_OWNER_OR_USER":
            fields = {"OwnerId"}
        if not fields or set(error.fields) - set(REFERENCE_FIELDS):
            return None
        refused |= fields
    return refused or None


@dataclass(frozen=True)
class Fallback:
    """One field replaced: `kind` for the metric and the booking's report."""

    field: str
    kind: str  # owner-on-event | owner-fallback | owner-integration-user | who-resolved |
    # who-dropped | what-dropped
    old: object
    new: object
    error: str


def heal_record(
    record: Mapping[str, object],
    errors: Sequence[RecordError],
    *,
    owner_on_event: str | None,
    fallback_owner_id: str | None,
    integration_user_id: str | None,
    who_found: str | None,
) -> tuple[dict[str, object], list[Fallback]] | None:
    """The record with its refused references replaced, and what was replaced; None
    when it cannot heal (not a reference error, or nothing left to try)."""
    refused = refused_references(errors)
    if refused is None:
        return None
    text = "; ".join(f"{e.status_code}: {e.message}" for e in errors)
    healed = dict(record)
    done: list[Fallback] = []
    if "OwnerId" in refused:
        old = record.get("OwnerId")
        for kind, candidate in (
            ("owner-on-event", owner_on_event),
            ("owner-fallback", fallback_owner_id),
            ("owner-integration-user", integration_user_id),
        ):
            if candidate and candidate != old:
                healed["OwnerId"] = candidate
                done.append(Fallback("OwnerId", kind, old, candidate, text))
                break
        else:
            return None
    if "WhoId" in refused:
        old = record.get("WhoId")
        new = who_found if who_found and who_found != old else None
        healed["WhoId"] = new
        done.append(Fallback("WhoId", "who-resolved" if new else "who-dropped", old, new, text))
        if new is not None and new.startswith("00Q"):
            healed["WhatId"] = None  # a Lead forbids a related-to record
    if "WhatId" in refused and record.get("WhatId") is not None:
        done.append(Fallback("WhatId", "what-dropped", record.get("WhatId"), None, text))
        healed["WhatId"] = None
    return (healed, done) if done else None
