"""Is the org ready for the sink? The checks of `activity-sync check-salesforce` and of
a worker's start (streams/commands/preflight.py), one line each with a fix hint.

After a login: the API version is served (`GET /services/data/`); `describe` of the
sObject (Event) shows each field the projection writes with the right type and at
least the length it needs, the external id field is External ID and unique, the
status picklist holds every status, and the integration user may create and edit
each field (describe's `createable`/`updateable`, which follow field-level security);
and the daily API requests left (`Sforce-Limit-Info` of the describe answer).

The fields expected are handed in (`FieldSpec`): this module knows the org, not the
fold. Every check runs, so one run names every problem.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from simple_salesforce.api import Salesforce

from streams.salesforce.errors import SalesforceClientError
from streams.salesforce.session import SalesforceSession

# sf runs only where sfdx-project.json is (elsewhere: RequiresProjectError).
DEPLOY_HINT = "deploy salesforce/ (cd salesforce && sf project deploy start --source-dir force-app)"
ACCESS_HINT = "assign the permission set Booking_Activity_Sync to the integration user"


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

    def __str__(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.text}"


@dataclass
class OrgReport:
    lines: list[CheckLine] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.lines) and all(line.ok for line in self.lines)

    @property
    def failures(self) -> list[CheckLine]:
        return [line for line in self.lines if not line.ok]

    def add(self, ok: bool, text: str) -> None:
        self.lines.append(CheckLine(ok, text))


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


async def check_org(
    session: SalesforceSession,
    specs: Sequence[FieldSpec],
    *,
    deadline: float | None = None,
    min_api_calls_left: int = 1,
) -> OrgReport:
    """Every check against the org `session` logs in to (login failures raise)."""
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
