"""`activity-sync status BOOKING_ID`: one booking as the worker that owns it sees it.

Any worker answers `GET /bookings/{id}/`: Faust's table routing forwards the request
to the worker holding the booking's partition. This module fetches that report and
renders it for a terminal (`render_report` is pure, for tests).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp
from pydantic import SecretStr

from streams.commands.base import UserError, one_line

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


def render_report(report: dict[str, Any]) -> str:
    """The booking report as aligned text: view, events, projection, sync state."""
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

    sync = report.get("sync") or {}
    synced = sync.get("synced_version", 0)
    if projection is None:
        state = "nothing to write"
    elif sync.get("rejected"):
        state = f"rejected by Salesforce at version {synced} (see activity-projections.dlq)"
    elif sync.get("in_sync"):
        state = f"in sync (Salesforce has version {synced})"
    elif synced:
        state = f"pending (Salesforce has version {synced}, latest is {projection['version']})"
    else:
        state = f"pending (not written yet, latest is version {projection['version']})"
    lines += ["", f"Sync: {state}"]
    fallbacks = sync.get("fallbacks") or []
    if fallbacks:
        lines += ["Fallbacks (Salesforce refused a reference; written instead):"]
        lines += [f"  {kind}: {FALLBACK_TEXT.get(kind, kind)}" for kind in fallbacks]
    return "\n".join(lines)
