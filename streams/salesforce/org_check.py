"""Is the org ready for the sink? The checks of `activity-sync check-salesforce` and of
a worker's start (streams/commands/preflight.py), one line each with a fix hint.

After a login: the API version is served (`GET /services/data/`); `describe` of the
sObject (Event) shows each field the projection writes with the right type and at
least the length it needs, the external id field is External ID and unique, the
status picklist holds every status, and the integration user may create and edit
each field (describe's `createable`/`updateable`, which follow field-level security);
the user may read each object the sink reads or refers to (Contact, Lead, Case:
describe `queryable`; Salesforce answers 404 for an object the user may not read); its
user permissions (`SELECT ... FROM UserPermissionAccess`, the context user's effective
ones): Edit Events, and Modify All Data, whose absence is a warning (sharing may grant
edit on other owners' Events instead); and the daily API requests left
(`Sforce-Limit-Info` of the last answer).

A line is `ok`, `FAIL` or `warn`: a warning names something to know or grant but fails
nothing (exit status 0; a worker starts). The fields and objects expected are handed
in (`FieldSpec`, `readable`): this module knows the org, not the fold. Every check
runs, so one run names every problem.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from streams.salesforce.errors import SalesforceClientError, SalesforceRequestError
from streams.salesforce.session import SalesforceSession
from streams.salesforce.session import describe as describe_error

# sf runs only where sfdx-project.json is (elsewhere: RequiresProjectError).
DEPLOY_HINT = "deploy salesforce/ (cd salesforce && sf project deploy start --source-dir force-app)"
ACCESS_HINT = "assign the permission set Booking_Activity_Sync to the integration user"
READ_HINT = (
    "deploy salesforce/ and assign its permission set Booking_Activity_Sync to the "
    "integration user (it grants read on Contact, Lead and Case)"
)
# The shipped permission set deliberately leaves Modify All Data out (README, "A real
# Salesforce org"): an org may prefer sharing.
MODIFY_ALL_HINT = (
    "the sink gives each Event its booking owner, so later updates edit Events owned by "
    "other users, which then succeed only where sharing grants this user edit on them (a "
    "role above their owners, or edit on the related Contact, Lead or Case: activity "
    "access is controlled by parent); grant the integration user Modify All Data, or that "
    "sharing (README, 'A real Salesforce org')"
)
# The context user's effective permissions: one row, whatever the profile or set grants.
PERMISSIONS_SOQL = "SELECT PermissionsModifyAllData, PermissionsEditEvent FROM UserPermissionAccess"


@dataclass(frozen=True)
class FieldSpec:
    """A field the projection writes: its describe type and what it must allow."""

    name: str
    kind: str  # describe's type: "string", "picklist", "double", ...
    min_length: int | None = None
    external_id: bool = False
    picklist: tuple[str, ...] = ()
    # Fields of a managed package (ScheduleOnce__...) come with the package, not with
    # our DX project: the hint says so.
    hint: str = DEPLOY_HINT


@dataclass(frozen=True)
class CheckLine:
    ok: bool
    text: str
    # Passed, with something to know or grant: printed `warn`, fails nothing.
    warning: bool = False

    @property
    def level(self) -> str:
        return "FAIL" if not self.ok else "warn" if self.warning else "ok"

    def __str__(self) -> str:
        return f"{self.level:<4} {self.text}"


@dataclass
class OrgReport:
    lines: list[CheckLine] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No check failed (warnings pass)."""
        return bool(self.lines) and all(line.ok for line in self.lines)

    @property
    def failures(self) -> list[CheckLine]:
        return [line for line in self.lines if not line.ok]

    @property
    def warnings(self) -> list[CheckLine]:
        return [line for line in self.lines if line.ok and line.warning]

    def add(self, ok: bool, text: str) -> None:
        self.lines.append(CheckLine(ok, text))

    def warn(self, text: str) -> None:
        self.lines.append(CheckLine(True, text, warning=True))


def _versions(session: SalesforceSession, sf: Salesforce, timeout: float) -> list[str]:
    root = sf.base_url.rstrip("/").rsplit("/", 1)[0] + "/"
    answer = session.get_json(sf, root, timeout)
    if not isinstance(answer, list):
        return []
    return [str(item.get("version")) for item in answer if isinstance(item, Mapping)]


def check_fields(
    report: OrgReport, sobject: str, described: Mapping[str, Any], specs: Sequence[FieldSpec]
) -> None:
    """The per-field lines of a describe answer against what the projection needs."""
    by_name = {str(f.get("name", "")).lower(): f for f in described.get("fields", [])}
    for spec in specs:
        found = by_name.get(spec.name.lower())
        where = f"{sobject}.{spec.name}"
        if found is None:
            report.add(False, f"{where}: missing (or not visible to this user); {spec.hint}")
            continue
        kind, length = found.get("type"), int(found.get("length") or 0)
        if kind != spec.kind:
            report.add(False, f"{where}: type {kind}, needs {spec.kind}; {spec.hint}")
            continue
        if spec.min_length is not None and length < spec.min_length:
            report.add(False, f"{where}: length {length}, needs {spec.min_length}; {spec.hint}")
            continue
        problems: list[str] = []
        if spec.external_id and not (found.get("externalId") and found.get("unique")):
            problems.append("not External ID and unique")
        if spec.picklist:
            values = {str(v.get("value")) for v in found.get("picklistValues", []) if v}
            missing = [v for v in spec.picklist if v not in values]
            if missing:
                problems.append(f"picklist lacks {', '.join(repr(v) for v in missing)}")
        if problems:
            report.add(False, f"{where}: {'; '.join(problems)}; {spec.hint}")
        else:
            report.add(True, f"{where}: {kind}" + (f"({length})" if spec.min_length else ""))
        if not (found.get("createable") and found.get("updateable")):
            report.add(False, f"{where}: this user may not create and edit it; {ACCESS_HINT}")


