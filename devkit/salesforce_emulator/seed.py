"""The emulated org's default records: what generated bookings and the tests refer to.

A strict org refuses an Event whose OwnerId, WhoId or WhatId names no record, so the
emulator starts (and every `POST /__admin/reset` ends) with:
- the integration user (the credentials' user) and the pool of Users generated owners
  are drawn from (`streams.commands.generate.pool_ids`), all active;
- the pools of Contacts, Leads and Cases generated `related` ids are drawn from.
Seeded records carry no email, and SOQL queries and the admin API's record listing
leave them out (`GET records/{T}?all=1` shows them too), so lookups and query results
show only what clients and tests wrote; references to them are checked as any.
"""

from __future__ import annotations

import functools

from devkit.salesforce_emulator.org import Org
from devkit.salesforce_emulator.schema import resolve_sobject
from devkit.salesforce_emulator.sobjects import SObjects
from streams.commands.generate import POOL_PREFIXES, pool_ids

# The stored marker of a seeded record (not a field: never rendered or queried).
SEED_MARK = "__seed"


def _fields(sobject: str, n: int) -> dict[str, object]:
    if sobject == "User":
        return {"Username": f"owner-{n}@pool.example", "LastName": f"Owner {n}"}
    if sobject == "Contact":
        return {"LastName": f"Contact {n}"}
    if sobject == "Lead":
        return {"LastName": f"Lead {n}", "Company": "Pool"}
    return {"Subject": f"Case {n}"}


@functools.cache
def _pools() -> tuple[tuple[str, str, dict[str, object]], ...]:
    """(sObject, id, fields) of every pool record: the same in every org, and costly
    to derive (a seeded generator per id), so derived once per process."""
    return tuple(
        (name, rid, _fields(name, n))
        for name, prefix in POOL_PREFIXES.items()
        for n, rid in enumerate(pool_ids(prefix))
    )


def seed_defaults(org: Org, sobjects: SObjects) -> int:
    """Insert the default records that are missing; returns how many were added."""
    added = 0
    with org.store.transaction():
        wanted: list[tuple[str, str, dict[str, object]]] = [
            (
                "User",
                org.credentials.user_id,
                {
                    "Username": org.credentials.username or "integration@emulator.example",
                    "LastName": "Integration",
                },
            )
        ]
        wanted += _pools()
        present = org.store.present([record_id for _, record_id, _ in wanted])
        for name, record_id, fields in wanted:
            sobject = resolve_sobject(name)
            assert sobject is not None
            if record_id in present:
                continue
            record, errors = sobjects.apply(
                sobject,
                dict(fields),
                None,
                record_id=record_id,
                extra={SEED_MARK: True},
                seeding=True,
            )
            if record is None:
                raise RuntimeError(f"default seed {name} {record_id}: {errors}")
            added += 1
    return added
