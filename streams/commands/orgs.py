"""`activity-sync orgs add|list|remove|check`: the registry of Salesforce orgs.

The registry is a compacted topic (`ACTIVITY_SYNC_TOPIC_ORGS`, default
`salesforce-orgs`; records in streams/salesforce/org_registry.py). `add` writes an org's
connection (secrets only as `env:NAME` / `file:/path` references), `remove` a tombstone,
`list` reads the topic to its end, `check` resolves an org's references here and runs
the `check-salesforce` checks against it. The topic is created on first use, compacted,
with the deployment's partitions, replication and min.insync.replicas.

Failure behaviour: every problem (broker unreachable, an unknown org, a record that is
not a connection, a reference that cannot be resolved) is a one-line `UserError`; a
secret is never printed, only its reference.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import IO, Any

from pydantic import ValidationError

from streams.commands.base import UsageError, UserError, one_line
from streams.commands.check_salesforce import print_report
from streams.commands.check_salesforce import run_checks as run_org_checks
from streams.commands.kafka_io import admin, consumer, offsets, partitions_of, producer
from streams.commands.replay import read_partitions
from streams.salesforce.errors import SalesforceClientError, SalesforceUntrusted
from streams.salesforce.org_registry import (
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


def print_registry(registered: OrgRegistry, out: IO[str]) -> None:
    if not registered.orgs:
        print("no orgs registered (the default org is ACTIVITY_SYNC_SALESFORCE_*)", file=out)
    for name in sorted(registered.orgs):
        org = registered.orgs[name]
        refs = ", ".join(f"{k}={v}" for k, v in org.references().items()) or "no secrets"
        print(
            f"{name}  {org.login_url}  {org.auth}  client_id={org.client_id or '-'}  "
            f"{refs}  fields={org.field_mapping}",
            file=out,
        )
    for problem in registered.unreadable:
        print(f"skipped unreadable record {problem}", file=out)


async def list_orgs(settings: Settings, out: IO[str], timeout_s: float) -> int:
    await ensure_topic(settings, timeout_s)
    print_registry(await read_registry(settings, timeout_s), out)
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