def check_user_permissions(report: OrgReport, row: Mapping[str, Any]) -> None:
    """The lines of a UserPermissionAccess row: Edit Events, then Modify All Data."""
    if row.get("PermissionsEditEvent") is True:
        report.add(True, "user permission Edit Events: granted")
    else:
        report.add(False, f"user permission Edit Events: not granted; {ACCESS_HINT}")
    if row.get("PermissionsModifyAllData") is True:
        report.add(True, "user permission Modify All Data: granted (Events of every owner)")
    else:
        report.warn(f"user permission Modify All Data: not granted; {MODIFY_ALL_HINT}")


async def _check_reads(
    session: SalesforceSession,
    report: OrgReport,
    sobjects: Sequence[str],
    deadline: float | None,
) -> None:
    """One line per object: describe answers 404 for an object this user may not read."""
    for name in sobjects:

        def describe(sf: Salesforce, timeout: float, name: str = name) -> Any:
            return session.restful(sf, "GET", f"sobjects/{name}/describe", timeout)

        try:
            described = await session.with_retries(describe, deadline, f"describe {name}")
        except SalesforceRequestError as exc:
            why = "describe: 404 NOT_FOUND" if exc.status == 404 else f"describe failed: {exc}"
            report.add(False, f"{name}: this user may not read it ({why}); {READ_HINT}")
            continue
        if isinstance(described, Mapping) and described.get("queryable"):
            report.add(True, f"{name}: readable")
        else:
            report.add(False, f"{name}: this user may not query it; {READ_HINT}")


async def _check_user_permissions(
    session: SalesforceSession, report: OrgReport, deadline: float | None
) -> None:
    def query(sf: Salesforce, timeout: float) -> Any:
        return session.restful(sf, "GET", "query/", timeout, params={"q": PERMISSIONS_SOQL})

    row: object = None
    why = "no row"
    try:
        answer = await session.with_retries(query, deadline, "user permissions")
    except SalesforceMalformedRequest as exc:  # 400: the query itself refused
        why = describe_error(exc)
    except SalesforceRequestError as exc:
        why = str(exc)
    else:
        records = answer.get("records") if isinstance(answer, Mapping) else None
        row = records[0] if isinstance(records, list) and records else None
    if not isinstance(row, Mapping):
        # Edit Events shows in the Event describe too (createable/updateable): only
        # Modify All Data would be unknown, so this fails nothing.
        report.warn(
            f"user permissions: cannot read them from UserPermissionAccess ({why}); check "
            "by hand that the integration user has Edit Events, and Modify All Data or "
            "sharing on other owners' Events"
        )
        return
    check_user_permissions(report, row)


async def check_org(
    session: SalesforceSession,
    specs: Sequence[FieldSpec],
    *,
    readable: Sequence[str] = (),
    deadline: float | None = None,
    min_api_calls_left: int = 1,
) -> OrgReport:
    """Every check against the org `session` logs in to (login failures raise):
    `specs` the Event's fields, `readable` the objects this user must read."""
    s = session.settings
    report = OrgReport()
    await session.connect(deadline=deadline)

    def versions(sf: Salesforce, timeout: float) -> list[str]:
        return _versions(session, sf, timeout)

    served = await session.with_retries(versions, deadline, "versions")
    if s.api_version in served:
        report.add(True, f"API version {s.api_version}: served (newest {max(served, key=float)})")
    else:
        newest = max(served, key=float) if served else "none"
        report.add(
            False,
            f"API version {s.api_version}: not served (newest {newest}); set "
            "ACTIVITY_SYNC_SALESFORCE_API_VERSION to a version the org serves",
        )
        return report

    def describe(sf: Salesforce, timeout: float) -> Any:
        return session.restful(sf, "GET", f"sobjects/{s.sobject}/describe", timeout)

    try:
        described = await session.with_retries(describe, deadline, "describe")
    except SalesforceClientError as exc:
        report.add(
            False, f"{s.sobject}: describe failed ({exc}); check ACTIVITY_SYNC_SALESFORCE_SOBJECT"
        )
        return report
    if not (described.get("createable") and described.get("updateable")):
        report.add(False, f"{s.sobject}: this user may not create and edit it; {ACCESS_HINT}")
    check_fields(report, s.sobject, described, specs)
    await _check_reads(session, report, readable, deadline)
    await _check_user_permissions(session, report, deadline)
    usage = session.api_usage
    if usage is None:
        report.add(False, "daily API requests: no Sforce-Limit-Info header in the answer")
    else:
        used, total = usage
        left = max(0, total - used)
        report.add(
            left >= min_api_calls_left,
            f"daily API requests: {left} of {total} left"
            + (
                ""
                if left >= min_api_calls_left
                else "; wait for the 24-hour window or raise the limit"
            ),
        )
    return report
