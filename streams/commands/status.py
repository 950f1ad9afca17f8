"""`activity-sync status BOOKING_ID`: one booking as the worker that owns it sees it,
next to what Salesforce holds.

Any worker answers `GET /bookings/{id}/`: Faust's table routing forwards the request
to the worker holding the booking's partition. This module fetches that report, reads
the booking's Event from Salesforce itself (one SOQL query by the mapping's external id,
`check_salesforce`) and renders both for a terminal (`render_report` and `sync_state`
are pure, for tests).

The worker only knows what it handled (its `synced` table): a version it wrote, one
Salesforce rejected, or one the version fence refused because Salesforce already had a
newer one. Only Salesforce knows what the Event holds now, so the Sync line says
"in sync" only when Salesforce was read and its Event matches the projection:
- the version field (`Projection_Version__c`) equal to the projection's version, and
- the fields the worker decides alike (`COMPARED`): status, reason, Subject, start and
  end (as instants), and OwnerId (as a 15-character id; not compared when the projection
  has no owner, Salesforce then sets the integration user, or when the sink took an
  owner fallback, which writes another owner on purpose).
Not compared: Location and Description (Description also lists the history, long),
and WhoId/WhatId (looked up by the customer's email when written).
When Salesforce is not configured, does not answer within the timeout, or
`--no-salesforce` is given, the worker's view is printed with one line saying why
Salesforce was not checked, and the Sync line claims no more than the worker knows.

Orgs (issue 23): the report names the org the booking's Event lives in (the view's
`salesforce_org`; `default` is the deployment's `ACTIVITY_SYNC_SALESFORCE_*` org) and
the orgs it has left. The Event is read from that org: for a registered org with the
registry's connection (its secret references resolved here, its field preset), never
from the default org; an org that is not registered, or whose references do not resolve
here, is the "not checked" line saying so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp
import requests
from pydantic import SecretStr

from streams.commands.base import UserError, one_line
from streams.core.projection import PRESETS, FieldMapping
from streams.salesforce.client import SalesforceClient
from streams.salesforce.errors import SalesforceClientError
from streams.salesforce.org_registry import DEFAULT_ORG, OrgRegistry, OrgSecretError
from streams.salesforce.settings import SalesforceSettings

if TYPE_CHECKING:
    from streams.worker.settings import Settings

VIEW_FIELDS = ("status", "phase", "reason", "title", "start", "end", "location")
TIME_FIELDS = ("start", "end")
# WhoId is not part of the projection the worker keeps: the sink looks the Contact (or
# Lead) up by the customer's email when it writes the Event.
WHO_ID_AT_WRITE = "set when written: the Contact or Lead with the customer's email, if any"


def utc(value: Any) -> str:
    """An ISO-8601 time in UTC (`2026-11-25T00:30:00Z`); other values unchanged."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is None:
        return str(value)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def booking_url(worker_url: str, booking_id: str) -> str:
    return f"{worker_url.rstrip('/')}/bookings/{quote(booking_id, safe='')}/"


def auth_headers(token: SecretStr | None) -> dict[str, str]:
    """The worker's bearer token (ACTIVITY_SYNC_WEB_TOKEN) as a request header, if set."""
    value = token.get_secret_value() if token is not None else ""
    return {"Authorization": f"Bearer {value}"} if value else {}


async def fetch_report(
    worker_url: str, booking_id: str, timeout_s: float = 10.0, *, token: SecretStr | None = None
) -> dict[str, Any]:
    url = booking_url(worker_url, booking_id)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout, headers=auth_headers(token)) as session,
            session.get(url) as response,
        ):
            if response.status == 404:
                raise UserError(f"unknown booking {booking_id!r}")
            if response.status in (401, 403):
                raise UserError(
                    f"the worker at {worker_url} refused the request (HTTP {response.status}): "
                    "set ACTIVITY_SYNC_WEB_TOKEN to the workers' token"
                )
            if response.status == 410:  # expired: the worker says since when
                answer = await response.json()
                raise UserError(str(answer.get("error", f"booking {booking_id!r} expired")))
            if response.status != 200:
                text = (await response.text())[:200]
                raise UserError(
                    f"worker answered {response.status} for {url}: {one_line(Exception(text))}"
                )
            report: dict[str, Any] = await response.json()
            return report
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise UserError(f"cannot reach the worker at {worker_url}: {one_line(exc)}") from None


