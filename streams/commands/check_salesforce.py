"""`activity-sync check-salesforce`: is the org ready? One line per check, with a hint.

The fields expected follow the worker's field mapping (`ACTIVITY_SYNC_FIELD_MAPPING`):
the external id (Text 255, External ID, unique), the status (a picklist with every
status the fold gives), the reason (Text 255) and the version fence's number field.
The objects the user must read: every type the event contract's `related` allows (an
Event's WhoId or WhatId) and those the sink looks customers up in by email.
A worker runs the same checks at start (streams/commands/preflight.py) and refuses to
start with the same lines when one fails; a `warn` line does not stop it. The checks
themselves are streams/worker/org_checks.py's (a running worker checks each registered
org with them too).
"""

from __future__ import annotations

import time
from typing import IO

from streams.salesforce.org_check import OrgReport
from streams.worker.org_checks import check_connection
from streams.worker.settings import Settings


async def run_checks(settings: Settings, *, deadline: float | None = None) -> OrgReport:
    """Log in and check the org (login failures raise the client's errors)."""
    return await check_connection(
        settings.salesforce,
        settings.app.mapping(),
        deadline if deadline is not None else time.monotonic() + settings.startup.timeout,
    )


def print_report(report: OrgReport, out: IO[str], prefix: str = "") -> None:
    for line in report.lines:
        print(f"{prefix}{line}", file=out, flush=True)
