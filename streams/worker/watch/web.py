"""HTTP views served by every worker (Faust's web server), and who may read them.

- `GET /bookings/{booking_id}/`: the booking's report, answered by the worker that owns
  its partition (Faust's table routing forwards the request there, headers included,
  so the bearer token travels with it).
- `GET /orgs/`: the org registry as this worker sees it (streams/worker/org_directory.py):
  connections with their secret references, never a secret.
- `GET /metrics/`: Prometheus text format. No booking data: always open.
- `GET /health/`: 200 while the broker answers and Salesforce writes are not all
  failing, else 503 with the reason; also the org check's result at start
  (`salesforce_org`, streams/worker/watch/org_status.py). Always open (Docker's
  HEALTHCHECK, probes).

Every other path, Faust's own `/router/` and `/table/` included, returns booking data or
table internals: it needs `Authorization: Bearer <ACTIVITY_SYNC_WEB_TOKEN>`. Without a
token set those paths answer loopback clients only, and a worker bound to another
interface refuses to start (`web_access_problem`, checked by streams/commands/preflight.py).
A path without its trailing slash is redirected to the one with it.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from aiohttp import web as aiohttp_web
from faust.web import Request, Response, View
from faust.web.drivers.aiohttp import Web as AiohttpWeb
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.core.booking_report import booking_report
from streams.core.fold import BookingState
from streams.core.retention import is_marker, read_marker
from streams.salesforce.org_registry import DEFAULT_ORG
from streams.worker.app import app, bookings, org_directory, settings, synced
from streams.worker.settings import Settings
from streams.worker.watch import metrics, org_status

MAPPING = settings.app.mapping()

# Paths anyone who reaches the port may read: no booking data behind them.
OPEN_PATHS = frozenset({"/health/", "/metrics/"})
# Whole Salesforce attempts that failed (the sink's codes); record-level codes come with
# an answer from Salesforce and do not count against its health.
FAILED_ATTEMPT_CODES = frozenset({"UNAVAILABLE", "UNEXPECTED", "REQUEST_LIMIT_EXCEEDED"})


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def web_access_problem(conf: Settings, bind: str | None = None) -> str | None:
    """Why a worker with these settings must not start its web server, or None."""
    bind = bind or conf.web.bind
    if conf.web.enabled and not conf.web.token.get_secret_value() and not is_loopback(bind):
        return (
            f"ACTIVITY_SYNC_WEB_BIND={bind} serves booking data beyond this host: set "
            "ACTIVITY_SYNC_WEB_TOKEN (or ACTIVITY_SYNC_WEB_TOKEN_FILE), or bind 127.0.0.1"
        )
    return None


def authorized(header: str | None, token: str, remote: str | None) -> bool:
    """May a request with this Authorization header from `remote` read booking data?"""
    if not token:
        return is_loopback(remote)
    expected = f"Bearer {token}".encode()
    return hmac.compare_digest((header or "").encode(), expected)


Handler = Callable[[aiohttp_web.Request], Awaitable[aiohttp_web.StreamResponse]]


@aiohttp_web.middleware
async def require_token(
    request: aiohttp_web.Request, handler: Handler
) -> aiohttp_web.StreamResponse:
    if request.path in OPEN_PATHS:
        return await handler(request)
    token = settings.web.token.get_secret_value()
    if authorized(request.headers.get("Authorization"), token, request.remote):
        return await handler(request)
    if token:
        return aiohttp_web.json_response(
            {"error": "this view needs Authorization: Bearer <ACTIVITY_SYNC_WEB_TOKEN>"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="activity-sync"'},
        )
    return aiohttp_web.json_response(
        {"error": "no ACTIVITY_SYNC_WEB_TOKEN set: booking data answers loopback clients only"},
        status=403,
    )


# Outermost first: /health -> /health/ (308), then the token check.
cast(AiohttpWeb, app.web).web_app.middlewares.extend(
    [aiohttp_web.normalize_path_middleware(append_slash=True), require_token]
)


@app.page("/bookings/{booking_id}/")
class BookingPage(View):
    @app.table_route(table=bookings.faust_table, match_info="booking_id")  # type: ignore[arg-type]
    async def get(self, request: Request, booking_id: str) -> Response:
        key = booking_id.encode()
        # A web view is outside any stream: the row is in whichever held partition has it.
        raw = bookings.under(None).get(key)
        if raw is None:
            return self.json({"error": f"unknown booking {booking_id!r}"}, status=404)
        if is_marker(raw):  # retention dropped its state (streams/core/retention.py)
            expired = read_marker(raw)
            return self.json(
                {
                    "error": f"booking {booking_id!r} expired: its state was dropped "
                    f"(was {expired.phase}, ended {expired.end.isoformat()}, version "
                    f"{expired.version})"
                },
                status=410,
            )
        state = BookingState.from_bytes(raw)
        return self.json(booking_report(state, synced.under(None).get(key) or 0, MAPPING))


# Read when scraped: the registry as the follower last published it.
metrics.ORGS_REGISTERED.set_function(lambda: len(org_directory.registry.orgs))


@app.page("/orgs/")
class OrgsPage(View):
    """The org registry as this worker sees it (`activity-sync orgs`): each org's
    connection with its secret references (never a secret), and records skipped."""

    async def get(self, request: Request) -> Response:
        registry = org_directory.registry
        orgs = [
            {
                "name": org.name,
                "login_url": org.login_url,
                "auth": org.auth,
                "client_id": org.client_id,
                "references": org.references(),
                "field_mapping": org.field_mapping,
            }
            for org in sorted(registry.orgs.values(), key=lambda org: org.name)
        ]
        return self.json(
            {
                "caught_up": org_directory.caught_up.is_set(),
                "orgs": orgs,
                "unreadable": registry.unreadable,
                # By org (registered or not): this worker's bookings that wait for it.
                "waiting": org_directory.waiting,
            }
        )


@app.page("/metrics/")
class MetricsPage(View):
    async def get(self, request: Request) -> Response:
        # The header, not content_type=: aiohttp refuses a content_type carrying a charset,
        # and Prometheus' type is "text/plain; version=0.0.4; charset=utf-8".
        return self.bytes(
            generate_latest(metrics.REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )


class WriteHealth:
    """Salesforce as the sink meets it, from its counters: failing once whole attempts
    failed and no record got an answer since the last look; ok again at the next answer.
    The worker's start checked the login, so it starts ok."""

    def __init__(self) -> None:
        self.failures = 0.0
        self.answers = 0.0
        self.state = "ok"

    def update(self, failures: dict[str, float], answers: float) -> str:
        failed = sum(failures.values())
        if answers > self.answers:
            self.state = "ok"
        elif failed > self.failures:
            newest = max(failures, key=lambda code: failures[code])
            self.state = f"failing: every write since the last check failed ({newest})"
        self.failures, self.answers = failed, answers
        return self.state