# Salesforce's side ----------------------------------------------------------------------


@dataclass(frozen=True)
class SalesforceCheck:
    """What `status` found in Salesforce: the booking's Event as Salesforce holds it
    (`event`, None when there is none), or why Salesforce was not checked. `org`: the
    registered org it was read from (None: the default org)."""

    event: dict[str, Any] | None = None
    not_checked: str | None = None
    org: str | None = None

    @classmethod
    def skipped(cls, why: str, org: str | None = None) -> SalesforceCheck:
        return cls(not_checked=why, org=org)

    @property
    def checked(self) -> bool:
        return self.not_checked is None

    @property
    def where(self) -> str:
        """`" in org NAME"` for a registered org; nothing for the default org, so its
        lines read as before orgs existed."""
        return f" in org {self.org}" if self.org is not None else ""


def booking_org(report: dict[str, Any]) -> str | None:
    """The org the booking's Event lives in (None: the default org; also for a worker
    whose report predates orgs)."""
    org = (report.get("view") or {}).get("salesforce_org")
    return str(org) if org else None


def left_orgs(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The orgs the booking's Event has left, as the view lists them."""
    left = (report.get("view") or {}).get("left_orgs") or []
    return [item for item in left if isinstance(item, dict)]


def withdrawn_orgs(report: dict[str, Any]) -> list[str]:
    """The orgs the booking's Event is withdrawn from (docs/event-contract.md), by name."""
    withdrawn = (report.get("view") or {}).get("withdrawn_orgs") or []
    return [str(org) if org else DEFAULT_ORG for org in withdrawn]


def org_lines(report: dict[str, Any]) -> list[str]:
    """`Org: acme` (or the default org, named by its settings), the orgs left, each
    with the mark its Event there keeps, and the orgs its Event is withdrawn from."""
    org = booking_org(report)
    lines = [f"Org: {org}" if org else f"Org: {DEFAULT_ORG} (ACTIVITY_SYNC_SALESFORCE_*)"]
    for left in left_orgs(report):
        name = left.get("salesforce_org") or DEFAULT_ORG
        mark = f"{left.get('status')}, {left.get('reason')}"
        lines.append(f"  left {name}: its Event there says {mark}")
    for name in withdrawn_orgs(report):
        lines.append(f"  withdrawn from {name}: a move there was undone; no Event stays")
    return lines


def org_json(report: dict[str, Any]) -> dict[str, Any]:
    """`--json`: the booking's org by name (`default` for the default org) and the names
    of the orgs left and of those its Event is withdrawn from."""
    return {
        "name": booking_org(report) or DEFAULT_ORG,
        "default": booking_org(report) is None,
        "left": [left.get("salesforce_org") or DEFAULT_ORG for left in left_orgs(report)],
        "withdrawn": withdrawn_orgs(report),
    }


def org_connection(
    registered: OrgRegistry,
    org: str,
    base: SalesforceSettings,
    environ: dict[str, str] | None = None,
) -> tuple[SalesforceSettings, FieldMapping] | str:
    """The settings and field mapping to read org `org`'s Event with, or why it cannot
    be read from here (one line, naming references, never a secret)."""
    found = registered.orgs.get(org)
    if found is None:
        return (
            f"org {org} is not registered: activity-sync orgs add {org} --login-url URL "
            "--client-id ID --client-secret env:VARIABLE"
        )
    try:
        return found.settings(base, environ), PRESETS[found.field_mapping]
    except OrgSecretError as exc:
        return f"org {org}: {exc}"


def compared_fields(mapping: FieldMapping) -> tuple[str, ...]:
    """The projection's fields `status` compares with Salesforce's Event, besides the
    version (see the module's docstring)."""
    return (
        mapping.status_field,
        mapping.reason_field,
        "Subject",
        "StartDateTime",
        "EndDateTime",
        "OwnerId",
    )


def event_fields(mapping: FieldMapping) -> list[str]:
    """What `status` reads of the Event: the version, the compared fields, and when
    Salesforce last changed it."""
    return [mapping.version_field, *compared_fields(mapping), "LastModifiedDate"]


async def check_salesforce(
    settings: SalesforceSettings, mapping: FieldMapping, booking_id: str, timeout_s: float
) -> SalesforceCheck:
    """The booking's Event read from Salesforce (one SOQL query by the external id), or
    why not: no org configured, or no answer (login refused, unreachable, timeout)."""
    # Lazily: preflight imports the worker's app (its settings), status' caller has it.
    from streams.commands.preflight import check_salesforce_settings

    try:
        check_salesforce_settings(settings)
    except UserError as exc:
        return SalesforceCheck.skipped(one_line(exc))
    deadline = time.monotonic() + timeout_s
    # The client logs each retry; the outcome is this command's one line (`-l info`
    # shows the retries).
    logger = logging.getLogger("streams.salesforce.session")
    level = logger.level
    if not logger.isEnabledFor(logging.INFO):
        logger.setLevel(logging.ERROR)
    try:
        async with SalesforceClient(settings) as client:
            event = await client.read_event(
                mapping.external_id_field, booking_id, event_fields(mapping), deadline=deadline
            )
    except (SalesforceClientError, requests.RequestException, OSError, ValueError) as exc:
        return SalesforceCheck.skipped(f"Salesforce at {settings.login_url}: {one_line(exc)}")
    finally:
        logger.setLevel(level)
    return SalesforceCheck(event=event)


async def check_org_salesforce(
    settings: Settings,
    org: str,
    booking_id: str,
    timeout_s: float,
    environ: dict[str, str] | None = None,
) -> tuple[SalesforceCheck, FieldMapping]:
    """The booking's Event read from registered org `org` (the registry read from the
    broker), with the mapping it was read by; or why it was not."""
    from streams.commands.orgs import read_registry

    mapping = settings.app.mapping()
    try:
        registered = await read_registry(settings, timeout_s)
    except UserError as exc:
        return SalesforceCheck.skipped(f"cannot read the org registry: {one_line(exc)}", org), (
            mapping
        )
    found = org_connection(registered, org, settings.salesforce, environ)
    if isinstance(found, str):
        return SalesforceCheck.skipped(found, org), mapping
    connection, mapping = found
    checked = await check_salesforce(connection, mapping, booking_id, timeout_s)
    return replace(checked, org=org), mapping


def _version(value: Any) -> int:
    """A number field as Salesforce returns it (3.0), blank as 0."""
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return 0


def _instant(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value))  # Salesforce's "+0000" parses too
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo is not None else None


