"""`activity-sync orgs add|list|remove|check`: the registry of Salesforce orgs.

The registry is a compacted topic (`ACTIVITY_SYNC_TOPIC_ORGS`, default
`salesforce-orgs`; records in streams/salesforce/org_registry.py). `add` writes an org's
connection (secrets only as `env:NAME` / `file:/path` references), `remove` a tombstone,
`list` reads the topic to its end (with `--worker URL`, each org's count of bookings
waiting for it, from the workers' `GET /orgs/`), `check` resolves an org's references here and runs
the `check-salesforce` checks against it. The topic is created on first use, compacted,
with the deployment's partitions, replication and min.insync.replicas.

Failure behaviour: every problem (broker unreachable, an unknown org, a record that is
not a connection, a reference that cannot be resolved) is a one-line `UserError`; a
secret is never printed, only its reference.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any

import aiohttp
from pydantic import SecretStr, ValidationError

from streams.commands.base import UsageError, UserError, one_line
from streams.commands.check_salesforce import print_report
from streams.commands.check_salesforce import run_checks as run_org_checks
from streams.commands.kafka_io import admin, consumer, offsets, partitions_of, producer
from streams.commands.replay import read_partitions
from streams.commands.status import auth_headers
from streams.salesforce.errors import SalesforceClientError, SalesforceUntrusted
from streams.salesforce.org_registry import (
    DEFAULT_ORG,
    OrgConnection,
    OrgRegistry,
    OrgSecretError,
    encode,
    resolve,
    tombstone,
)
from streams.worker.org_directory import create_registry_topic, registry_topic
from streams.worker.settings import Settings


def connection_from(values: dict[str, Any]) -> OrgConnection:
    """An `OrgConnection` from the command line's values (unset options left out), or a
    one-line usage error naming the first bad field."""
    try:
        return OrgConnection(**{k: v for k, v in values.items() if v not in (None, "")})
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "org"
        raise UsageError(f"{where}: {first['msg']}") from None


async def ensure_topic(settings: Settings, timeout_s: float) -> None:
    """Create the registry topic (compacted) unless it exists."""
    async with admin(settings.broker.connection(), timeout_s) as client:
        await create_registry_topic(client, registry_topic(settings))


async def read_registry(settings: Settings, timeout_s: float) -> OrgRegistry:
    """The registry as of now: every record of the topic up to its end offsets."""
    found = OrgRegistry()
    broker = settings.broker.connection()
    async with consumer(broker, timeout_s) as client:
        partitions = await partitions_of(client, settings.topics.orgs, timeout_s)
        starts, ends = await offsets(broker, client, partitions)

        def on_record(record: Any) -> None:
            found.apply(record.key, record.value, f"{record.partition}:{record.offset}")

        await read_partitions(client, starts, ends, on_record)
    return found


async def write_record(
    settings: Settings, key: bytes, value: bytes | None, timeout_s: float
) -> None:
    async with producer(settings.broker.connection(), timeout_s) as client:
        await client.send_and_wait(settings.topics.orgs, value=value, key=key)


async def add(
    settings: Settings,
    connection: OrgConnection,
    out: IO[str],
    timeout_s: float,
    environ: dict[str, str] | None = None,
) -> int:
    """Add or replace an org; a reference not resolvable here is a note, not an error
    (the workers resolve it where they run)."""
    await ensure_topic(settings, timeout_s)
    before = await read_registry(settings, timeout_s)
    await write_record(settings, *encode(connection), timeout_s)
    verb = "replaced" if connection.name in before.orgs else "added"
    print(f"org {connection.name}: {verb} ({connection.login_url}, {connection.auth})", file=out)
    for name, reference in connection.references().items():
        try:
            resolve(reference, environ)
        except OrgSecretError as exc:
            print(f"  note: {name} {exc} here; the workers must have it", file=out)
    return 0


async def remove(settings: Settings, name: str, out: IO[str], timeout_s: float) -> int:
    await ensure_topic(settings, timeout_s)
    registered = await read_registry(settings, timeout_s)
    if name not in registered.orgs:
        raise UserError(f"org {name!r} is not registered (activity-sync orgs list)")
    await write_record(settings, *tombstone(name), timeout_s)
    print(f"org {name}: removed", file=out)
    return 0


def print_registry(
    registered: OrgRegistry, out: IO[str], waiting: Mapping[str, int] | None = None
) -> None:
    """One line per org; with `waiting` (bookings waiting for each org, from the
    workers), its count on the org's line and a line for each unregistered org that
    bookings wait for."""
    if not registered.orgs:
        print("no orgs registered (the default org is ACTIVITY_SYNC_SALESFORCE_*)", file=out)
    for name in sorted(registered.orgs):
        org = registered.orgs[name]
        refs = ", ".join(f"{k}={v}" for k, v in org.references().items()) or "no secrets"
        count = "" if waiting is None else f"  waiting={waiting.get(name, 0)}"
        print(
            f"{name}  {org.login_url}  {org.auth}  client_id={org.client_id or '-'}  "
            f"{refs}  fields={org.field_mapping}{count}",
            file=out,
        )
    if waiting is not None:
        for name, count_ in sorted(waiting.items()):
            if name not in registered.orgs and name != DEFAULT_ORG and count_:
                hint = f"activity-sync orgs add {name}"
                print(f"{name}  not registered  waiting={count_} ({hint})", file=out)
        default = f"{DEFAULT_ORG} (ACTIVITY_SYNC_SALESFORCE_*)"
        print(f"{default}  waiting={waiting.get(DEFAULT_ORG, 0)}", file=out)
    for problem in registered.unreadable:
        print(f"skipped unreadable record {problem}", file=out)


async def waiting_on_workers(
    worker_urls: Sequence[str], token: SecretStr | None, timeout_s: float
) -> tuple[dict[str, int], list[str]]:
    """Bookings waiting for each org, summed over the workers' `GET /orgs/` (each counts
    its own partitions at its last reconcile sweep), and the workers that did not answer."""
    total: Counter[str] = Counter()
    problems: list[str] = []
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout, headers=auth_headers(token)) as session:
        for url in worker_urls:
            try:
                async with session.get(f"{url.rstrip('/')}/orgs/") as response:
                    if response.status != 200:
                        problems.append(f"{url} answered {response.status}")
                        continue
                    body = await response.json()
            except (aiohttp.ClientError, TimeoutError) as exc:
                problems.append(f"cannot reach {url}: {one_line(exc)}")
                continue
            total.update({str(k): int(v) for k, v in (body.get("waiting") or {}).items()})
    return dict(total), problems


async def list_orgs(
    settings: Settings,
    out: IO[str],
    timeout_s: float,
    worker_urls: Sequence[str] = (),
) -> int:
    """The registry, with how many bookings wait for each org on `worker_urls` (every
    worker of the deployment, for the whole count)."""
    await ensure_topic(settings, timeout_s)
    registered = await read_registry(settings, timeout_s)
    waiting: dict[str, int] | None = None
    if worker_urls:
        waiting, problems = await waiting_on_workers(worker_urls, settings.web.token, timeout_s)
        for problem in problems:
            print(f"waiting not counted: {problem}", file=out)
    print_registry(registered, out, waiting)
    return 0


async def check(
    settings: Settings,
    name: str,
    out: IO[str],
    timeout_s: float,
    salesforce_timeout_s: float,
    environ: dict[str, str] | None = None,
    run_checks: Callable[..., Any] = run_org_checks,
) -> int:
    """The `check-salesforce` checks against one registered org, with its references
    resolved in this process. Exit 0 unless a check fails."""
    registered = await read_registry(settings, timeout_s)
    org = registered.orgs.get(name)
    if org is None:
        raise UserError(f"org {name!r} is not registered (activity-sync orgs list)")
    try:
        connection = org.settings(settings.salesforce, environ)
    except OrgSecretError as exc:
        raise UserError(f"org {name}: {exc}") from None
    org_settings = settings.model_copy(
        update={
            "salesforce": connection,
            "app": settings.app.model_copy(update={"field_mapping": org.field_mapping}),
        }
    )
    try:
        report = await run_checks(org_settings, deadline=time.monotonic() + salesforce_timeout_s)
    except SalesforceUntrusted as exc:
        raise UsageError(f"org {name} at {org.login_url}: {exc}") from None
    except SalesforceClientError as exc:
        raise UserError(f"org {name} at {org.login_url}: {one_line(exc)}") from None
    print_report(report, out, prefix=f"{name}: ")
    return 0 if report.ok else 1
