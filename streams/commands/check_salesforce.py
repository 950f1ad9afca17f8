"""`activity-sync check-salesforce`: is the org ready? One line per check, with a hint.

The fields expected follow the worker's field mapping (`ACTIVITY_SYNC_FIELD_MAPPING`):
the external id (Text 255, External ID, unique), the status (a picklist with every
status the fold gives), the reason (Text 255) and the version fence's number field.
The objects the user must read: every type the event contract's `related` allows (an
Event's WhoId or WhatId) and those the sink looks customers up in by email.
A worker runs the same checks at start (streams/commands/preflight.py) and refuses to
start with the same lines when one fails; a `warn` line does not stop it.
"""

from __future__ import annotations

import time
from typing import IO, get_args

from schemas import Related
from streams.core.projection import REASON_MAX, FieldMapping
from streams.core.view import STATUSES
from streams.salesforce.org_check import DEPLOY_HINT, FieldSpec, OrgReport, check_org
from streams.salesforce.related import RELATED_SOBJECTS
from streams.salesforce.session import SalesforceSession
from streams.worker.settings import Settings

MANAGED_HINT = "install the ScheduleOnce (OnceHub) managed package, or use field mapping default"
# Contact, Lead (looked up by email) and Case, in a stable order.
READ_SOBJECTS: tuple[str, ...] = tuple(
    dict.fromkeys([*RELATED_SOBJECTS, *get_args(Related.model_fields["type"].annotation)])
)


def field_specs(mapping: FieldMapping) -> list[FieldSpec]:
    """What each field the projection writes must be, for `mapping`."""

    def hint(name: str) -> str:
        return MANAGED_HINT if name.startswith("ScheduleOnce__") else DEPLOY_HINT

    return [
        FieldSpec(
            mapping.external_id_field,
            "string",
            min_length=255,
            external_id=True,
            hint=hint(mapping.external_id_field),
        ),
        FieldSpec(
            mapping.status_field, "picklist", picklist=STATUSES, hint=hint(mapping.status_field)
        ),
        FieldSpec(
            mapping.reason_field, "string", min_length=REASON_MAX, hint=hint(mapping.reason_field)
        ),
        FieldSpec(mapping.version_field, "double", hint=DEPLOY_HINT),
    ]


async def run_checks(settings: Settings, *, deadline: float | None = None) -> OrgReport:
    """Log in and check the org (login failures raise the client's errors)."""
    session = SalesforceSession(settings.salesforce)
    try:
        return await check_org(
            session,
            field_specs(settings.app.mapping()),
            readable=READ_SOBJECTS,
            deadline=deadline
            if deadline is not None
            else time.monotonic() + settings.startup.timeout,
        )
    finally:
        session.close()


def print_report(report: OrgReport, out: IO[str], prefix: str = "") -> None:
    for line in report.lines:
        print(f"{prefix}{line}", file=out, flush=True)