# Owner fallbacks write another OwnerId than the projection's, on purpose.
OWNER_FALLBACKS = frozenset({"owner-on-event", "owner-fallback", "owner-integration-user"})


def _same(name: str, projected: Any, held: Any) -> bool | None:
    """Whether Salesforce holds the projected value of `name`; None: not compared."""
    if name == "OwnerId":
        if not projected:
            return None  # Salesforce sets the integration user
        # The 15-character id is case-sensitive, the 18-character one adds a checksum.
        return str(projected)[:15] == str(held or "")[:15]
    if name in ("StartDateTime", "EndDateTime"):
        return _instant(projected) == _instant(held)
    return (projected or None) == (held or None)  # a blank text field reads as null


def differences(
    projected: dict[str, Any],
    event: dict[str, Any],
    mapping: FieldMapping,
    fallbacks: Sequence[str] = (),
) -> list[str]:
    """The compared fields whose Salesforce value is not the projection's."""
    found = []
    for name in compared_fields(mapping):
        if name == "OwnerId" and OWNER_FALLBACKS.intersection(fallbacks):
            continue
        if _same(name, projected.get(name), event.get(name)) is False:
            found.append(name)
    return found


@dataclass(frozen=True)
class SyncState:
    """The Sync line: `kind` for scripts (`--json`), `line` and `advice` for people."""

    kind: str
    line: str
    advice: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)