def _counter_totals(counter: object, label: str, org: str = DEFAULT_ORG) -> dict[str, float]:
    """The counter's totals by `label`, for one org (the worker's health is its default
    org's; a registered org that fails shows under `orgs`, never failing the worker)."""
    totals: dict[str, float] = {}
    for family in counter.collect():  # type: ignore[attr-defined]
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels.get("org", org) == org:
                totals[sample.labels[label]] = sample.value
    return totals


async def broker_reachable(servers: list[str], timeout_s: float = 2.0) -> str:
    """ "ok" when a TCP connection to one of the bootstrap servers opens, else why not."""
    reason = "no server"
    for server in servers:
        host, _, port = server.rpartition(":")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout_s)
        except (OSError, TimeoutError, ValueError) as exc:
            reason = f"{server}: {type(exc).__name__}"
            continue
        writer.close()
        return "ok"
    return f"unreachable ({reason})"


_write_health = WriteHealth()


def health_body(
    broker: str, salesforce: str, org: org_status.OrgStatus, checked_in_s: float
) -> tuple[dict[str, Any], bool]:
    """What `GET /health/` answers (README, "HTTP on every worker", lists these fields),
    and whether it is healthy (200) or not (503)."""
    healthy = broker == "ok" and salesforce == "ok" and (org.ok or not org.checked)
    body = {
        "status": "ok" if healthy else "unhealthy",
        "app": settings.app.id,
        "version": settings.app.version,
        "broker": broker,
        "salesforce": salesforce,
        # The org check at start (check-salesforce's lines; streams/commands/preflight.py).
        "salesforce_org": org.summary(),
        "salesforce_org_checks": org.lines,
        "checked_in_s": round(checked_in_s, 3),
        # Registered orgs' checks: reported, never failing this worker's health.
        "orgs": org_directory.checks.summaries(),
    }
    return body, healthy


@app.page("/health/")
class HealthPage(View):
    async def get(self, request: Request) -> Response:
        started = time.monotonic()
        broker = await broker_reachable(settings.broker.connection().bootstrap_servers)
        errors = _counter_totals(metrics.SALESFORCE_ERRORS, "code")
        failures = {code: n for code, n in errors.items() if code in FAILED_ATTEMPT_CODES}
        answers = sum(_counter_totals(metrics.SALESFORCE_RECORDS, "outcome").values())
        salesforce = _write_health.update(failures, answers)
        body, healthy = health_body(
            broker, salesforce, org_status.STATUS, time.monotonic() - started
        )
        return self.json(body, status=200 if healthy else 503)