def _worker_only(report: dict[str, Any]) -> SyncState:
    """What the worker knows, claiming nothing about Salesforce."""
    projection = report.get("projection")
    sync = report.get("sync") or {}
    handled = sync.get("synced_version", 0)
    if projection is None:
        return SyncState("nothing-to-write", "nothing to write")
    latest = projection["version"]
    if sync.get("rejected"):
        line = f"rejected by Salesforce at version {handled} (see activity-projections.dlq)"
        return SyncState("rejected", line)
    if handled >= latest and sync.get("fenced"):
        line = (
            f"refused by the version fence: Salesforce already had a newer version than "
            f"the worker's {handled}"
        )
        return SyncState("salesforce-newer", line)
    if handled >= latest:
        return SyncState(
            "written", f"written by the worker (version {handled}, the latest); not confirmed"
        )
    if handled:
        return SyncState("pending", f"pending (version {handled} handled, latest is {latest})")
    return SyncState("pending", f"pending (not written yet, latest is version {latest})")


def sync_state(
    report: dict[str, Any], salesforce: SalesforceCheck, mapping: FieldMapping
) -> SyncState:
    """Whether Salesforce holds the worker's projection, and if not, why and what to do."""
    if salesforce.not_checked is not None:
        return _worker_only(report)
    booking = report["booking_id"]
    projection = report.get("projection")
    sync = report.get("sync") or {}
    handled: int = sync.get("synced_version", 0)
    event = salesforce.event
    ext = mapping.external_id_field
    replay = f"activity-sync replay --bookings {booking}"
    if projection is None:
        if event is None:
            return SyncState(
                "nothing-to-write", "nothing to write (Salesforce has no Event either)"
            )
        held = _version(event.get(mapping.version_field))
        return SyncState(
            "unexpected-event",
            f"Salesforce has an Event with {ext} {booking} (version {held}), "
            "but this booking should have none",
            [
                "Written by another run or deployment that used the same booking id, or "
                "before the booking lost its Event: delete it in Salesforce if it is not "
                "another deployment's.",
            ],
        )
    latest: int = projection["version"]
    if event is None:
        if sync.get("rejected") and handled >= latest:
            line = (
                f"rejected by Salesforce at version {handled} "
                "(see activity-projections.dlq); Salesforce has no Event"
            )
            return SyncState("rejected", line)
        if handled < latest:
            return SyncState(
                "pending", f"pending (Salesforce has no Event yet, latest is version {latest})"
            )
        what = (
            f"the version fence refused the worker's version {handled}"
            if sync.get("fenced")
            else f"the worker wrote version {handled}"
        )
        return SyncState(
            "missing",
            f"Salesforce has no Event with {ext} {booking}{salesforce.where}, though {what}",
            [f"Deleted in Salesforce? `{replay}` writes it again."],
        )
    held = _version(event.get(mapping.version_field))
    modified = utc(event.get("LastModifiedDate"))
    if held > latest:
        if sync.get("fenced"):
            refused = (
                f"The version fence refused the worker's write of version {handled}: "
                f"Salesforce already had a newer one (version {held} now, last modified "
                f"{modified})."
            )
        elif handled and not sync.get("rejected"):
            refused = (
                f"The worker wrote version {handled}; Salesforce got version {held} after it "
                f"(last modified {modified}), so the version fence refuses the worker's "
                f"writes until its version passes {held}."
            )
        else:
            refused = (
                f"The version fence refuses the worker's version {latest}: Salesforce "
                f"already has version {held} (last modified {modified})."
            )
        return SyncState(
            "salesforce-newer",
            f"Salesforce is newer: it has version {held}, the worker's projection is "
            f"version {latest}",
            [
                refused,
                f"Typical cause: the booking id {booking} was reused (another run or seed "
                f"produced the same ids), or another deployment writes the same {ext}.",
                "What to do: give each run and deployment its own booking ids (produce "
                "--id-prefix); if this Event is not another deployment's, delete it in "
                f"Salesforce and run `{replay}`.",
            ],
        )
    fallbacks = sync.get("fallbacks") or []
    if held == latest:
        changed = differences(projection.get("fields") or {}, event, mapping, fallbacks)
        if not changed:
            return SyncState("in-sync", f"in sync (Salesforce has version {held})")
        return SyncState(
            "differs",
            f"out of sync: Salesforce has version {held}, but its {', '.join(changed)} "
            "differ from the projection",
            [
                f"Changed in Salesforce after the worker wrote it (last modified {modified}), "
                f"or written by another deployment with the same {ext}: `{replay}` writes "
                "the projection again (the fence lets an equal version through).",
            ],
            changed,
        )
    if sync.get("rejected") and handled >= latest:
        line = (
            f"rejected by Salesforce at version {handled} (see activity-projections.dlq); "
            f"Salesforce still has version {held}"
        )
        return SyncState("rejected", line)
    if handled >= latest:
        return SyncState(
            "behind",
            f"out of sync: Salesforce has version {held}, older than the version {handled} "
            "the worker handled",
            [
                f"Changed in Salesforce since (last modified {modified})? `{replay}` "
                "writes the projection again."
            ],
        )
    return SyncState("pending", f"pending (Salesforce has version {held}, latest is {latest})")


def salesforce_json(
    report: dict[str, Any], salesforce: SalesforceCheck, mapping: FieldMapping
) -> dict[str, Any]:
    """`--json`: what Salesforce holds and the sync state, beside the worker's report."""
    state = sync_state(report, salesforce, mapping)
    return {
        "org": salesforce.org or DEFAULT_ORG,
        "checked": salesforce.checked,
        "not_checked": salesforce.not_checked,
        "event": salesforce.event,
        "sync": state.kind,
        "summary": state.line,
        "advice": state.advice,
        "differences": state.differences,
    }


def _salesforce_lines(
    report: dict[str, Any], salesforce: SalesforceCheck, mapping: FieldMapping
) -> list[str]:
    if salesforce.not_checked is not None:
        return [f"Salesforce: not checked ({salesforce.not_checked})"]
    event = salesforce.event
    if event is None:
        return [
            f"Salesforce: no Event with {mapping.external_id_field} {report['booking_id']}"
            f"{salesforce.where}"
        ]
    projection = report.get("projection")
    projected: dict[str, Any] = (projection or {}).get("fields") or {}
    changed = set(
        differences(projected, event, mapping, (report.get("sync") or {}).get("fallbacks") or [])
    )
    org = f"org {salesforce.org}, " if salesforce.org is not None else ""
    lines = [
        f"Salesforce ({org}Event {event.get('Id')}, last modified "
        f"{utc(event.get('LastModifiedDate'))}):"
    ]
    names = [mapping.version_field, *compared_fields(mapping)]
    width = max(len(name) for name in names)
    for name in names:
        value = event.get(name)
        if name == mapping.version_field:
            text = str(_version(value))
            if projection is not None and _version(value) != projection["version"]:
                text += f"  (projection: {projection['version']})"
        else:
            text = (
                "-" if value in (None, "") else utc(value) if name.endswith("DateTime") else value
            )
            text = str(text)
            if name in changed:
                mine = projected.get(name)
                text += f"  (projection: {'-' if mine in (None, '') else mine})"
        lines.append(f"  {name.ljust(width)}  {text}")
    return lines


def _person(value: Any) -> str:
    if not isinstance(value, dict):
        return "-"
    name = value.get("name") or value.get("id") or "?"
    sf = value.get("salesforce_user_id")
    return f"{name} ({sf})" if sf else str(name)


def _page(value: Any) -> str:
    if not isinstance(value, dict):
        return "-"
    flags = []
    if not value.get("salesforce_connected"):
        flags.append("not connected")
    if value.get("create_activity_event") is False:
        flags.append("Activity Events off")
    suffix = f" [{', '.join(flags)}]" if flags else ""
    return f"{value.get('name') or value.get('id')}{suffix}"


# What each fallback of the sink means (streams/salesforce/healing.py).
FALLBACK_TEXT = {
    "owner-on-event": "owner refused: kept the owner already on the Event",
    "owner-fallback": "owner refused: ACTIVITY_SYNC_SALESFORCE_FALLBACK_OWNER_ID",
    "owner-integration-user": "owner refused: the integration user",
    "who-resolved": "WhoId refused: the customer's email found another Contact or Lead",
    "who-dropped": "WhoId refused: written without WhoId",
    "what-dropped": "WhatId refused: written without WhatId",
}


def render_report(
    report: dict[str, Any],
    salesforce: SalesforceCheck,
    mapping: FieldMapping = PRESETS["default"],
) -> str:
    """The booking report as aligned text: view, events, projection, what Salesforce
    holds (or why it was not checked) and the sync state."""
    view: dict[str, Any] = report.get("view") or {}
    lines = [f"Booking {report['booking_id']} (state version {report['version']})", ""]
    rows: list[tuple[str, str]] = [
        (
            name,
            "-"
            if view.get(name) in (None, "")
            else utc(view[name])
            if name in TIME_FIELDS
            else str(view[name]),
        )
        for name in VIEW_FIELDS
    ]
    rows.insert(1, ("event owner", _person(view.get("owner"))))
    rows.insert(2, ("booking owner", _person(view.get("booking_owner"))))
    rows.insert(3, ("page", _page(view.get("page"))))
    if view.get("status") is None:
        why = "no Activity Event: " + (
            "not scheduled yet"
            if not view.get("scheduled")
            else "the page was not connected or had Activity Events off when scheduled"
        )
        rows.append(("salesforce", why))
    width = max(len(name) for name, _ in rows)
    lines += [f"  {name.ljust(width)}  {value}" for name, value in rows]
    lines += ["", *org_lines(report)]

    events = report.get("events") or []
    lines += ["", f"Events ({len(events)}, in replay order):"]
    for event in events:
        lines.append(
            f"  {event['sequence']:>4}  {utc(event['time']):<20}  {event['type']:<20}  "
            f"{event['source']} / {event['id']}"
        )
    rejected = view.get("rejected_reassignments") or []
    if rejected:
        lines += ["", f"Rejected reassignments ({len(rejected)}):"]
        lines += [f"  {item}" for item in rejected]

    projection = report.get("projection")
    if projection is None:
        lines += ["", "Projection: none (no Activity Event for this booking)"]
    else:
        fields: dict[str, Any] = projection.get("fields") or {}
        lines += ["", f"Projection (version {projection['version']}):"]
        width = max((len(name) for name in fields), default=0)
        for name, value in fields.items():
            if name == "WhoId" and value is None:
                lines.append(f"  {name.ljust(width)}  - ({WHO_ID_AT_WRITE})")
                continue
            text = "-" if value is None else " ".join(str(value).splitlines()[:1])
            more = " …" if value is not None and len(str(value).splitlines()) > 1 else ""
            lines.append(f"  {name.ljust(width)}  {text}{more}")

    lines += ["", *_salesforce_lines(report, salesforce, mapping)]
    state = sync_state(report, salesforce, mapping)
    lines += ["", f"Sync: {state.line}"]
    lines += [f"  {advice}" for advice in state.advice]
    fallbacks = (report.get("sync") or {}).get("fallbacks") or []
    if fallbacks:
        lines += ["Fallbacks (Salesforce refused a reference; written instead):"]
        lines += [f"  {kind}: {FALLBACK_TEXT.get(kind, kind)}" for kind in fallbacks]
    return "\n".join(lines)
